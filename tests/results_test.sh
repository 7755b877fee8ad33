#!/usr/bin/env bash
# results_test.sh TOP: results.py on a make demo that went wrong part way:
# one guest block that is not JSON (as the console once made it) and one
# file never written.  The page must still be rendered, name both files,
# and keep every other section.
set -euo pipefail
top=${1:?usage: results_test.sh TOP}
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
cp -r "$top/docs/results/data" "$t/data"
# The start of the guest's instantiate-wasi JSON, a kernel message, the rest.
{ head -n 40 "$top/docs/results/data/vm-instantiate-wasi.json"
  echo "[  812.441] sched: DL replenish lagged too much"
  tail -n +41 "$top/docs/results/data/vm-instantiate-wasi.json"; } > "$t/data/vm-instantiate-wasi.json"
rm "$t/data/vm61-madvisev-bench.json"
# A row measured five times (instantiate-bench --repeat), two runs short:
# its cell carries the interval and the mark.
python3 - "$t/data/host-instantiate-bench.json" <<'PY'
import json, sys
recs = json.load(open(sys.argv[1]))
r = next(r for r in recs if r["strategy"] == "pool-adaptive" and r["threads"] == 2 and r["dirty_pages"] == 16)
r.update(runs=5, instantiations_per_s_runs=[1.0] * 5, instantiations_per_s_ci95=[123456.0, 654321.0], short_runs=2,
         flusher_cpu_ns_per_instantiation=4321.0)
# A strategy variant's row: its name has a slash (the plots must cope).
recs += [dict(x, strategy="pool-adaptive/no-stacks") for x in recs if x["strategy"] == "pool-adaptive"]
json.dump(recs, open(sys.argv[1], "w"))
PY
if ! python3 "$top/scripts/results.py" "$t/data" "$t/results.md" "$t/png" 2> "$t/err"; then
    echo "FAIL: results.py did not render the page:"
    tail -n 5 "$t/err"
    exit 1
fi
fail=0
check() { if ! grep -q -- "$2" "$3"; then echo "FAIL: $1 (no '$2' in $(basename "$3"))"; fail=1; fi; }
check "stderr names the bad file" "vm-instantiate-wasi.json: not valid JSON" "$t/err"
check "stderr names the missing file" "vm61-madvisev-bench.json: missing" "$t/err"
check "the page names the bad file" '`vm-instantiate-wasi.json`, not valid JSON' "$t/results.md"
check "the page names the missing file" '`vm61-madvisev-bench.json`, missing' "$t/results.md"
check "the host's section is rendered" '^### Development host' "$t/results.md"
check "the guest's echo figures are rendered" '^### Patched Linux 6.12 guest' "$t/results.md"
check "real Wasmtime is rendered beside pool-adaptive" '^### Development host: Wasmtime beside' "$t/results.md"
check "what the kernels make of Wasmtime's batch is rendered" '^| stock 6.12 | `wasmtime-batch32` | EBADF' "$t/results.md"
check "a repeated row shows its interval" '(123,456–654,321) \*\*short: 2 of 5 runs under 10 batches per thread\*\*' "$t/results.md"
check "the flusher's CPU time has a column" '| 4.32 | ' "$t/results.md"
check "the peer comparison names the default as ours" 'ours, `pool-adaptive` (the default)' "$t/results.md"
if [ $fail = 0 ]; then echo "PASS: results.py renders the rest and names what it left out"; fi
exit $fail
