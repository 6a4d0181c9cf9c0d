#!/usr/bin/env bash
# One-time setup of a device: its SuperNode authentication key, its recipe signing key,
# and trust in the coordinator's recipe key.
#
#   clients/setup_device.sh NAME SERVER_PUB
#
# NAME        a name for this device, e.g. device-1 (names both keys)
# SERVER_PUB  the coordinator's public recipe key (PEM), which it gave you with ca.crt
#
# Settings: FEDSEED_HOME, the device's fedseed folder [~/.fedseed]. The SuperNode key
# goes to $FEDSEED_HOME/supernode/NAME. Safe to run again: what exists is kept.
# Afterwards send the coordinator the two public keys printed at the end; never a
# private key.
set -euo pipefail

if [[ $# -ne 2 ]]; then
    sed -n '2,/^[^#]/{/^#/s/^# \{0,1\}//p}' "$0" >&2
    exit 2
fi
name="$1" server_pub="$2"
export FEDSEED_HOME="${FEDSEED_HOME:-$HOME/.fedseed}"
auth_dir="$FEDSEED_HOME/supernode"

if [[ -f "$auth_dir/$name" ]]; then
    echo "keeping the SuperNode key $auth_dir/$name"
else
    fedseed deploy supernode-key "$name" --out "$auth_dir"
fi
if [[ -f "$FEDSEED_HOME/keys/$name.key" ]]; then
    echo "keeping the recipe key $FEDSEED_HOME/keys/$name.key"
else
    fedseed keys generate "$name"
fi
# Meta-recipes are refused unless a key trusted for the `server` role signed them.
fedseed trust add "$server_pub" --role server --name coordinator
echo
echo "send the coordinator: $auth_dir/$name.pub and $FEDSEED_HOME/keys/$name.pub"
