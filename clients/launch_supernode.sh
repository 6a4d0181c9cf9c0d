#!/usr/bin/env bash
# Start this device's SuperNode: `flower-supernode` connected to the coordinator over
# TLS, authenticated with the device's SuperNode key, running the fedseed ClientApp on
# the device's own data.
#
#   clients/launch_supernode.sh [extra flower-supernode arguments]
#
# Settings (environment variables, defaults in brackets):
#   FEDSEED_SUPERLINK          the coordinator as HOST:PORT (required)
#   FEDSEED_ROOT_CERTIFICATES  the CA certificate the coordinator gave you (ca.crt) (required)
#   FEDSEED_AUTH_KEY           this device's SuperNode private key (OpenSSH), from
#                              `fedseed deploy supernode-key` (required)
#   FEDSEED_NODE_CONFIG        a node config TOML file (see clients/device.toml.example);
#                              or, instead of it:
#   FEDSEED_DATA               the device's data: a CSV/JSONL/Parquet file or a
#                              save_to_disk folder
#   FEDSEED_KEY                name of the device's recipe signing key in $FEDSEED_HOME/keys
#   FEDSEED_HOME               the device's fedseed folder: recipe key, trust store (the
#                              server's key as `server`), personalised weights [~/.fedseed]
#   FEDSEED_NODE_PORT          local port of the SuperNode's own Runtime API, loopback
#                              only; one per SuperNode on a machine [9094]
#
# Each round runs in a `flwr-clientapp` subprocess that inherits this environment:
# FEDSEED_HOME is how the ClientApp finds its key, its trust store and where to keep the
# personalised weights. Nothing but signed recipes and metrics leaves the device.
# This script replaces itself with flower-supernode (exec), so its PID is the
# SuperNode's; stop it with SIGTERM or Ctrl-C.
set -euo pipefail

missing=()
for var in FEDSEED_SUPERLINK FEDSEED_ROOT_CERTIFICATES FEDSEED_AUTH_KEY; do
    [[ -n "${!var:-}" ]] || missing+=("$var")
done
if [[ -z "${FEDSEED_NODE_CONFIG:-}" ]]; then
    for var in FEDSEED_DATA FEDSEED_KEY; do
        [[ -n "${!var:-}" ]] || missing+=("$var")
    done
fi
if [[ ${#missing[@]} -gt 0 ]]; then
    echo "launch_supernode: set ${missing[*]} (see the top of $0)" >&2
    exit 2
fi
for file in "$FEDSEED_ROOT_CERTIFICATES" "$FEDSEED_AUTH_KEY" ${FEDSEED_NODE_CONFIG:+"$FEDSEED_NODE_CONFIG"}; do
    if [[ ! -f "$file" ]]; then
        echo "launch_supernode: $file does not exist" >&2
        exit 2
    fi
done
if ! command -v flower-supernode >/dev/null; then
    echo "launch_supernode: flower-supernode is not on PATH; activate fedseed's environment" >&2
    exit 2
fi
export FEDSEED_HOME="${FEDSEED_HOME:-$HOME/.fedseed}"

if [[ -n "${FEDSEED_NODE_CONFIG:-}" ]]; then
    node_config="$FEDSEED_NODE_CONFIG"
else
    # TOML literal strings: no escapes, so a path must not contain a single quote
    # (use FEDSEED_NODE_CONFIG for such paths).
    if [[ "$FEDSEED_DATA$FEDSEED_KEY" == *"'"* ]]; then
        echo "launch_supernode: FEDSEED_DATA/FEDSEED_KEY contain a quote; use FEDSEED_NODE_CONFIG" >&2
        exit 2
    fi
    node_config="data='$FEDSEED_DATA' key='$FEDSEED_KEY'"
fi

exec flower-supernode \
    --superlink "$FEDSEED_SUPERLINK" \
    --root-certificates "$FEDSEED_ROOT_CERTIFICATES" \
    --auth-supernode-private-key "$FEDSEED_AUTH_KEY" \
    --port "${FEDSEED_NODE_PORT:-9094}" \
    --node-config "$node_config" \
    "$@"
