# run-job.sh: run the job named on the kernel command line
# (madvisev.job=NAME) with guest-run.sh and report its exit status: as a
# block on the results channel (madvisev.results=TTY, a serial port the
# kernel does not print to; see emit.sh) where there is one, and as a
# line on the console.  Sourced by the initramfs guests' init and by the
# Debian image's madvisev-job service, each of which then powers off.
job=$(sed -n 's/.*madvisev\.job=\([^ ]*\).*/\1/p' /proc/cmdline)
results=$(sed -n 's/.*madvisev\.results=\([^ ]*\).*/\1/p' /proc/cmdline)
echo "[guest] kernel $(uname -r), $(grep -c ^processor /proc/cpuinfo) CPUs, job '$job'"
MADVISEV_RESULTS=
if [ -n "$results" ]; then
    # Raw: no \n -> \r\n, no echo; clocal: no wait for a carrier.
    if stty -F "/dev/$results" raw -echo clocal 2> /tmp/stty.err; then
        MADVISEV_RESULTS=/dev/$results
    else
        echo "[guest] results channel /dev/$results unusable: $(cat /tmp/stty.err)"
    fi
fi
export MADVISEV_RESULTS
# A kselftest is built against one kernel's uapi: the Debian image
# carries the 6.1 series' in /tests/6.1 (the job runs in /tests, where
# gtest's death tests find their binary again).
KSFT_DIR=.
case $(uname -r) in 6.1.*) [ -d /tests/6.1 ] && KSFT_DIR=/tests/6.1 ;; esac
export KSFT_DIR
cd /tests
sh /tests/guest-run.sh "$job"
rc=$?
if [ -n "$MADVISEV_RESULTS" ]; then
    echo "$rc" > /tmp/exit-status
    . /tests/emit.sh
    emit exit /tmp/exit-status
fi
echo "MADVISEV-VM-EXIT=$rc"
sync
