#!/usr/bin/env bash
# run-vm.sh -k KERNEL -i INITRAMFS -j JOB [options]
#   Boot a test guest in QEMU, run JOB (see guest/guest-run.sh) and exit
#   with the guest's exit status (the guest's block 'exit' on the results
#   channel; the console's MADVISEV-VM-EXIT line where there is no such
#   channel).  124 if the guest did not finish in time,
#   125 if it died without reporting one, 126 if the kernel splatted (BUG,
#   WARNING, KASAN, lockdep, Oops, panic, hung task, soft lockup, or any
#   other stack dump).
#   -s N      vCPUs (default 2)
#   -m SIZE   memory (default 2G)
#   -t SECS   time limit (default 600)
#   -l LOG    serial console log (default: a temporary file)
#   -r FILE   the results channel: what the guest sends on its second
#             serial port (ttyS1), to which the kernel never prints; read
#             it with guest-results.py (default: LOG without .log, plus
#             .results).  x86_64 only: the arm64 guest has no such port
#             and its jobs send no blocks.
#   -a ARGS   extra kernel command-line arguments
#   -d DISK   boot the root filesystem on DISK, a raw disk image (the
#             Debian image: INITRAMFS is then its initrd), as /dev/vda;
#             its writes go to a temporary snapshot, not to DISK
#   --arch A  x86_64 (default: qemu-system-x86_64, console ttyS0) or arm64
#             (qemu-system-aarch64 -M virt, console ttyAMA0); the kernel
#             must be that architecture's (bzImage, Image)
#   --kvm     use KVM instead of TCG (real hardware only; nested KVM on
#             these development machines fails with emulation errors)
#   -q        do not echo the console while it runs
set -euo pipefail
kernel= initrd= job= smp=2 mem=2G limit=600 log= results= extra= accel=tcg quiet=0 arch=x86_64 disk=
usage() { sed -n '2,28p' "$0" | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
    case $1 in
    -k|-i|-j|-s|-m|-t|-l|-r|-a|-d|--arch)
        if [ $# -lt 2 ]; then
            echo "run-vm.sh: option '$1' needs a value (try --help)" >&2
            exit 2
        fi ;;
    esac
    case $1 in
    -k) kernel=$2; shift 2 ;;
    -i) initrd=$2; shift 2 ;;
    -j) job=$2; shift 2 ;;
    -s) smp=$2; shift 2 ;;
    -m) mem=$2; shift 2 ;;
    -t) limit=$2; shift 2 ;;
    -l) log=$2; shift 2 ;;
    -r) results=$2; shift 2 ;;
    -a) extra=$2; shift 2 ;;
    -d) disk=$2; shift 2 ;;
    --arch) arch=$2; shift 2 ;;
    --kvm) accel=kvm; shift ;;
    -q) quiet=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "run-vm.sh: unknown option '$1' (try --help)" >&2; exit 2 ;;
    esac
done
[ -n "$kernel" ] && [ -n "$initrd" ] && [ -n "$job" ] || { echo "run-vm.sh: -k, -i and -j are required (try --help)" >&2; exit 2; }
for f in "$kernel" "$initrd" ${disk:+"$disk"}; do
    [ -r "$f" ] || { echo "run-vm.sh: $f: not found" >&2; exit 2; }
done
case $smp in ''|*[!0-9]*) echo "run-vm.sh: bad -s '$smp'" >&2; exit 2 ;; esac
case $limit in ''|*[!0-9]*) echo "run-vm.sh: bad -t '$limit'" >&2; exit 2 ;; esac
case $arch in
x86_64) qemu=(qemu-system-x86_64) console=ttyS0 ;;
arm64) qemu=(qemu-system-aarch64 -M virt) console=ttyAMA0 ;;
*) echo "run-vm.sh: bad --arch '$arch' (x86_64 or arm64)" >&2; exit 2 ;;
esac
[ -n "$log" ] || log=$(mktemp /tmp/madvisev-vm.XXXXXX.log)
[ -n "$results" ] || results=${log%.log}.results
here=$(cd "$(dirname "$0")" && pwd)

if [ "$accel" = kvm ]; then
    accel_args=(-accel kvm -cpu host)
else
    accel_args=(-accel tcg,thread=multi -cpu max)
fi
start=$(date +%s)
channel=()
if [ "$arch" = x86_64 ]; then
    # COM2 (ttyS1) into the results file; the kernel's console is COM1.
    rm -f "$results"
    channel=(-serial "file:$results")
    extra="madvisev.results=ttyS1 $extra"
fi
drive=()
if [ -n "$disk" ]; then
    drive=(-drive "file=$disk,if=virtio,format=raw,snapshot=on")
    # The job owns the serial console: no login prompt there (a getty
    # hangs up the tty the job writes to).
    extra="root=/dev/vda rw systemd.getty_auto=0 $extra"
fi
qemu+=("${accel_args[@]}" -smp "$smp" -m "$mem"
    -nographic -no-reboot -nodefaults -serial stdio "${channel[@]}" "${drive[@]}" -kernel "$kernel" -initrd "$initrd"
    -append "console=$console loglevel=5 panic=-1 oops=panic madvisev.job=$job $extra")
if [ "$arch" = x86_64 ]; then
    echo "[vm] boot $(basename "$kernel"), $smp vCPUs, $accel, job '$job' (log: $log, results: $results)"
else
    echo "[vm] boot $(basename "$kernel") ($arch), $smp vCPUs, $accel, job '$job' (log: $log)"
fi
set +e
if [ "$quiet" = 1 ]; then
    timeout --kill-after=10 "$limit" "${qemu[@]}" < /dev/null > "$log" 2>&1
else
    timeout --kill-after=10 "$limit" "${qemu[@]}" < /dev/null 2>&1 | tee "$log"
fi
qemu_rc=${PIPESTATUS[0]}
set -e
elapsed=$(( $(date +%s) - start ))
# Any kernel splat fails the run, whatever the guest reported.
splats=$(tr -d '\r' < "$log" | grep -E 'BUG:|WARNING:|KASAN:|UBSAN:|possible circular locking|Oops|Kernel panic|INFO: task .* blocked|soft lockup|rcu_sched self-detected|general protection fault|Call Trace:' || true)
if [ -n "$splats" ]; then
    echo "[vm] FAILED: the kernel splatted during job '$job'; see $log:" >&2
    echo "$splats" | head -n 20 >&2
    exit 126
fi
rc=
if [ ${#channel[@]} -gt 0 ]; then
    if out=$(python3 "$here/guest-results.py" "$results" exit --job "$job" 2>&1); then
        rc=$(printf '%s' "$out" | tr -d '\n')
        case $rc in ''|*[!0-9]*) echo "[vm] bad exit block '$rc' in $results" >&2; rc= ;; esac
    else
        echo "[vm] $out" >&2
    fi
fi
if [ -z "$rc" ]; then
    rc=$(tr -d '\r' < "$log" | sed -n 's/^MADVISEV-VM-EXIT=\([0-9]*\)$/\1/p' | tail -n 1)
    if [ -n "$rc" ] && [ ${#channel[@]} -gt 0 ]; then
        echo "[vm] no exit status on the results channel; taking the console's ($rc)" >&2
    fi
fi
if [ -z "$rc" ]; then
    if [ "$qemu_rc" = 124 ] || [ "$qemu_rc" = 137 ]; then
        echo "[vm] FAILED: guest did not finish within ${limit}s; see $log" >&2
        exit 124
    fi
    echo "[vm] FAILED: guest ended (qemu exit $qemu_rc) without reporting a status; see $log" >&2
    tail -n 20 "$log" >&2
    exit 125
fi
echo "[vm] job '$job' exited $rc after ${elapsed}s"
exit "$rc"
