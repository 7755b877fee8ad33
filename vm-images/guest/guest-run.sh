#!/bin/sh
# guest-run.sh JOB: what the test guest runs.  Exit 0 pass, non-zero fail.
#   test-patched    kselftest madvisev, the gtests; detection must pick syscall
#   test-unpatched  the gtests; detection must pick sequential
#   bench           madvisev-info, madvisev-bench and instantiate-bench (their
#                   arguments from madvisev.bench= and madvisev.ibench=)
#   info            madvisev-info only
#   fuzz            madvisev-fuzz and madvisev-race (debug kernel)
job=$1
export GTEST_COLOR=no
fail=0

expect_backend() {
    madvisev-info > /tmp/info.txt 2>&1
    cat /tmp/info.txt
    if ! grep -q "^selected: $1\$" /tmp/info.txt; then
        echo "[guest] FAIL: detection did not pick $1"
        fail=1
    else
        echo "[guest] detection picks $1, as it must"
    fi
}

run_gtests() {
    echo "[guest] libmadvisev gtests"
    if ! madvisev-test --gtest_brief=1; then
        echo "[guest] FAIL: libmadvisev gtests"
        fail=1
    fi
    echo "[guest] pool and wasm2c gtests"
    if ! wasmpool-test --gtest_brief=1; then
        echo "[guest] FAIL: pool and wasm2c gtests"
        fail=1
    fi
}

case $job in
test-patched)
    expect_backend syscall
    echo "[guest] kselftest mm/madvisev"
    ./madvisev-kselftest > /tmp/ksft.txt 2>&1
    ksft=$?
    cat /tmp/ksft.txt
    if [ $ksft -ne 0 ] || grep -q '^not ok' /tmp/ksft.txt || grep -q '# SKIP' /tmp/ksft.txt; then
        echo "[guest] FAIL: kselftest (exit $ksft; every case must pass, none skip)"
        fail=1
    fi
    run_gtests
    ;;
test-unpatched)
    expect_backend sequential
    run_gtests
    ;;
bench)
    madvisev-info
    args=$(sed -n 's/.*madvisev\.bench=\([^ ]*\).*/\1/p' /proc/cmdline | tr ':' ' ')
    # shellcheck disable=SC2086
    madvisev-bench $args --json /tmp/madvisev-bench.json || fail=1
    echo
    args=$(sed -n 's/.*madvisev\.ibench=\([^ ]*\).*/\1/p' /proc/cmdline | tr ':' ' ')
    # shellcheck disable=SC2086
    instantiate-bench $args --json /tmp/instantiate-bench.json || fail=1
    # The JSON goes to the host through the console, between markers.
    for f in madvisev-bench instantiate-bench; do
        echo "MADVISEV-JSON-BEGIN $f"
        cat /tmp/$f.json
        echo "MADVISEV-JSON-END $f"
    done
    ;;
info)
    madvisev-info || fail=1
    ;;
fuzz)
    # Debug kernel: the syscall fuzzer, then the race tests; their
    # arguments from madvisev.fuzz= and madvisev.race=.
    args=$(sed -n 's/.*madvisev\.fuzz=\([^ ]*\).*/\1/p' /proc/cmdline | tr ':' ' ')
    # shellcheck disable=SC2086
    madvisev-fuzz $args || { echo "[guest] FAIL: madvisev-fuzz"; fail=1; }
    if [ -x /tests/madvisev-race ]; then
        args=$(sed -n 's/.*madvisev\.race=\([^ ]*\).*/\1/p' /proc/cmdline | tr ':' ' ')
        # shellcheck disable=SC2086
        madvisev-race $args || { echo "[guest] FAIL: madvisev-race"; fail=1; }
    fi
    ;;
*)
    echo "[guest] unknown job '$job'"
    fail=2
    ;;
esac
exit $fail
