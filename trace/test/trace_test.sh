#!/usr/bin/env bash
# trace_test.sh TRACE CHILD [BENCH [IBENCH]]: madvisev-trace on a child that
# makes a known number of calls must report exactly those call, range,
# error and zapped-page counts (check_counts.py); madvisev-bench --trace
# must see one system call per benchmark call for a batching backend and
# one per range for the sequential one; instantiate-bench --trace must
# see a batch's one reset call shared by its instantiations.
# Exit 0 pass, 1 fail, 77 skip (not root, no BTF).  As root on a kernel
# with BTF the tracer can run, so a refused BPF load is a failure there,
# never a skip (make test holds every skip to tests/skip-allowlist.txt,
# which does not list this test).
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
            fail "root, kernel BTF, and the BPF programs were refused: $(tail -1 "$tmp/err")"
        fi
        fail "madvisev-trace failed: $(cat "$tmp/err")"
    fi
    python3 "$here/check_counts.py" child "$tmp/out.json" "$tmp/err" || fail "wrong counts (${extra:-alone})"
done
if [ -n "$bench" ]; then
    "$bench" --trace "$trace" --backends process_madvise,sequential --vlens 1,16 --sizes 4096 \
        --ranges 64 --json "$tmp/bench.json" > "$tmp/bench.out" 2> "$tmp/err" ||
        fail "madvisev-bench --trace: $(cat "$tmp/err")"
    cat "$tmp/bench.out"
    python3 "$here/check_counts.py" bench "$tmp/bench.json" || fail "madvisev-bench --trace figures"
fi
if [ -n "$ibench" ]; then
    "$ibench" --trace "$trace" --strategy pool-immediate,pool-sharded-process-madvise,stock \
        --threads 1 --dirty-pages 4 --seconds 0.3 --json "$tmp/ibench.json" > "$tmp/ibench.out" \
        2> "$tmp/err" || fail "instantiate-bench --trace: $(cat "$tmp/err")"
    cat "$tmp/ibench.out"
    python3 "$here/check_counts.py" ibench "$tmp/ibench.json" || fail "instantiate-bench --trace figures"
fi
echo "PASS: exact call, range, error and zapped-page counts"
