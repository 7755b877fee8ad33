#!/usr/bin/env bash
# checkpatch.sh KERNEL_SRC [SERIES_DIR]: run scripts/checkpatch.pl --strict
# from KERNEL_SRC over the series in SERIES_DIR (default: this directory,
# the 6.12 series; kernel-patch/6.1 with a 6.1 tree).  Fails on any error
# or check, and on any warning not justified in README.md ("checkpatch"
# section).
set -euo pipefail
src=${1:?usage: checkpatch.sh KERNEL_SRC [SERIES_DIR]}
series=$(cd "${2:-$(dirname "$0")}" && pwd)
# Justified in README.md: the new selftest file is covered by the existing
# MEMORY MANAGEMENT entry of MAINTAINERS.
allowed='added, moved or deleted file\(s\), does MAINTAINERS need updating\?'
out=$(mktemp)
trap 'rm -f "$out"' EXIT
bad=0
for p in "$series"/*.patch; do
    # The cover letter has no code to check.
    [ "$(basename "$p")" = 0000-cover-letter.patch ] && continue
    (cd "$src" && ./scripts/checkpatch.pl --strict --quiet --show-types "$p") > "$out" 2>&1 || true
    issues=$(grep -E '^(ERROR|WARNING|CHECK):' "$out" | grep -Ev "$allowed" || true)
    if [ -n "$issues" ]; then
        echo "checkpatch: $(basename "$p"):"
        cat "$out"
        bad=1
    else
        echo "checkpatch: $(basename "$p"): clean"
    fi
done
exit $bad
