#!/usr/bin/env bash
# demo.sh: make demo's runs, after make has built the tools and the guests.
# What this kernel offers and what each backend costs, here, in the
# patched 6.12 guest, in the patched 6.1 guest (shootdowns per call) and in
# the 6.12 guest booted with each of VM_SMP_SWEEP's vCPU counts; real
# Wasmtime beside the project's default strategy here and in the 6.12
# guests without and with the series and the patched 6.1 guest, and, where
# make image built it, in the Debian 12 image under Debian's own kernel and
# the madvisev 6.12 kernel package; then the
# results page from whatever JSON the runs wrote.
#
# Every run is a named step with a log of its own.  A step that fails is
# reported by name with its log and the runs after it still go; the page is
# rendered from the JSON that was written (results.py names what is
# missing), and the demo exits 1 with the list of failed steps.
#
# Settings come from the Makefile (its variables of the same names).
set -uo pipefail
# Paths are the Makefile's, relative to the top of the tree.
cd "$(dirname "$0")/.." || exit 1
: "${BUILD:?}" "${VM:?}" "${RESULTS:?}" "${VM_SMP:?}" "${KERNEL_PATCHED:?}" "${INITRAMFS:?}"
: "${KERNEL_61:?}" "${INITRAMFS_61:?}" "${KERNEL_UNPATCHED:?}" "${WASMTIME_BENCH:?}" "${VM_WASMTIME:?}"
logs=$RESULTS/logs
mkdir -p "$logs"
failed=()

fail() {
    echo "FAILED: $1"
    failed+=("$1")
}

# host NAME JSON CMD...: a run on the host; its output shown and kept in
# $logs/NAME.log.  JSON, the file it writes, is removed first, so that a
# failed run leaves no earlier run's figures behind.
host() {
    local name=$1 json=$2
    shift 2
    local log=$logs/$name.log
    [ -z "$json" ] || rm -f "$json"
    "$@" 2>&1 | tee "$log"
    local rc=${PIPESTATUS[0]}
    [ "$rc" = 0 ] || fail "step '$name' (exit $rc); see $log"
}

# guest NAME JOB KERNEL INITRAMFS SMP LIMIT ARGS SHOW BLOCK=FILE...: boot a
# guest for JOB (with guest_disk=IMAGE set, the Debian image: INITRAMFS is
# its initrd); show its console from the line matching SHOW on; take
# each BLOCK it sent on the results channel into RESULTS/FILE, verified.
# A block is taken even when the job failed: the runs before the failure
# sent theirs intact.
guest() {
    local name=$1 job=$2 kernel=$3 initrd=$4 smp=$5 limit=$6 args=$7 show=$8
    shift 8
    local log=$VM/$name.log results=$VM/$name.results
    local b
    for b in "$@"; do rm -f "$RESULTS/${b#*=}"; done
    guest_ok=1
    if ! vm-images/run-vm.sh -q -k "$kernel" -i "$initrd" ${guest_disk:+-d "$guest_disk"} -j "$job" -s "$smp" \
        -t "$limit" -l "$log" -r "$results" -a "$args"; then
        fail "guest step '$name' (job '$job', $smp vCPUs); see $log"
        guest_ok=0
    fi
    if [ -r "$log" ]; then
        tr -d '\r' < "$log" | sed -n "/$show/,/^MADVISEV-VM-EXIT=/p" | grep -v '^MADVISEV-VM-EXIT=\|^\[guest\] block '
    fi
    for b in "$@"; do
        python3 vm-images/guest-results.py "$results" "${b%%=*}" --job "$job" -o "$RESULTS/${b#*=}" \
            2> "$VM/$name.block-error" && continue
        # After a failed guest, a missing block is part of that failure.
        if [ $guest_ok = 1 ]; then
            fail "guest step '$name': block '${b%%=*}' not taken ($(cat "$VM/$name.block-error")); see $log"
        else
            echo "  (so ${b#*=} was not written)"
        fi
    done
    rm -f "$VM/$name.block-error"
}

# machine_json NAME LABEL OUT: the guest's machine, from its 'machine' block
# (after guest NAME, whose guest_ok it reads).
machine_json() {
    rm -f "$3"
    [ $guest_ok = 1 ] || return
    python3 - "$VM/$1.results" "$2" "$3" <<'EOF' || fail "guest step '$1': no machine description; see $VM/$1.results"
import json, subprocess, sys
results, label, out = sys.argv[1:]
p = subprocess.run([sys.executable, "vm-images/guest-results.py", results, "machine"], capture_output=True, text=True)
if p.returncode != 0:
    sys.exit(p.stderr.strip())
release, cpus, mem_kib = p.stdout.split()
with open(out, "w") as f:
    json.dump({"cpu": "QEMU TCG, -cpu max", "cores": int(cpus), "kernel": f"Linux {release} ({label})",
               "memory_gib": round(int(mem_kib) / 1048576), "accelerator": "none"}, f)
    f.write("\n")
EOF
}

tracer=$BUILD/trace/madvisev-trace
traced=0
if [ -x "$tracer" ] && [ "$(id -u)" = 0 ]; then traced=1; fi

# guest_wasmtime NAME KERNEL INITRAMFS KEY LABEL: job 'wasmtime'; its blocks
# merged into RESULTS/KEY-real-wasmtime.json, its machine KEY-machine.json
# (where no other guest step writes one).
guest_wasmtime() {
    local name=$1 kernel=$2 initrd=$3 key=$4 label=$5
    echo
    echo "== $label: wasmtime-bench, instantiate-bench pool-adaptive"
    rm -f "$RESULTS/$key-real-wasmtime.json"
    guest "$name" wasmtime "$kernel" "$initrd" "$VM_SMP" 1200 \
        "madvisev.wasmtime=$VM_WASMTIME madvisev.ours=$VM_WASMTIME" '^# wasmtime-bench' \
        "wasmtime-bench=parts/$key-wasmtime.json" "pool-adaptive-echo=parts/$key-ours-echo.json" \
        "pool-adaptive-request=parts/$key-ours-request.json"
    if [ -s "$RESULTS/parts/$key-wasmtime.json" ]; then
        python3 peers/wasmtime-bench/side-by-side.py merge --wasmtime "$RESULTS/parts/$key-wasmtime.json" \
            --ours "$RESULTS/parts/$key-ours-echo.json" "$RESULTS/parts/$key-ours-request.json" \
            -o "$RESULTS/$key-real-wasmtime.json" || fail "guest step '$name': merging its blocks"
    fi
}

# The Debian 12 image (make image): real Wasmtime beside pool-adaptive as
# in the guests above, booted with Debian's own kernel and with the
# madvisev 6.12 kernel package (their kernels and initrds in IMAGE_DIR/boot).
image_steps() {
    local key pattern label k i
    if [ -z "${IMAGE:-}" ] || [ ! -f "$IMAGE" ]; then
        fail "image steps: no Debian 12 image at ${IMAGE:-?} (make image)"
        return
    fi
    mkdir -p "$RESULTS/parts"
    while IFS='|' read -r key pattern label; do
        echo
        echo "== Debian 12 image, $label, $VM_SMP vCPUs under QEMU TCG"
        k=$(ls "$IMAGE_DIR/boot"/vmlinuz-$pattern 2> /dev/null | head -n 1)
        i=$(ls "$IMAGE_DIR/boot"/initrd.img-$pattern 2> /dev/null | head -n 1)
        if [ -z "$k" ] || [ -z "$i" ]; then
            fail "image step '$key': no kernel and initrd matching $pattern in $IMAGE_DIR/boot"
            continue
        fi
        guest_disk=$IMAGE guest_wasmtime "image-$key" "$k" "$i" "$key" "Debian 12 image, $label"
        machine_json "image-$key" "Debian 12 image, $label" "$RESULTS/$key-machine.json"
    done <<'EOF'
debianstock|*-amd64|Debian's own kernel (linux-image-amd64)
debian|6.12.*-madvisev|the madvisev 6.12 kernel package
EOF
}

host_steps() {
    echo "== host: madvisev-info"
    host madvisev-info "" "$BUILD/libmadvisev/madvisev-info"
    echo
    scripts/machine-info.sh > "$RESULTS/host-machine.json" || fail "step 'machine-info' (scripts/machine-info.sh)"
    echo "== host: madvisev-bench (JSON in $RESULTS/host-madvisev-bench.json)"
    host madvisev-bench "$RESULTS/host-madvisev-bench.json" \
        "$BUILD/libmadvisev/madvisev-bench" --json "$RESULTS/host-madvisev-bench.json"
    echo
    rm -f "$RESULTS/host-madvisev-trace.json"
    if [ $traced = 1 ]; then
        echo "== host: madvisev-bench --trace (JSON in $RESULTS/host-madvisev-trace.json)"
        host madvisev-bench-trace "$RESULTS/host-madvisev-trace.json" \
            "$BUILD/libmadvisev/madvisev-bench" --trace "$tracer" --sizes 4096 --vlens 1,16,64,256 \
            --json "$RESULTS/host-madvisev-trace.json"
    else
        echo "== host: madvisev-bench --trace skipped (needs root and madvisev-trace)"
    fi
    echo
    echo "== host: madvisev-ipi-cost (JSON in $RESULTS/host-ipi-cost.json)"
    host madvisev-ipi-cost "$RESULTS/host-ipi-cost.json" \
        "$BUILD/libmadvisev/madvisev-ipi-cost" --json "$RESULTS/host-ipi-cost.json"
    echo
    echo "== host: instantiate-bench (JSON in $RESULTS/host-instantiate-bench.json)"
    # shellcheck disable=SC2086
    host instantiate-bench "$RESULTS/host-instantiate-bench.json" \
        "$BUILD/runtime-integration/instantiate-bench" $IBENCH --json "$RESULTS/host-instantiate-bench.json"
    echo
    echo "== host: instantiate-bench with a 1 MiB resident budget, smaller than the pool's dirty memory"
    echo "   (JSON in $RESULTS/host-instantiate-budget.json)"
    host instantiate-budget "$RESULTS/host-instantiate-budget.json" \
        "$BUILD/runtime-integration/instantiate-bench" --threads 1,2 --dirty-pages 16,256 --seconds 0.5 \
        --resident-budget 1M --strategy "$IBENCH_BUDGET_STRATEGIES" --json "$RESULTS/host-instantiate-budget.json"
    echo
    echo "== host: instantiate-bench on the WASI programs $IBENCH_WASI_MODULES"
    echo "   (JSON in $RESULTS/host-instantiate-wasi.json)"
    # shellcheck disable=SC2086
    host instantiate-wasi "$RESULTS/host-instantiate-wasi.json" \
        "$BUILD/runtime-integration/instantiate-bench" --module "$IBENCH_WASI_MODULES" --threads 1,2 \
        $IBENCH_WASI --json "$RESULTS/host-instantiate-wasi.json"
    echo
    echo "== host: real Wasmtime (wasmtime-bench, four configurations) beside pool-adaptive, alternated 5 times"
    echo "   (JSON in $RESULTS/host-real-wasmtime.json)"
    host real-wasmtime "$RESULTS/host-real-wasmtime.json" \
        python3 peers/wasmtime-bench/side-by-side.py run --wasmtime-bench "$WASMTIME_BENCH" \
        --instantiate-bench "$BUILD/runtime-integration/instantiate-bench" --wasm "$BUILD/runtime-integration" \
        --threads 1,2 --seconds 0.5 --repetitions 5 -o "$RESULTS/host-real-wasmtime.json"
    echo
    rm -f "$RESULTS/host-instantiate-trace.json"
    if [ $traced = 1 ]; then
        echo "== host: instantiate-bench --trace (JSON in $RESULTS/host-instantiate-trace.json)"
        host instantiate-trace "$RESULTS/host-instantiate-trace.json" \
            "$BUILD/runtime-integration/instantiate-bench" --trace "$tracer" --threads 2 --seconds 0.5 \
            --json "$RESULTS/host-instantiate-trace.json"
    else
        echo "== host: instantiate-bench --trace skipped (needs root and madvisev-trace)"
    fi
}

# Real Wasmtime beside pool-adaptive in the guests, and in the Debian image
# where there is one.
wasmtime_steps() {
    echo "== real Wasmtime beside pool-adaptive, in the guests under QEMU TCG ($VM_SMP vCPUs):"
    echo "   Linux 6.12 without the series, with it, and Linux 6.1 with it"
    mkdir -p "$RESULTS/parts"
    guest_wasmtime wasmtime-stock "$KERNEL_UNPATCHED" "$INITRAMFS" vmstock "Linux 6.12 guest without the series"
    machine_json wasmtime-stock "no series" "$RESULTS/vmstock-machine.json"
    guest_wasmtime wasmtime-patched "$KERNEL_PATCHED" "$INITRAMFS" vm "patched Linux 6.12 guest"
    guest_wasmtime wasmtime-6.1 "$KERNEL_61" "$INITRAMFS_61" vm61 "patched Linux 6.1 guest"
    if [ -n "${IMAGE:-}" ] && [ -f "$IMAGE" ]; then
        image_steps
    else
        echo
        echo "== (no Debian 12 image at ${IMAGE:-?}: make image builds one; its rows stay as recorded)"
    fi
}

guest_steps() {
    echo "== patched Linux 6.12 guest, $VM_SMP vCPUs under QEMU TCG: madvisev-bench, instantiate-bench"
    guest bench-patched bench "$KERNEL_PATCHED" "$INITRAMFS" "$VM_SMP" 1800 \
        "hugepages=16 madvisev.bench=$VM_BENCH madvisev.ibench=$VM_IBENCH madvisev.iwasi=$VM_IWASI" '^kernel:' \
        madvisev-bench=vm-madvisev-bench.json instantiate-bench=vm-instantiate-bench.json \
        instantiate-wasi=vm-instantiate-wasi.json lock-latency=vm-lock-latency.json
    machine_json bench-patched "madvisev series" "$RESULTS/vm-machine.json"
    echo
    echo "== patched Linux 6.1 guest, $VM_SMP vCPUs under QEMU TCG: madvisev-bench"
    guest bench-6.1 shootdowns "$KERNEL_61" "$INITRAMFS_61" "$VM_SMP" 1800 \
        "hugepages=16 madvisev.bench=$VM_BENCH" '^kernel:' madvisev-bench=vm61-madvisev-bench.json
    machine_json bench-6.1 "madvisev series for 6.1" "$RESULTS/vm61-machine.json"
    echo
    wasmtime_steps
    for n in $VM_SMP_SWEEP; do
        echo
        echo "== patched Linux 6.12 guest, $n vCPUs under QEMU TCG: madvisev-ipi-cost, instantiate-bench on $n threads"
        guest "sweep-$n" sweep "$KERNEL_PATCHED" "$INITRAMFS" "$n" 1200 \
            "madvisev.ipicost=$VM_IPICOST madvisev.sweep=$VM_SWEEP" '^\[guest\] sweep' \
            "ipi-cost=vm-smp$n-ipi-cost.json" "instantiate-sweep=vm-smp$n-instantiate-sweep.json"
    done

}

# DEMO_ONLY=host or DEMO_ONLY=guests runs one side (the other's JSON is left
# as it is), DEMO_ONLY=wasmtime the real-Wasmtime guests alone,
# DEMO_ONLY=image the Debian image's alone; the page is rendered either way.
case ${DEMO_ONLY:-all} in
all) host_steps; echo; guest_steps ;;
host) host_steps ;;
guests) guest_steps ;;
wasmtime) wasmtime_steps ;;
image) image_steps ;;
*) echo "demo.sh: DEMO_ONLY must be host, guests, wasmtime or image, not '$DEMO_ONLY'" >&2; exit 2 ;;
esac

echo
python3 scripts/results.py "$RESULTS" "$RESULTS/results.md" "$RESULTS" || fail "step 'results.py' (the page)"
echo
echo "== this run against the figures of docs/results.md, and the noise it states"
python3 scripts/results.py --compare docs/results/data "$RESULTS" ||
    fail "step 'compare' (this run's counts or ratios outside the record's noise; the lines above name them)"
echo
echo "Plots and pages from this run: $RESULTS/*.png, $RESULTS/results.md, $RESULTS/scaling.md"
echo "(make results copies this run's JSON to docs/results/data and regenerates docs/results.md and docs/scaling.md)"
if [ ${#failed[@]} -gt 0 ]; then
    echo
    echo "make demo: ${#failed[@]} step(s) failed; the page above was rendered without their figures:"
    printf '  %s\n' "${failed[@]}"
    exit 1
fi
