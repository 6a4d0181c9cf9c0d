#!/usr/bin/env bash
# One-time setup of the coordinator: TLS certificates, the server's recipe signing key,
# and the trust store entry that lets the ServerApp sign meta-recipes as `server`.
#
#   server/setup_coordinator.sh [HOST ...]
#
# HOST: the names or IP addresses SuperNodes reach the SuperLink at (127.0.0.1 and
# localhost are always on the certificate). Settings (environment, defaults in brackets):
#   FEDSEED_CERTS       where the certificates go [./certs]
#   FEDSEED_HOME        the ServerApp's fedseed folder [~/.fedseed]
#   FEDSEED_SERVER_KEY  name of the recipe signing key (run config `server-key`) [server]
#
# Safe to run again: what exists is kept. Afterwards hand every device two files:
# certs/ca.crt (to check the SuperLink's identity) and the server's public recipe key
# $FEDSEED_HOME/keys/<server-key>.pub (to check meta-recipes).
set -euo pipefail

certs="${FEDSEED_CERTS:-./certs}"
export FEDSEED_HOME="${FEDSEED_HOME:-$HOME/.fedseed}"
key="${FEDSEED_SERVER_KEY:-server}"

if [[ -f "$certs/ca.crt" ]]; then
    echo "keeping the certificates in $certs"
else
    hosts=()
    for host in "$@"; do hosts+=(--host "$host"); done
    fedseed deploy certs --out "$certs" "${hosts[@]}"
fi
if [[ -f "$FEDSEED_HOME/keys/$key.key" ]]; then
    echo "keeping the recipe key $FEDSEED_HOME/keys/$key.key"
else
    fedseed keys generate "$key"
fi
# The ServerApp verifies each meta-recipe it seals, like any client will: its own key
# must be trusted for the `server` role (the run config has auto-keys=false).
fedseed trust add "$FEDSEED_HOME/keys/$key.pub" --role server --name "$key"
echo
echo "give every device: $certs/ca.crt and $FEDSEED_HOME/keys/$key.pub"
