#!/usr/bin/env bash
# prose_figures_test.sh TOP: scripts/check-prose-figures.py passes on the
# project's Markdown and fails, naming the file and token, when
#  - a README quotes a figure that is neither listed nor in a generated block;
#  - a listed figure no longer equals what its JSON query gives;
#  - a Markdown file is neither checked nor set aside;
# while a figure inside a generated block is left to --prose-check.
set -uo pipefail
top=$(cd "${1:?usage: prose_figures_test.sh TOP}" && pwd)
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
fail=0
copy() { # copy DIR: the project's Markdown, its manifest and data in DIR
    rm -rf "$1" && mkdir -p "$1"
    (cd "$top" && find . -name '*.md' -not -path './build*' -not -path './.git/*' -not -path '*/target/*' \
        -exec cp --parents {} "$1" \;)
    mkdir -p "$1/docs" && cp "$top/docs/prose-figures.json" "$1/docs/"
}
expect() { # expect RC WHAT DIR [GREP]
    python3 "$top/scripts/check-prose-figures.py" "$3" "$3/docs/prose-figures.json" "$top/docs/results/data" \
        > "$t/out" 2>&1
    rc=$?
    if [ "$rc" != "$1" ]; then
        echo "FAIL: $2: exited $rc, not $1"; tail -n 5 "$t/out"; fail=1
    elif [ -n "${4:-}" ] && ! grep -qF -- "$4" "$t/out"; then
        echo "FAIL: $2: no '$4' in the output"; cat "$t/out"; fail=1
    else
        echo "ok: $2 (exit $rc)"
    fi
}
copy "$t/a"
expect 0 "the project's Markdown" "$t/a"

copy "$t/b"
printf '\nThe reset now costs 12.5 ms.\n' >> "$t/b/runtime-integration/README.md"
expect 1 "an unlisted figure" "$t/b" "runtime-integration/README.md: line"

copy "$t/c"
python3 - "$t/c/docs/prose-figures.json" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
m["files"]["trace/README.md"]["figures"] = [{"context": "Linux 6.16", "text": "6.16", "format": "{:.2f}",
    "query": {"file": "host-madvisev-bench.json", "path": [{"backend": "sequential", "vlen": 64,
    "range_bytes": 4096}, "shootdowns_per_call"], "agg": "max"}}]
json.dump(m, open(sys.argv[1], "w"))
PY
expect 1 "a listed figure the data does not give" "$t/c" "the text says '6.16', the data gives"

copy "$t/d"
echo 'Runs at 45.0x.' > "$t/d/docs/notes.md"
expect 1 "a Markdown file neither checked nor set aside" "$t/d" "docs/notes.md: neither checked nor set aside"

copy "$t/e"
python3 - "$t/e/README.md" <<'PY'
import re, sys
p = sys.argv[1]
s = open(p).read()
s, n = re.subn(r"(<!-- results\.py: what-it-measures -->\n)", r"\1Planted 99.9x here.\n", s)
assert n == 1
open(p, "w").write(s)
PY
expect 0 "a figure inside a generated block (left to --prose-check)" "$t/e"
exit $fail
