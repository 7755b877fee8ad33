#!/bin/sh
# guest-run.sh JOB: what the test guest runs.  Exit 0 pass, non-zero fail.
#   test-patched    swap on zram, kselftest madvisev (64- and 32-bit), the
#                   gtests, wasmpool-swap-test; detection must pick syscall
#                   (and the gtests get MADVISEV_EXPECT_BACKEND=syscall);
#                   then real Wasmtime with decommit_batch_size 32 (block
#                   'wasmtime-check', held by the host to
#                   peers/wasmtime-bench/check.py)
#   test-unpatched  swap on zram, the gtests, wasmpool-swap-test; detection
#                   must pick sequential (MADVISEV_EXPECT_BACKEND=sequential);
#                   the same Wasmtime check
#                   Every gtest that skips is printed, "[guest] SKIPPED NAME
#                   (BINARY)", and one "[guest] skip-report BINARY: N
#                   skipped" line per binary: the host holds them to
#                   tests/skip-allowlist.txt (scripts/check-skips.py).
#   test-arm64      the arm64 guest (patched kernel): swap on zram, the
#                   64-bit kselftest madvisev-kselftest-arm64 (a failed case
#                   fails; each skipped one is printed "[guest] SKIPPED
#                   arm64/CASE (madvisev-kselftest-arm64)", with a
#                   skip-report line, for the same check: its TLB-IPI cases
#                   skip, arm64 flushes by broadcast TLBI), then the flushes
#                   per call that kprobes count (madvisev-flushcount-arm64)
#   bench           madvisev-info, madvisev-bench and instantiate-bench, on
#                   echo and on the WASI programs (their arguments from
#                   madvisev.bench=, madvisev.ibench= and madvisev.iwasi=),
#                   madvisev-lock-latency
#   sweep           madvisev-ipi-cost and instantiate-bench on as many
#                   threads as CPUs (make demo boots it with 2, 4 and 8);
#                   with madvisev.lockstat=1 on a CONFIG_LOCK_STAT kernel,
#                   /proc/lock_stat of the run too (block 'lock-stat')
#   shootdowns      madvisev-info and madvisev-bench (its arguments from
#                   madvisev.bench=): the shootdowns per call of each
#                   backend, for the 6.1 guest in make demo
#   wasmtime        real Wasmtime in each of its configurations on echo and
#                   request (wasmtime-bench, its arguments from
#                   madvisev.wasmtime=), then the project's pool-adaptive
#                   on the same modules with the same threads and time
#                   (instantiate-bench, from madvisev.ours=)
#   info            madvisev-info only
#   faultlat        madvisev-fault-latency: page-fault latency beside
#                   MADV_ZERO in the same page table (madvisev.faultlat=)
#   channel         the results channel under kernel messages: a block
#                   sent while another process forces messages onto the
#                   console through /dev/kmsg, and the same bytes written
#                   to the console as the old markers framed them; the
#                   host holds both to vm-images/test/check_channel.py
#   fuzz            madvisev-fuzz and madvisev-race (debug kernel)
#   trace           madvisev-trace on trace-child, madvisev-bench --trace and
#                   instantiate-bench --trace (debug kernel, with BTF); the
#                   host checks the figures (trace/test/check_guest.sh)
job=$1
export GTEST_COLOR=no
fail=0

# karg NAME: the arguments make passed as madvisev.NAME=A:B:C on the kernel
# command line, as "A B C".
karg() {
    sed -n "s/.*madvisev\\.$1=\\([^ ]*\\).*/\\1/p" /proc/cmdline | tr ':' ' '
}

# Results (JSON) go to the host as verified blocks on a channel of their
# own: emit NAME FILE.
. /tests/emit.sh

# The machine, for the host's description of this run: kernel release,
# CPUs and memory (KiB), as block 'machine'.
emit_machine() {
    echo "$(uname -r) $(nproc) $(sed -n 's/^MemTotal: *\([0-9]*\) kB$/\1/p' /proc/meminfo)" > /tmp/machine.txt
    emit machine /tmp/machine.txt
}

expect_backend() {
    echo "[guest] madvisev-info: $(command -v madvisev-info)"
    madvisev-info > /tmp/info.txt 2>&1
    cat /tmp/info.txt
    if ! grep -q "^selected: $1\$" /tmp/info.txt; then
        echo "[guest] FAIL: detection did not pick $1"
        fail=1
    else
        echo "[guest] detection picks $1, as it must"
    fi
}

# gtest BINARY [ARGS]: run a gtest binary, failures in brief, and name each
# test it skipped (--gtest_brief hides them) from its XML report.  Its exit
# status, or 1 when it left no report.
gtest() {
    g_bin=$1
    shift
    rm -f /tmp/gtest.xml
    "$g_bin" --gtest_brief=1 --gtest_output=xml:/tmp/gtest.xml "$@"
    g_rc=$?
    if [ ! -s /tmp/gtest.xml ]; then
        echo "[guest] FAIL: $g_bin wrote no XML report: its skips are unknown"
        return 1
    fi
    # <testcase name="T" [value_param=...] ... result="skipped" ... classname="S">
    sed -n '/<testcase .*result="skipped"/s/.*<testcase name="\([^"]*\)".* classname="\([^"]*\)".*/\2.\1/p' \
        /tmp/gtest.xml > /tmp/gtest-skipped.txt
    while read -r t; do
        echo "[guest] SKIPPED $t ($g_bin)"
    done < /tmp/gtest-skipped.txt
    echo "[guest] skip-report $g_bin: $(wc -l < /tmp/gtest-skipped.txt) skipped"
    return $g_rc
}

run_gtests() {
    echo "[guest] libmadvisev gtests (MADVISEV_EXPECT_BACKEND=$MADVISEV_EXPECT_BACKEND)"
    if ! gtest madvisev-test; then
        echo "[guest] FAIL: libmadvisev gtests"
        fail=1
    fi
    echo "[guest] pool and wasm2c gtests"
    if ! gtest wasmpool-test; then
        echo "[guest] FAIL: pool and wasm2c gtests"
        fail=1
    fi
}

# Swap for wasmpool-swap-test, which pushes a pool's pages out to swap:
# 256 MiB of zram (compressed RAM; config/guest.config).
setup_swap() {
    if ! { echo 256M > /sys/block/zram0/disksize && mkswap /dev/zram0 && swapon /dev/zram0; } \
        > /tmp/swap.txt 2>&1; then
        cat /tmp/swap.txt
        echo "[guest] FAIL: swap on /dev/zram0"
        fail=1
        return
    fi
    read -r dev type size used prio <<EOF
$(sed -n 2p /proc/swaps)
EOF
    if [ "$dev" != /dev/zram0 ]; then
        cat /proc/swaps
        echo "[guest] FAIL: swap on /dev/zram0: not in /proc/swaps"
        fail=1
        return
    fi
    comp=$(sed 's/.*\[\(.*\)\].*/\1/' /sys/block/zram0/comp_algorithm)
    echo "[guest] swap: $dev ($type, zram $comp), $size KiB, $used KiB used, priority $prio"
}

# TLB flushes per call where there are no shootdown IPIs to count (arm64:
# broadcast TLBI), with kprobe events (config/arm64.config).  tlb_flush
# is arm64's flush of an mmu_gather's range (one TLBI sequence); a
# static inline, the -Os kernel has it out of line once per mm/ file that
# uses it, so every copy in /proc/kallsyms is probed by address and
# madvisev-flushcount sums them.  unmap_page_range: one zapped range (or
# the part of it in one VMA), which tlb_end_vma() ends with a flush where
# CONFIG_MMU_GATHER_MERGE_VMAS is off (arm64); tlb_finish_mmu: one gather.
# For information: it fails only when a call advised the wrong bytes.
# $1: the madvisev-flushcount binary.
count_flushes() {
    t=/sys/kernel/tracing
    mount -t tracefs tracefs $t 2> /dev/null
    if [ ! -w $t/kprobe_events ]; then
        echo "[guest] flushes: no kprobe events in this kernel"
        return
    fi
    n=0
    for a in $(sed -n 's/^\([0-9a-f]*\) t tlb_flush$/\1/p' /proc/kallsyms); do
        n=$((n + 1))
        echo "p:flush/tlb_flush_$n 0x$a" >> $t/kprobe_events || return
    done
    for f in unmap_page_range tlb_finish_mmu; do
        echo "p:flush/$f $f" >> $t/kprobe_events || return
    done
    echo 1 > $t/events/flush/enable
    echo "[guest] flushes: kprobes on $n copies of tlb_flush, unmap_page_range, tlb_finish_mmu"
    if [ $n = 0 ]; then
        echo "[guest] flushes: no out-of-line tlb_flush in /proc/kallsyms: the flushes are not counted"
    fi
    "$1" -n 16 -r 10 > /tmp/flush.txt 2>&1 || fail=1
    sed 's/^/[guest] flushes: /' /tmp/flush.txt
    echo 0 > $t/events/flush/enable
    echo > $t/kprobe_events
}

# The pool's reset of pages that are out in swap.  Not optional: without
# the binary the job fails.
run_swap_test() {
    echo "[guest] pool reset of swapped-out pages"
    if [ ! -x /tests/wasmpool-swap-test ]; then
        echo "[guest] FAIL: wasmpool-swap-test missing"
        fail=1
    elif ! gtest wasmpool-swap-test; then
        echo "[guest] FAIL: wasmpool-swap-test"
        fail=1
    fi
}

# Real Wasmtime (peers/wasmtime-bench) counts its system calls and the
# shootdown rounds it sends with perf on tracepoints: tracefs must be
# mounted for it to find them.
WASM=/tests/data
mount_tracefs() {
    mount -t tracefs tracefs /sys/kernel/tracing 2> /dev/null
    [ -r /sys/kernel/tracing/events/syscalls/sys_enter_process_madvise/id ] ||
        echo "[guest] no syscall tracepoints: wasmtime-bench cannot count system calls"
}

# make test's check: Wasmtime with decommit_batch_size 32 on echo (16
# dirty pages), 2 threads; its arguments (the time, the instantiations it
# must reach) from madvisev.wasmtime=.  The host judges the figures.
run_wasmtime_check() {
    echo "[guest] real Wasmtime, decommit_batch_size 32"
    if [ ! -x /tests/wasmtime-bench ]; then
        echo "[guest] FAIL: wasmtime-bench missing"
        fail=1
        return
    fi
    mount_tracefs
    args=$(karg wasmtime)
    # shellcheck disable=SC2086
    wasmtime-bench --config wasmtime-batch32 --module echo=$WASM/echo.wasm --threads 2 \
        --dirty-pages 16 $args --json /tmp/wasmtime-check.json ||
        { echo "[guest] FAIL: wasmtime-bench"; fail=1; }
    emit wasmtime-check /tmp/wasmtime-check.json
}

case $job in
test-patched)
    # The library's tests pin automatic detection to this backend.
    export MADVISEV_EXPECT_BACKEND=syscall
    setup_swap
    expect_backend syscall
    # The series' sysfs files: what the library reads to find the kernel's
    # interface version (MADV_ZERO from 2 on).
    if v=$(cat /sys/kernel/mm/madvisev/version 2> /dev/null); then
        echo "[guest] /sys/kernel/mm/madvisev/version: $v"
    else
        echo "[guest] FAIL: no /sys/kernel/mm/madvisev/version"
        fail=1
    fi
    # The kselftest counts shootdown rounds at the sender (tlb:tlb_flush).
    mount_tracefs
    for ksft in madvisev-kselftest madvisev-kselftest-32; do
        echo "[guest] kselftest mm/madvisev ($ksft)"
        "${KSFT_DIR:-.}/$ksft" > /tmp/ksft.txt 2>&1
        rc=$?
        cat /tmp/ksft.txt
        if [ $rc -ne 0 ] || grep -q '^not ok' /tmp/ksft.txt || grep -q '# SKIP' /tmp/ksft.txt; then
            echo "[guest] FAIL: $ksft (exit $rc; every case must pass, none skip)"
            fail=1
        fi
    done
    run_gtests
    run_swap_test
    run_wasmtime_check
    ;;
test-arm64)
    setup_swap
    ksft=madvisev-kselftest-arm64
    echo "[guest] kselftest mm/madvisev ($ksft)"
    ./$ksft > /tmp/ksft.txt 2>&1
    rc=$?
    cat /tmp/ksft.txt
    if [ $rc -ne 0 ] || grep -q '^not ok' /tmp/ksft.txt || ! grep -q '^# Totals:' /tmp/ksft.txt; then
        echo "[guest] FAIL: $ksft (exit $rc; a case failed or the run did not finish)"
        fail=1
    fi
    # TAP: "ok N fixture.case # SKIP reason"
    sed -n 's/^ok [0-9][0-9]* \([^ ]*\) # SKIP.*/\1/p' /tmp/ksft.txt > /tmp/ksft-skipped.txt
    while read -r t; do
        echo "[guest] SKIPPED arm64/$t ($ksft)"
    done < /tmp/ksft-skipped.txt
    echo "[guest] skip-report $ksft: $(wc -l < /tmp/ksft-skipped.txt) skipped"
    count_flushes madvisev-flushcount-arm64
    ;;
test-unpatched)
    export MADVISEV_EXPECT_BACKEND=sequential
    setup_swap
    expect_backend sequential
    run_gtests
    run_swap_test
    run_wasmtime_check
    ;;
bench)
    # Each run's JSON is sent as soon as it is written: a later run that
    # fails or hangs leaves the earlier figures with the host.
    emit_machine
    madvisev-info
    args=$(karg bench)
    # shellcheck disable=SC2086
    madvisev-bench $args --json /tmp/madvisev-bench.json || fail=1
    emit madvisev-bench /tmp/madvisev-bench.json
    echo
    args=$(karg ibench)
    # shellcheck disable=SC2086
    instantiate-bench $args --json /tmp/instantiate-bench.json || fail=1
    emit instantiate-bench /tmp/instantiate-bench.json
    echo
    args=$(karg iwasi)
    # shellcheck disable=SC2086
    instantiate-bench $args --json /tmp/instantiate-wasi.json || fail=1
    emit instantiate-wasi /tmp/instantiate-wasi.json
    echo
    # How long mmap()+munmap() waits beside 1024-range calls: the kernel
    # gives up mmap_lock between ranges once 16 MiB were advised.
    rm -f /tmp/lock-latency.jsonl
    for kib in 64 256; do
        madvisev-lock-latency --ranges 1024 --range-kib $kib --seconds 10 \
            --json /tmp/lock-latency.jsonl || fail=1
    done
    { echo '['; sed '$!s/$/,/' /tmp/lock-latency.jsonl; echo ']'; } > /tmp/lock-latency.json
    emit lock-latency /tmp/lock-latency.json
    ;;
sweep)
    # One point of make demo's vCPU sweep: what a TLB-shootdown round
    # costs with 0 .. N-1 receivers, and instantiate-bench on N threads
    # (arguments from madvisev.ipicost= and madvisev.sweep=).
    echo "[guest] sweep: $(nproc) CPUs"
    args=$(karg ipicost)
    # shellcheck disable=SC2086
    madvisev-ipi-cost $args --json /tmp/ipi-cost.json || fail=1
    emit ipi-cost /tmp/ipi-cost.json
    echo
    args=$(karg sweep)
    # madvisev.lockstat=1 on a kernel with CONFIG_LOCK_STAT: the locks
    # waited for during the run, most contended first (block 'lock-stat').
    lockstat=
    if [ -n "$(karg lockstat)" ] && [ -w /proc/lock_stat ]; then
        lockstat=1
        echo 0 > /proc/lock_stat
        echo 1 > /proc/sys/kernel/lock_stat
    fi
    # shellcheck disable=SC2086
    instantiate-bench --threads "$(nproc)" $args --json /tmp/instantiate-sweep.json || fail=1
    emit instantiate-sweep /tmp/instantiate-sweep.json
    if [ -n "$lockstat" ]; then
        echo 0 > /proc/sys/kernel/lock_stat
        head -n 400 /proc/lock_stat > /tmp/lock-stat.txt
        emit lock-stat /tmp/lock-stat.txt
    fi
    ;;
shootdowns)
    emit_machine
    madvisev-info || fail=1
    echo
    args=$(karg bench)
    # shellcheck disable=SC2086
    madvisev-bench $args --json /tmp/madvisev-bench.json || fail=1
    emit madvisev-bench /tmp/madvisev-bench.json
    ;;
wasmtime)
    emit_machine
    mount_tracefs
    args=$(karg wasmtime)
    # shellcheck disable=SC2086
    wasmtime-bench --module echo=$WASM/echo.wasm,request=$WASM/request.wasm --dirty-pages 16 $args \
        --json /tmp/wasmtime-bench.json || fail=1
    emit wasmtime-bench /tmp/wasmtime-bench.json
    echo
    args=$(karg ours)
    # shellcheck disable=SC2086
    instantiate-bench --strategy pool-adaptive --dirty-pages 16 $args --json /tmp/ours-echo.json || fail=1
    emit pool-adaptive-echo /tmp/ours-echo.json
    # shellcheck disable=SC2086
    instantiate-bench --strategy pool-adaptive --module request $args --json /tmp/ours-request.json || fail=1
    emit pool-adaptive-request /tmp/ours-request.json
    ;;
info)
    madvisev-info || fail=1
    ;;
faultlat)
    # A thread's page-fault latency beside MADV_ZERO in the same page
    # table, and alone (its arguments from madvisev.faultlat=).
    emit_machine
    args=$(karg faultlat)
    # shellcheck disable=SC2086
    madvisev-fault-latency $args > /tmp/fault-latency.json || fail=1
    cat /tmp/fault-latency.json
    emit fault-latency /tmp/fault-latency.json
    ;;
channel)
    # The payload: JSON rows as the benchmarks write them, 64 KiB or so.
    awk 'BEGIN { printf "["; for (i = 0; i < 1000; i++)
        printf "%s\n  {\"row\": %d, \"text\": \"%s\"}", i ? "," : "", i,
            "0123456789abcdefghijklmnopqrstuvwxyz"; printf "\n]\n" }' > /tmp/channel.json
    # The console copy, in the old framing, split around the block on the
    # results channel so that the block is sent inside its window.  The
    # markers are written while no kernel message can be printed: one
    # landing inside a marker line would hide the window from the check
    # (seen in CI), which is not what this test is about.
    half=$(( $(stat -c %s /tmp/channel.json) / 2 ))
    echo "MADVISEV-JSON-BEGIN channel"
    # Kernel messages at level 3, under loglevel=5: each one printed on the
    # console by the writer as it writes (printk.devkmsg=on lifts the rate
    # limit).  From another process, until told to stop.
    rm -f /tmp/kmsg.stop
    (n=0; while [ ! -e /tmp/kmsg.stop ]; do
        n=$((n + 1))
        echo "<3>madvisev channel test: kernel message $n" > /dev/kmsg
        usleep 5000
    done; echo "$n" > /tmp/kmsg.count) &
    sleep 1
    head -c "$half" /tmp/channel.json
    emit channel /tmp/channel.json > /tmp/emit.txt
    sleep 1
    tail -c +"$((half + 1))" /tmp/channel.json
    touch /tmp/kmsg.stop
    wait
    # A message handed to another CPU's console owner may still be printing.
    sleep 1
    echo "MADVISEV-JSON-END channel"
    cat /tmp/emit.txt
    echo "[guest] channel: $(cat /tmp/kmsg.count) kernel messages written to /dev/kmsg during the emission"
    ;;
fuzz)
    # Debug kernel: the syscall fuzzer, then the race tests; their
    # arguments from madvisev.fuzz= and madvisev.race=.
    args=$(karg fuzz)
    # shellcheck disable=SC2086
    madvisev-fuzz $args || { echo "[guest] FAIL: madvisev-fuzz"; fail=1; }
    if [ -x /tests/madvisev-race ]; then
        args=$(karg race)
        # shellcheck disable=SC2086
        madvisev-race $args || { echo "[guest] FAIL: madvisev-race"; fail=1; }
    fi
    ;;
trace)
    for extra in alone sibling; do
        arg=
        [ $extra = sibling ] && arg=sibling
        # shellcheck disable=SC2086
        madvisev-trace --json -- trace-child 7 5 5 16 16 $arg > /tmp/trace.json 2> /tmp/trace.err ||
            { echo "[guest] FAIL: madvisev-trace ($extra)"; cat /tmp/trace.err; fail=1; }
        emit "trace-child-$extra" /tmp/trace.json
        emit "trace-child-$extra-stderr" /tmp/trace.err
    done
    madvisev-bench --trace /tests/madvisev-trace --backends syscall,sequential --vlens 1,16 \
        --sizes 4096 --ranges 64 --json /tmp/bench.json || { echo "[guest] FAIL: madvisev-bench --trace"; fail=1; }
    emit bench /tmp/bench.json
    instantiate-bench --trace /tests/madvisev-trace --strategy pool-immediate,pool-sharded-syscall,stock \
        --threads 1 --dirty-pages 4 --seconds 0.3 --json /tmp/ibench.json ||
        { echo "[guest] FAIL: instantiate-bench --trace"; fail=1; }
    emit ibench /tmp/ibench.json
    ;;
*)
    echo "[guest] unknown job '$job'"
    fail=2
    ;;
esac
exit $fail
