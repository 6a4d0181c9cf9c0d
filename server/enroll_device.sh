#!/usr/bin/env bash
# Enroll a device: register its SuperNode key with the SuperLink and trust its recipe
# key for the `client` role. A device needs both to take part in a run.
#
#   server/enroll_device.sh NAME SUPERNODE_PUB RECIPE_PUB [CONNECTION]
#
# NAME           a name for the device (shown by `flwr supernode list` and `fedseed trust list`)
# SUPERNODE_PUB  its SuperNode authentication public key (OpenSSH, `NAME.pub` from
#                `fedseed deploy supernode-key`)
# RECIPE_PUB     its recipe signing public key (PEM, `fedseed keys export NAME`)
# CONNECTION     the `flwr` connection to the SuperLink in $FLWR_HOME/config.toml
#                [$FEDSEED_CONNECTION, else the default connection]
#
# Run it where FEDSEED_HOME is the ServerApp's fedseed folder (the one the SuperLink
# was started with) and the SuperLink is running.
set -euo pipefail

if [[ $# -lt 3 ]]; then
    sed -n '2,/^[^#]/{/^#/s/^# \{0,1\}//p}' "$0" >&2
    exit 2
fi
name="$1" supernode_pub="$2" recipe_pub="$3"
connection="${4:-${FEDSEED_CONNECTION:-}}"
export FEDSEED_HOME="${FEDSEED_HOME:-$HOME/.fedseed}"

flwr supernode register "$supernode_pub" ${connection:+"$connection"} --name "$name"
fedseed trust add "$recipe_pub" --role client --name "$name"
