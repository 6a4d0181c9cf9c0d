#!/usr/bin/env bash
# Start the fedseed coordinator: `flower-superlink` over TLS, with SuperNode
# authentication, running the fedseed ServerApp for each `flwr run`.
#
#   server/launch_superlink.sh [extra flower-superlink arguments]
#
# Settings (environment variables, defaults in brackets):
#   FEDSEED_CERTS     folder holding ca.crt, server.pem and server.key, as
#                     `fedseed deploy certs --out DIR` writes them [./certs]
#   FEDSEED_HOME      the ServerApp's fedseed folder: its recipe signing key, its trust
#                     store (client keys) and its registry [~/.fedseed]
#   FEDSEED_HOST      address to listen on [127.0.0.1]; 0.0.0.0 for every interface
#   FEDSEED_PORT      the SuperLink's one HTTPS port (Fleet, Control and Runtime APIs) [8000]
#   FEDSEED_DATABASE  file for the SuperLink's state, so registered SuperNodes survive a
#                     restart [in memory]
#   FEDSEED_LOG       log file (rotated daily) [stderr only]
#
# The ServerApp runs in a `flwr-serverapp` subprocess that inherits this environment:
# FEDSEED_HOME is how it finds its key, trust store and registry. Runtime dependency
# installation is off: the coordinator runs the fedseed installed next to Flower.
# This script replaces itself with flower-superlink (exec), so its PID is the
# SuperLink's; stop it with SIGTERM or Ctrl-C.
set -euo pipefail

certs="${FEDSEED_CERTS:-./certs}"
for file in ca.crt server.pem server.key; do
    if [[ ! -f "$certs/$file" ]]; then
        echo "launch_superlink: $certs/$file is missing; make it with" \
             "\`fedseed deploy certs --out $certs --host <public name>\`" >&2
        exit 2
    fi
done
if ! command -v flower-superlink >/dev/null; then
    echo "launch_superlink: flower-superlink is not on PATH; activate fedseed's environment" >&2
    exit 2
fi
export FEDSEED_HOME="${FEDSEED_HOME:-$HOME/.fedseed}"

args=(
    --ssl-ca-certfile "$certs/ca.crt"
    --ssl-certfile "$certs/server.pem"
    --ssl-keyfile "$certs/server.key"
    --enable-supernode-auth
    --host "${FEDSEED_HOST:-127.0.0.1}"
    --port "${FEDSEED_PORT:-8000}"
    --disable-runtime-dependency-installation
)
if [[ -n "${FEDSEED_DATABASE:-}" ]]; then
    args+=(--database "$FEDSEED_DATABASE")
fi
if [[ -n "${FEDSEED_LOG:-}" ]]; then
    args+=(--log-file "$FEDSEED_LOG")
fi
exec flower-superlink "${args[@]}" "$@"
