#!/usr/bin/env bash
# trace_test.sh TRACE CHILD [BENCH]: madvisev-trace on a child that makes a
# known number of calls must report exactly those call and range counts;
# and madvisev-bench --trace must see one system call per benchmark call
# for a batching backend and one per range for the sequential one.
# Exit 0 pass, 1 fail, 77 skip (not root, no BTF, BPF refused).
set -u
trace=$1 child=$2 bench=${3:-}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
[ "$(id -u)" = 0 ] || { echo "SKIP: needs root"; exit 77; }
[ -r /sys/kernel/btf/vmlinux ] || { echo "SKIP: no kernel BTF"; exit 77; }

"$trace" --help | grep -q '^Usage: madvisev-trace' || fail "--help"
"$trace" --bogus 2> "$tmp/err" && fail "accepted --bogus"
[ "$(wc -l < "$tmp/err")" = 1 ] || fail "unknown option: not one line"
"$trace" 2> "$tmp/err" && fail "ran with neither -p nor a command"
"$trace" -p 999999999 2> "$tmp/err" && fail "accepted a bad pid"

for mode in alone sibling; do
    extra=
    [ $mode = sibling ] && extra=sibling
    if ! "$trace" --json -- "$child" 7 5 16 $extra > "$tmp/out.json" 2> "$tmp/err"; then
        if grep -q 'cannot load or attach' "$tmp/err"; then
            echo "SKIP: $(cat "$tmp/err" | tail -1)"
            exit 77
        fi
        fail "madvisev-trace failed: $(cat "$tmp/err")"
    fi
    python3 - "$tmp/out.json" "$mode" <<'PY' || fail "wrong counts ($mode)"
import json, sys
d = json.load(open(sys.argv[1]))
by = {s["syscall"]: s for s in d["syscalls"]}
mode = sys.argv[2]
print(mode, {k: (v["calls"], v["ranges"], v["local_flushes"], v["ipi_rounds"]) for k, v in by.items()},
      "received", d["shootdowns_received"])
assert by["madvise"]["calls"] == 7 and by["madvise"]["ranges"] == 7, by["madvise"]
pm = by["process_madvise"]
assert pm["calls"] == 5 and pm["ranges"] == 80, pm
assert "madvisev" not in by and "io_uring_enter" not in by, by
if mode == "sibling":
    # Each madvise() flushes with an IPI round to the spinning sibling.
    assert by["madvise"]["ipi_rounds"] >= 4, by["madvise"]
PY
done
if [ -n "$bench" ]; then
    "$bench" --trace "$trace" --backends process_madvise,sequential --vlens 1,16 --sizes 4096 \
        --ranges 64 --json "$tmp/bench.json" > "$tmp/bench.out" 2> "$tmp/err" ||
        fail "madvisev-bench --trace: $(cat "$tmp/err")"
    cat "$tmp/bench.out"
    python3 - "$tmp/bench.json" <<'PY' || fail "madvisev-bench --trace figures"
import json, sys
# process_madvise is the bench's alone; a sanitizer runtime may add madvise
# calls of its own to the sequential rows, so those are a lower bound.
for r in json.load(open(sys.argv[1])):
    if r["backend"] == "process_madvise":
        assert r["traced_syscalls_per_call"] == 1, r
        assert r["traced_ipi_rounds_per_call"] <= 1, r
    else:
        assert r["traced_syscalls_per_call"] >= r["vlen"], r
PY
fi
echo "PASS: exact call and range counts"
