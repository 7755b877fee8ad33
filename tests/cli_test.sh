#!/usr/bin/env bash
# cli_test.sh CASE TOOLDIR: one check of madvisev-info or madvisev-bench.
# Exit 0 pass, 1 fail, 77 skip (liburing's convention).
set -u
case_name=$1
tools=$2
info=$tools/madvisev-info
bench=$tools/madvisev-bench
ipicost=$tools/madvisev-ipi-cost
ibench=${3:-}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

fail() { echo "FAIL: $*"; exit 1; }
one_line() { [ "$(wc -l < "$1")" -eq 1 ] || fail "expected one line on stderr, got: $(cat "$1")"; }

unavailable_backend() {
    env -u MADVISEV_BACKEND "$info" | awk '$2 == "unavailable" { print $1; exit }'
}
available_backends() {
    env -u MADVISEV_BACKEND "$info" | awk '/^  / && $2 == "available" { print $1 }'
}

case $case_name in
info_help)
    "$info" --help > "$tmp/out" || fail "--help exited $?"
    grep -q '^Usage: madvisev-info' "$tmp/out" || fail "no usage text"
    ;;
info_runs)
    env -u MADVISEV_BACKEND "$info" > "$tmp/out" || fail "exited $?: $(cat "$tmp/out")"
    cat "$tmp/out"
    grep -q "^kernel: *Linux $(uname -r)" "$tmp/out" || fail "kernel release missing"
    for b in syscall process_madvise io_uring sequential; do
        grep -Eq "^  $b +(available|unavailable) +[^ ]" "$tmp/out" || fail "no line for $b"
    done
    auto=$(awk '$1 == "auto:" { print $2 }' "$tmp/out")
    sel=$(awk '$1 == "selected:" { print $2 }' "$tmp/out")
    [ -n "$auto" ] && [ "$auto" = "$sel" ] || fail "auto '$auto' but selected '$sel'"
    grep -q '^madvisev: .* bytes advised, page zeroed' "$tmp/out" || fail "probe call failed"
    ;;
info_bad_option)
    "$info" --bogus > "$tmp/out" 2> "$tmp/err" && fail "accepted --bogus"
    one_line "$tmp/err"
    grep -q "unknown option '--bogus'" "$tmp/err" || fail "message: $(cat "$tmp/err")"
    "$info" extra 2> "$tmp/err" > /dev/null && fail "accepted a stray argument"
    one_line "$tmp/err"
    ;;
forced_unknown)
    for v in bogus SYSCALL ' ' 'io_uring,sequential'; do
        MADVISEV_BACKEND=$v "$info" > "$tmp/out" 2> "$tmp/err" && fail "accepted MADVISEV_BACKEND='$v'"
        # The library writes nothing to stderr unless asked (MADVISEV_DEBUG=1).
        [ ! -s "$tmp/err" ] || fail "stderr without MADVISEV_DEBUG: $(cat "$tmp/err")"
        grep -q '^madvisev: -1 EINVAL' "$tmp/out" || fail "madvisev() did not fail with EINVAL"
        MADVISEV_DEBUG=1 MADVISEV_BACKEND=$v "$info" > "$tmp/out" 2> "$tmp/err" && fail "accepted MADVISEV_BACKEND='$v'"
        grep -q 'libmadvisev: backend none: MADVISEV_BACKEND names no usable backend' "$tmp/err" ||
            fail "MADVISEV_DEBUG=1 message: $(cat "$tmp/err")"
    done
    ;;
forced_unavailable)
    b=$(unavailable_backend)
    [ -n "$b" ] || { echo "SKIP: every backend is available on this kernel"; exit 77; }
    MADVISEV_BACKEND=$b "$info" > "$tmp/out" 2> "$tmp/err" && fail "forced $b ran"
    [ ! -s "$tmp/err" ] || fail "stderr without MADVISEV_DEBUG: $(cat "$tmp/err")"
    grep -q '^madvisev: -1 ENOSYS' "$tmp/out" || fail "madvisev() did not fail with ENOSYS"
    grep -q '^selected: none' "$tmp/out" || fail "another backend was used silently"
    ;;
forced_available)
    # Every backend this kernel has, forced in turn: madvisev-info must use
    # that one (not detection's pick) and its probe call must go through it.
    available_backends > "$tmp/avail"
    [ -s "$tmp/avail" ] || fail "madvisev-info lists no available backend"
    n=0
    while read -r b; do
        MADVISEV_BACKEND=$b "$info" > "$tmp/out" 2> "$tmp/err" || fail "forced $b failed: $(cat "$tmp/err")"
        grep -q "^forced: *$b\$" "$tmp/out" || fail "forced $b: 'forced:' line is not $b: $(grep '^forced:' "$tmp/out")"
        grep -q "^selected: *$b\$" "$tmp/out" || fail "forced $b: $(grep '^selected:' "$tmp/out")"
        grep -q '^madvisev: .* bytes advised, page zeroed' "$tmp/out" || fail "forced $b: probe call failed"
        [ ! -s "$tmp/err" ] || fail "forced $b: stderr not empty: $(cat "$tmp/err")"
        echo "forced $b: selected $b"
        n=$((n + 1))
    done < "$tmp/avail"
    [ "$n" -eq "$(wc -l < "$tmp/avail")" ] || fail "tested $n backends"
    ;;
bench_help)
    "$bench" --help > "$tmp/out" || fail "--help exited $?"
    grep -q '^Usage: madvisev-bench' "$tmp/out" || fail "no usage text"
    ;;
bench_bad_input)
    for args in "--bogus" "--vlens" "--vlens 0" "--vlens -3" "--vlens 1,x" "--sizes 100" \
                "--backends nope" "--ranges 12abc" "stray" "--trace /nonexistent"; do
        # shellcheck disable=SC2086
        "$bench" $args > /dev/null 2> "$tmp/err" && fail "accepted '$args'"
        one_line "$tmp/err"
    done
    ;;
bench_json)
    "$bench" --vlens 1,8 --sizes 4096 --ranges 64 --json "$tmp/out.json" > "$tmp/out" ||
        fail "bench exited $?"
    cat "$tmp/out"
    python3 - "$tmp/out.json" <<'PY' || fail "bad JSON"
import json, sys
recs = json.load(open(sys.argv[1]))
keys = {"backend", "vlen", "range_bytes", "calls", "ns_per_range", "shootdowns_per_call"}
assert recs, "no records"
for r in recs:
    assert keys <= r.keys(), r
    assert r["vlen"] in (1, 8) and r["range_bytes"] == 4096 and r["calls"] >= 8, r
    assert r["ns_per_range"] > 0, r
backends = {r["backend"] for r in recs}
assert "sequential" in backends, backends
assert len(recs) == 2 * len(backends), recs
PY
    ;;
ibench_policies)
    # The policies of Wasmtime's configurations, as reimplemented on this
    # pool (pool-madvise-each, pool-resident-scan): the default decommits the
    # memory and the table of every instance (two slots), not its stack;
    # the best one decommits nothing and faults nothing back in.  Under
    # ThreadSanitizer the code runs on the thread's stack, not a pooled
    # fiber stack (wasmpool/fiber.h): pool-immediate decommits two slots
    # there too, and the stack pages are not counted.
    "$ibench" --threads 1 --dirty-pages 4 --seconds 0.2 --strategy pool-madvise-each,pool-resident-scan,pool-immediate \
        --json "$tmp/out.json" > "$tmp/out" || fail "instantiate-bench exited $?"
    cat "$tmp/out"
    python3 - "$tmp/out.json" <<'PY' || fail "bad JSON"
import json, sys
recs = {r["strategy"]: r for r in json.load(open(sys.argv[1]))}
d, b, i = recs["pool-madvise-each"], recs["pool-resident-scan"], recs["pool-immediate"]
pooled_stacks = i["stack_pages_dirtied_per_instantiation"] is not None
assert d["decommits_per_instantiation"] == 2.0, d
assert i["decommits_per_instantiation"] == (3.0 if pooled_stacks else 2.0), i
assert d["batch_size"] == 1 and b["batch_size"] == 32, (d, b)
assert b["decommits_per_instantiation"] < 0.05, b
assert b["page_faults_per_instantiation"] < 0.5 < d["page_faults_per_instantiation"], (b, d)
PY
    ;;
ipicost_help)
    "$ipicost" --help > "$tmp/out" || fail "--help exited $?"
    grep -q '^Usage: madvisev-ipi-cost' "$tmp/out" || fail "no usage text"
    ;;
ipicost_bad_input)
    for args in "--bogus" "--calls" "--calls 0" "--calls -5" "--calls 12x" "--receivers x" "stray" \
                "--json /nonexistent/dir/out.json --calls 1"; do
        # shellcheck disable=SC2086
        "$ipicost" $args > /dev/null 2> "$tmp/err" && fail "accepted '$args'"
        one_line "$tmp/err"
    done
    ;;
ipicost_json)
    "$ipicost" --calls 200 --receivers 1 --json "$tmp/out.json" > "$tmp/out" || fail "exited $?"
    cat "$tmp/out"
    python3 - "$tmp/out.json" "$(nproc)" <<'PY' || fail "bad JSON"
import json, sys
recs, cpus = json.load(open(sys.argv[1])), int(sys.argv[2])
want = min(cpus - 1, 1)
assert [r["receivers"] for r in recs] == list(range(want + 1)), recs
for r in recs:
    assert r["calls"] == 200 and r["cpus"] == cpus and r["ns_per_call"] > 0, r
    assert r["receivers"] > 0 or r["receiver_ns_per_ipi"] == 0, r
PY
    ;;
ibench_help)
    "$ibench" --help > "$tmp/out" || fail "--help exited $?"
    grep -q '^Usage: instantiate-bench' "$tmp/out" || fail "no usage text"
    ;;
ibench_bad_input)
    for args in "--bogus" "--threads" "--threads 0" "--dirty-pages 273" "--dirty-pages x" \
                "--seconds -1" "--seconds abc" "--strategy pool-nope" "--batch-size 0" "stray" \
                "--trace /nonexistent" "--trace" "--resident-budget" "--resident-budget 0" \
                "--resident-budget 12X" "--resident-budget -5" "--resident-budget 9999999G" \
                "--module" "--module nope" "--module echo,nope" "--module echo," \
                "--repeat" "--repeat 0" "--repeat x" "--repeat 2,3" "--repeat 101"; do
        # shellcheck disable=SC2086
        "$ibench" $args > /dev/null 2> "$tmp/err" && fail "accepted '$args'"
        one_line "$tmp/err"
    done
    ;;
ibench_json)
    "$ibench" --threads 1,2 --dirty-pages 4 --seconds 0.2 \
        --strategy stock,pool-immediate,pool-adaptive,unsafe-no-reset --json "$tmp/out.json" > "$tmp/out" ||
        fail "instantiate-bench exited $?"
    cat "$tmp/out"
    grep -q 'unsafe-no-reset .*INSECURE' "$tmp/out" || fail "unsafe-no-reset not labelled insecure"
    python3 - "$tmp/out.json" <<'PY' || fail "bad JSON"
import json, sys
recs = json.load(open(sys.argv[1]))
keys = {"strategy", "module", "threads", "dirty_pages", "batch_size", "instantiations_per_s", "efficiency",
        "shootdowns_per_instantiation", "resident_bytes", "p50_ns", "p99_ns", "insecure",
        "decommits_per_instantiation", "memory_pages_dirtied_per_instantiation",
        "stack_pages_dirtied_per_instantiation", "pages_dirtied_per_instantiation"}
assert len(recs) == 8, len(recs)
for r in recs:
    assert keys <= r.keys(), r
    assert r["instantiations_per_s"] > 0 and r["p99_ns"] >= r["p50_ns"] > 0, r
    assert r["insecure"] == (r["strategy"] == "unsafe-no-reset"), r
    assert r["efficiency"] is not None and r["efficiency"] > 0, r
    assert r["module"] == "echo", r
    # init wrote 4 pages (None: a kernel without PAGEMAP_SCAN).
    assert r["memory_pages_dirtied_per_instantiation"] in (None, 4.0), r
    if r["threads"] == 1:
        assert r["efficiency"] == 1.0, r
PY
    ;;
ibench_repeat)
    # --repeat: every row run N times, the strategies of a row interleaved
    # (one order, then the reverse), each figure the median, the rate with
    # its runs and a 95% interval; a row whose timed part covered fewer
    # than ten batches per thread is marked SHORT (ten batches of 32 in
    # 0.2 ms would take 1.6 million instantiations/s per thread), stock
    # never.  (A larger pool does not fit ThreadSanitizer's address space.)
    "$ibench" --threads 1,2 --dirty-pages 4 --seconds 0.0002 --repeat 3 --batch-size 32 \
        --strategy stock,pool-adaptive --json "$tmp/out.json" > "$tmp/out" ||
        fail "instantiate-bench exited $?"
    cat "$tmp/out"
    [ "$(grep -c '^# round [123]/3: ' "$tmp/out")" = 12 ] || fail "not 12 runs (3 rounds of 4 rows)"
    grep '^# round 1/3: ' "$tmp/out" | awk '{print $4}' | paste -sd, | grep -qx 'stock,pool-adaptive,stock,pool-adaptive' ||
        fail "round 1 not in the given order"
    grep '^# round 2/3: ' "$tmp/out" | awk '{print $4}' | paste -sd, | grep -qx 'pool-adaptive,stock,pool-adaptive,stock' ||
        fail "round 2 not in the reverse order"
    grep -q '^stock .*SHORT' "$tmp/out" && fail "stock marked short"
    python3 - "$tmp/out.json" <<'PY' || fail "bad JSON"
import json, statistics, sys
recs = json.load(open(sys.argv[1]))
assert len(recs) == 4, recs
for r in recs:
    runs = r["instantiations_per_s_runs"]
    assert r["runs"] == 3 and len(runs) == 3, r
    assert abs(r["instantiations_per_s"] - statistics.median(runs)) < 0.11, r
    lo, hi = r["instantiations_per_s_ci95"]
    assert min(runs) <= lo <= r["instantiations_per_s"] <= hi <= max(runs), r
    # Warm-up: twice the pool's slots, threads x (batch + 8) + 8.
    assert r["warmup_instantiations"] >= 2 * (r["threads"] * (32 + 8) + 8), r
    # Short: a pool row's run under ten batches of 32 per thread.
    n = r["instantiations_runs"]
    want = 0 if r["strategy"] == "stock" else sum(1 for x in n if x < 10 * 32 * r["threads"])
    assert len(n) == 3 and r["short_runs"] == want, r
    if r["threads"] == 1:
        assert r["efficiency"] == 1.0, r
# 0.2 ms cannot hold ten batches on every run.
assert sum(r["short_runs"] for r in recs if r["strategy"] == "pool-adaptive") > 0, recs
PY
    grep -Eq '^pool-adaptive .* SHORT: [123] of 3 runs under 10 batches per thread$' "$tmp/out" ||
        fail "pool-adaptive's short runs not marked"
    ;;
ibench_wasi)
    # WASI programs: every strategy runs them, output checked per iteration
    # (a wrong one exits 1); unsafe-no-reset is skipped with a note; each
    # row has the pages its instances left holding data.
    "$ibench" --module request,grow --threads 1 --seconds 0.1 \
        --strategy stock,pool-adaptive,unsafe-no-reset --json "$tmp/out.json" > "$tmp/out" ||
        fail "instantiate-bench exited $?"
    cat "$tmp/out"
    grep -q '^# unsafe-no-reset, request: skipped' "$tmp/out" || fail "unsafe-no-reset not skipped"
    grep -Eq '^pool-adaptive +grow +- +1 ' "$tmp/out" || fail "no grow row"
    python3 - "$tmp/out.json" <<'PY' || fail "bad JSON"
import json, sys
recs = json.load(open(sys.argv[1]))
assert [(r["module"], r["strategy"]) for r in recs] == [
    ("request", "stock"), ("request", "pool-adaptive"), ("grow", "stock"), ("grow", "pool-adaptive")], recs
for r in recs:
    assert r["dirty_pages"] is None and r["instantiations_per_s"] > 0, r
    mem, stack = r["memory_pages_dirtied_per_instantiation"], r["stack_pages_dirtied_per_instantiation"]
    if mem is None:  # a kernel without PAGEMAP_SCAN
        continue
    # grow writes 5 MiB: 1152 pages of records and a 512 KiB sieve.
    assert mem >= (1200 if r["module"] == "grow" else 1), r
    assert stack is None or stack >= 1, r  # None under TSan: no fiber stack
    assert r["pages_dirtied_per_instantiation"] == mem + (stack or 0) or stack is None, r
PY
    ;;
ibench_budget)
    # A budget below the pool's dirty memory: adaptive decommits, and the
    # run ends with its comparison line.
    "$ibench" --threads 1 --dirty-pages 256 --seconds 0.2 --resident-budget 64K \
        --strategy pool-sharded-auto,pool-adaptive --json "$tmp/out.json" > "$tmp/out" ||
        fail "instantiate-bench exited $?"
    cat "$tmp/out"
    grep -q '^# resident budget 65536 bytes' "$tmp/out" || fail "no budget summary"
    grep -Eq '^# dirty 256, 1 threads: adaptive [0-9]+/s = [0-9.]+x pool-sharded-' "$tmp/out" ||
        fail "no comparison with pool-sharded"
    python3 - "$tmp/out.json" <<'PY' || fail "adaptive did not decommit under the budget"
import json, sys
recs = {r["strategy"]: r for r in json.load(open(sys.argv[1]))}
a = recs["pool-adaptive"]
assert a["resident_budget"] == 65536, a
assert a["pool_resident_bytes"] <= 65536, a
assert a["decommits_per_instantiation"] >= 0.9, a
PY
    ;;
vm_scripts_bad_input)
    top=$(cd "$(dirname "$0")/.." && pwd)
    run_vm=$top/vm-images/run-vm.sh
    for args in "--bogus" "-k" "-k /nonexistent -i /nonexistent -j info" "-j info" \
                "-k $0 -i $0 -j info -s x" "-k $0 -i $0 -j info -t -5"; do
        # shellcheck disable=SC2086
        bash "$run_vm" $args > /dev/null 2> "$tmp/err"
        rc=$?
        [ $rc -eq 2 ] || fail "run-vm.sh $args exited $rc, not 2"
        one_line "$tmp/err"
    done
    bash "$run_vm" --help | grep -q 'run-vm.sh -k KERNEL' || fail "run-vm.sh --help"
    bash "$top/vm-images/build-kernel.sh" nope "$tmp/out" > /dev/null 2> "$tmp/err" && fail "build-kernel.sh accepted 'nope'"
    one_line "$tmp/err"
    ;;
*)
    fail "unknown case $case_name"
    ;;
esac
echo "PASS: $case_name"
exit 0
