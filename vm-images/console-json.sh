#!/usr/bin/env bash
# console-json.sh LOG NAME: print the block a guest job wrote to its serial
# console between "MADVISEV-JSON-BEGIN NAME" and "MADVISEV-JSON-END NAME"
# (guest/guest-run.sh's emit); exit 1, saying so, if there is none.
set -euo pipefail
log=${1:?usage: console-json.sh LOG NAME}
name=${2:?usage: console-json.sh LOG NAME}
block=$(tr -d '\r' < "$log" |
    sed -n "/^MADVISEV-JSON-BEGIN $name\$/,/^MADVISEV-JSON-END $name\$/p" | sed '1d;$d')
if [ -z "$block" ]; then
    echo "console-json.sh: no '$name' block in $log" >&2
    exit 1
fi
printf '%s\n' "$block"
