#!/usr/bin/env bash
# trace_test.sh TRACE CHILD [BENCH [IBENCH]]: madvisev-trace on a child that
# makes a known number of calls must report exactly those call, range,
# error and zapped-page counts (check_counts.py); madvisev-bench --trace
# must see one system call per benchmark call for a batching backend and
# one per range for the sequential one; instantiate-bench --trace must
# see a batch's one reset call shared by its instantiations.
# Exit 0 pass, 1 fail, 77 skip (not root, no BTF, BPF refused).
set -u
trace=$1 child=$2 bench=${3:-} ibench=${4:-}
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

here=$(cd "$(dirname "$0")" && pwd)
for extra in "" sibling; do
    # 7 madvise, 5 process_madvise and 5 madvisev calls of 16 ranges, and 16
    # io_uring madvise operations; madvisev fails (ENOSYS) on an unpatched
    # kernel, process_madvise (EBADF) before Linux 6.16: the counts must
    # say so too.
    # shellcheck disable=SC2086
    if ! "$trace" --json -- "$child" 7 5 5 16 16 $extra > "$tmp/out.json" 2> "$tmp/err"; then
        if grep -q 'cannot load or attach' "$tmp/err"; then
            echo "SKIP: $(tail -1 "$tmp/err")"
            exit 77
        fi
        fail "madvisev-trace failed: $(cat "$tmp/err")"
    fi
    python3 "$here/check_counts.py" "$tmp/out.json" "$tmp/err" || fail "wrong counts (${extra:-alone})"
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
# Each range is one dirty page: one page zapped per range.
for r in json.load(open(sys.argv[1])):
    if r["backend"] == "process_madvise":
        assert r["traced_syscalls_per_call"] == 1, r
        assert r["traced_ipi_rounds_per_call"] <= 1, r
        assert r["traced_pages_zapped_per_call"] == r["vlen"], r
    else:
        assert r["traced_syscalls_per_call"] >= r["vlen"], r
PY
fi
if [ -n "$ibench" ]; then
    "$ibench" --trace "$trace" --strategy pool-immediate,pool-sharded-process-madvise,stock \
        --threads 1 --dirty-pages 4 --seconds 0.3 --json "$tmp/ibench.json" > "$tmp/ibench.out" \
        2> "$tmp/err" || fail "instantiate-bench --trace: $(cat "$tmp/err")"
    cat "$tmp/ibench.out"
    python3 - "$tmp/ibench.json" <<'PY' || fail "instantiate-bench --trace figures"
import json, sys
rows = {r["strategy"]: r for r in json.load(open(sys.argv[1]))}
# Immediate: one madvise call per slot reset (memory, table, stack at
# least); batched: one process_madvise call per batch of 32 instances; the
# stock runtime makes none of its own (it unmaps; glibc may trim a heap).
imm, bat, stock = (rows[k] for k in ("pool-immediate", "pool-sharded-process-madvise", "stock"))
assert imm["traced_syscalls_per_instantiation"] >= 1, imm
assert bat["traced_syscalls_per_instantiation"] < 0.1, bat
assert bat["traced_pages_zapped_per_instantiation"] >= 4, bat
assert stock["traced_syscalls_per_instantiation"] < 0.01, stock
assert stock["traced_other_flushes_per_instantiation"] > 0, stock
PY
fi
echo "PASS: exact call, range, error and zapped-page counts"
