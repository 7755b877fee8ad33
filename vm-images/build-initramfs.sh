#!/usr/bin/env bash
# build-initramfs.sh [-d FILE]... OUT.cpio.gz BIN...
#   Pack busybox-static, the guest init, run-job.sh, guest-run.sh, emit.sh and the given
#   statically linked test binaries (into /tests) as a gzipped newc cpio;
#   each -d FILE, data a binary reads (the .wasm modules), into /tests/data.
set -euo pipefail
data=()
while [ $# -gt 0 ] && [ "$1" = -d ]; do
    [ $# -ge 2 ] && [ -f "$2" ] || { echo "[vm-images] FAILED: -d needs a file (got '${2:-}')" >&2; exit 2; }
    data+=("$2")
    shift 2
done
out=${1:?usage: build-initramfs.sh [-d FILE]... OUT.cpio.gz BIN...}
shift
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"

step "pack $(basename "$out")"
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root"/{bin,dev,proc,sys,tmp,tests,tests/data}
busybox=${BUSYBOX:-/bin/busybox}
if ! file -L "$busybox" | grep -q 'statically linked'; then
    echo "[vm-images] FAILED: $busybox is not a static busybox (package busybox-static)" >&2
    exit 1
fi
cp "$busybox" "$root/bin/busybox"
install -m 755 "$here/guest/init" "$root/init"
install -m 755 "$here/guest/guest-run.sh" "$root/tests/guest-run.sh"
install -m 644 "$here/guest/emit.sh" "$root/tests/emit.sh"
install -m 644 "$here/guest/run-job.sh" "$root/tests/run-job.sh"
for bin in "$@"; do
    if ! file -L "$bin" | grep -Eq 'statically linked|static-pie linked'; then
        echo "[vm-images] FAILED: $bin is not statically linked" >&2
        exit 1
    fi
    install -m 755 "$bin" "$root/tests/"
done
for f in ${data[@]+"${data[@]}"}; do
    install -m 644 "$f" "$root/tests/data/"
done
mkdir -p "$(dirname "$out")"
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) > "$out.tmp"
mv "$out.tmp" "$out"
echo "[vm-images] $out: $(du -h "$out" | cut -f1)"
step_done
