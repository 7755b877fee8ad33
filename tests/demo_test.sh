#!/usr/bin/env bash
# demo_test.sh TOP: make demo's runs (scripts/demo.sh) when some of them
# fail.  The host's benchmarks are stand-ins that copy the recorded JSON
# (docs/results/data), one of them failing on purpose; the guests' kernels
# are missing, so every guest step fails.  The demo must name each failed
# step with its log, run the steps after it, leave no earlier run's figures
# for a step that failed, render the page from what was written (naming
# what is missing), and exit 1.
set -uo pipefail
top=$(cd "${1:?usage: demo_test.sh TOP}" && pwd)
t=$(mktemp -d)
trap 'rm -rf "$t"' EXIT
data=$top/docs/results/data
mkdir -p "$t/build/libmadvisev" "$t/build/runtime-integration" "$t/build/peers" "$t/vm" "$t/results"
# One stand-in for every benchmark: what it writes depends on its name and
# arguments; madvisev-ipi-cost fails.
cat > "$t/stand-in" <<EOS
#!/usr/bin/env bash
name=\$(basename "\$0")
json=
while [ \$# -gt 0 ]; do
    case \$1 in
    --json) json=\$2; shift ;;
    --module) kind=wasi ;;
    --resident-budget) kind=budget ;;
    esac
    shift
done
case \$name in
madvisev-info) echo "selected: process_madvise"; exit 0 ;;
madvisev-ipi-cost) echo "madvisev-ipi-cost: broken on purpose" >&2; exit 3 ;;
madvisev-bench) src=host-madvisev-bench.json ;;
instantiate-bench) src=host-instantiate-\${kind:-bench}.json ;;
wasmtime-bench)
    # Its rows: the first repetition's in the recorded side-by-side run.
    python3 -c 'import json, sys; json.dump(json.load(open(sys.argv[1]))["repetitions"][0]["wasmtime"],
        open(sys.argv[2], "w"))' "$data/host-real-wasmtime.json" "\$json" || exit 1
    echo "\$name: wrote \$json"; exit 0 ;;
esac
cp "$data/\$src" "\$json"
echo "\$name: wrote \$json"
EOS
chmod +x "$t/stand-in"
for b in libmadvisev/madvisev-info libmadvisev/madvisev-bench libmadvisev/madvisev-ipi-cost \
    runtime-integration/instantiate-bench peers/wasmtime-bench; do
    ln -s "$t/stand-in" "$t/build/$b"
done
# The modules the Wasmtime stand-in is pointed at.
mkdir -p "$t/build/runtime-integration/wasi"
touch "$t/build/runtime-integration/echo.wasm"
for m in request compress grow; do touch "$t/build/runtime-integration/wasi/$m.wasm"; done
# An earlier run's guest figures, which a failed guest step must not leave.
cp "$data/vm-madvisev-bench.json" "$t/results/vm-madvisev-bench.json"
BUILD=$t/build VM=$t/vm RESULTS=$t/results VM_SMP=2 VM_BENCH=--ranges:64 VM_IBENCH=--seconds:0.1 \
    VM_IWASI=--seconds:0.1 IBENCH='--seconds 0.1' VM_SMP_SWEEP=2 VM_IPICOST=--calls:10 VM_SWEEP=--seconds:0.1 \
    IBENCH_BUDGET_STRATEGIES=pool-adaptive IBENCH_WASI='--seconds 0.1' IBENCH_WASI_MODULES=request \
    KERNEL_PATCHED=$t/vm/no-bzImage INITRAMFS=$t/vm/no-initramfs KERNEL_61=$t/vm/no-bzImage-6.1 \
    INITRAMFS_61=$t/vm/no-initramfs-6.1 KERNEL_UNPATCHED=$t/vm/no-bzImage-unpatched \
    WASMTIME_BENCH=$t/build/peers/wasmtime-bench VM_WASMTIME=--seconds:0.1 \
    bash "$top/scripts/demo.sh" > "$t/out" 2>&1
rc=$?
fail=0
check() { if ! grep -qF -- "$2" "$3"; then echo "FAIL: $1 (no '$2' in $3)"; fail=1; fi; }
if [ $rc != 1 ]; then echo "FAIL: the demo exited $rc, not 1"; fail=1; fi
check "the failed host step is named with its log" \
    "FAILED: step 'madvisev-ipi-cost' (exit 3); see $t/results/logs/madvisev-ipi-cost.log" "$t/out"
check "its log holds what it printed" "broken on purpose" "$t/results/logs/madvisev-ipi-cost.log"
check "the failed guest step is named with its log" \
    "FAILED: guest step 'bench-patched' (job 'bench', 2 vCPUs); see $t/vm/bench-patched.log" "$t/out"
check "the steps after the failures ran" "FAILED: guest step 'sweep-2' (job 'sweep', 2 vCPUs)" "$t/out"
check "a failed Wasmtime guest step is named" "FAILED: guest step 'wasmtime-stock' (job 'wasmtime', 2 vCPUs)" "$t/out"
check "the summary counts the failed steps" "step(s) failed; the page above was rendered without their figures" "$t/out"
check "the page names what is missing" '`host-ipi-cost.json`, missing' "$t/results/results.md"
check "the page renders the host's figures" "### Development host" "$t/results/results.md"
check "the page renders real Wasmtime beside pool-adaptive" "### Development host: Wasmtime beside \`pool-adaptive\`" \
    "$t/results/results.md"
for f in host-madvisev-bench.json host-instantiate-bench.json host-instantiate-budget.json \
    host-instantiate-wasi.json host-machine.json host-real-wasmtime.json; do
    [ -s "$t/results/$f" ] || { echo "FAIL: $f was not written"; fail=1; }
done
if [ -e "$t/results/vm-madvisev-bench.json" ]; then
    echo "FAIL: an earlier run's vm-madvisev-bench.json survived a failed guest step"
    fail=1
fi
if [ $fail != 0 ]; then
    echo "--- the demo's output:"
    tail -n 40 "$t/out"
    exit 1
fi
echo "PASS: make demo names each failed step and its log, runs the rest, renders what was written"
