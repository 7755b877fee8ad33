#!/usr/bin/env bash
# compare_test.sh TOP: results.py --compare, the check make demo ends with,
# passes on the same figures and fails on a regression planted in them:
#  - the batched calls sending one round per range again (counts);
#  - the default strategy 40% slower against stock (fixed bands, no runs);
#    in the guests alone it passes: their times are emulation's;
#  - with every row run five times (instantiate-bench --repeat): the same
#    rounds jittered pass, the default's rounds 30% slower fail (the
#    intervals part), another strategy's alone do not.
set -uo pipefail
top=$(cd "${1:?usage: compare_test.sh TOP}" && pwd)
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
data=$top/docs/results/data
fail=0
expect() { # expect RC WHAT DIR [GREP]
    python3 "$top/scripts/results.py" --compare "$t/old" "$3" > "$t/out" 2>&1
    rc=$?
    if [ "$rc" != "$1" ]; then
        echo "FAIL: $2: --compare exited $rc, not $1"
        tail -n 5 "$t/out"
        fail=1
    elif [ -n "${4:-}" ] && ! grep -q -- "$4" "$t/out"; then
        echo "FAIL: $2: no '$4' in the output"
        fail=1
    else
        echo "ok: $2 (exit $rc)"
    fi
}
plant() { # plant DIR PYTHON: copy the record to DIR and run PYTHON on each JSON list there
    rm -rf "$1" && cp -r "$t/old" "$1"
    python3 - "$1" "$2" <<'PY'
import glob, json, random, sys
d, code = sys.argv[1], sys.argv[2]
for f in sorted(glob.glob(d + "/*.json")):
    recs = json.load(open(f))
    if not isinstance(recs, list):
        continue
    name = f.rsplit("/", 1)[1]
    exec(code)
    json.dump(recs, open(f, "w"))
PY
}
cp -r "$data" "$t/old"

expect 0 "the record against itself" "$t/old" "inside their band"

plant "$t/counts" '
if name.endswith("madvisev-bench.json"):
    for r in recs:
        if r["backend"] in ("syscall", "process_madvise"):
            r["shootdowns_per_call"] = float(r["vlen"])'
expect 1 "batched calls sending a round per range" "$t/counts" "Outside, and held row by row: .*syscall vlen"

plant "$t/slow" '
if name.endswith(("instantiate-bench.json", "instantiate-wasi.json")):
    for r in recs:
        if r["strategy"] == "pool-adaptive":
            r["instantiations_per_s"] *= 0.6
            r["instantiations_per_s_runs"] = [x * 0.6 for x in r.get("instantiations_per_s_runs", [])]'
expect 1 "the default 40% slower" "$t/slow" "compare: FAIL"

plant "$t/guestslow" '
if name.startswith("vm-") and name.endswith(("instantiate-bench.json", "instantiate-wasi.json")):
    for r in recs:
        if r["strategy"] == "pool-adaptive":
            r["instantiations_per_s"] *= 0.3'
expect 0 "the default 70% slower in the guest (emulation's times: information only)" "$t/guestslow" \
    "emulation: information only"

# Five rounds per row in the record: each rate jittered by up to 3%.
plant "$t/old5" '
rng = random.Random(name)
if name.endswith(("instantiate-bench.json", "instantiate-wasi.json")):
    for r in recs:
        r["runs"] = 5
        r["instantiations_per_s_runs"] = [r["instantiations_per_s"] * rng.uniform(0.97, 1.03) for _ in range(5)]'
rm -rf "$t/old" && mv "$t/old5" "$t/old"
plant "$t/same5" '
rng = random.Random(name + "again")
if name.endswith(("instantiate-bench.json", "instantiate-wasi.json")):
    for r in recs:
        r["instantiations_per_s_runs"] = [x * rng.uniform(0.97, 1.03) for x in r["instantiations_per_s_runs"]]'
expect 0 "five rounds, the same code again" "$t/same5" "95% intervals"
slower() { # slower DIR STRATEGY: every round of STRATEGY 30% slower
    plant "$1" '
if name.endswith(("instantiate-bench.json", "instantiate-wasi.json")):
    for r in recs:
        if r["strategy"] == "'"$2"'":
            r["instantiations_per_s_runs"] = [x * 0.7 for x in r["instantiations_per_s_runs"]]
            r["instantiations_per_s"] *= 0.7'
}
slower "$t/slow5" pool-adaptive
expect 1 "five rounds, the default 30% slower" "$t/slow5" "95% intervals apart"
slower "$t/other5" pool-keep-resident
expect 0 "five rounds, one other strategy 30% slower" "$t/other5" "95% intervals apart"

[ $fail = 0 ] && echo "PASS: --compare passes the same figures and fails the planted regressions"
exit $fail
