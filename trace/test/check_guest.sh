#!/usr/bin/env bash
# check_guest.sh RESULTS OUTDIR: the figures of the debug guest's `trace` job
# (vm-images/guest/guest-run.sh), read from its results channel (run-vm.sh
# -r; each block verified by vm-images/guest-results.py) into OUTDIR, held
# to check_counts.py.  There the kernel has madvisev and, with the
# series' patch 11, process_madvise(PIDFD_SELF): the child's madvisev and
# process_madvise calls all succeed, each batch in one IPI round at most.
set -uo pipefail
results=${1:?usage: check_guest.sh RESULTS OUTDIR}
out=${2:?usage: check_guest.sh RESULTS OUTDIR}
here=$(cd "$(dirname "$0")" && pwd)
top=$(dirname "$(dirname "$here")")
mkdir -p "$out"
extract() { python3 "$top/vm-images/guest-results.py" "$results" "$1" --job trace -o "$out/$1"; }
rc=0
for mode in alone sibling; do
    extract "trace-child-$mode" && extract "trace-child-$mode-stderr" &&
        python3 "$here/check_counts.py" child "$out/trace-child-$mode" "$out/trace-child-$mode-stderr" || rc=1
done
extract bench && python3 "$here/check_counts.py" bench "$out/bench" || rc=1
extract ibench && python3 "$here/check_counts.py" ibench "$out/ibench" || rc=1
if [ $rc = 0 ]; then echo "PASS: madvisev-trace in the guest"; else echo "FAIL: madvisev-trace in the guest"; fi
exit $rc
