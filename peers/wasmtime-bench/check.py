#!/usr/bin/env python3
"""check.py RESULTS --kernel series|stock --min-instantiations N

make test's judgement of real Wasmtime in a guest: the 'wasmtime-check'
block the guest's test job sent (wasmtime-bench, decommit_batch_size 32,
echo, 2 threads), read through vm-images/guest-results.py.

  series  a kernel with the madvisev series (patch 11: process_madvise takes
          PIDFD_SELF): Wasmtime instantiated at least N times without an
          error, every reset went through process_madvise() and none of
          those calls failed, no madvise() fallback, and each call cost at
          most 1.1 IPI rounds (the rounds every worker sent, all causes,
          over the calls; and some were counted at all).
  stock   the same kernel without the series: what Wasmtime 48 really does
          there.  The kernel answers EBADF to PIDFD_SELF; Wasmtime tries
          every batch anyway, every such call fails, Wasmtime returns no
          error to its embedder and resets nothing by madvise: it drops the
          slots' memory images and paves each slot over with mmap() when it
          is next used (at least 0.9 per instantiation), and the rounds per
          batch stay above the series' bound.

Prints the figures it judged; exit 0 when they hold, 1 with each failed
condition named.
"""
import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
GUEST_RESULTS = os.path.join(HERE, "..", "..", "vm-images", "guest-results.py")
ROUNDS_PER_BATCH_MAX = 1.1


def load(results):
    p = subprocess.run([sys.executable, GUEST_RESULTS, results, "wasmtime-check"],
                       capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"check.py: {p.stderr.strip() or 'no wasmtime-check block in ' + results}")
    try:
        rows = json.loads(p.stdout)
    except json.JSONDecodeError as e:
        sys.exit(f"check.py: the wasmtime-check block is not JSON: {e}")
    if not isinstance(rows, list) or len(rows) != 1:
        sys.exit(f"check.py: expected one row in the wasmtime-check block, got {len(rows)}")
    return rows[0]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("results")
    ap.add_argument("--kernel", choices=["series", "stock"], required=True)
    ap.add_argument("--min-instantiations", type=int, required=True)
    a = ap.parse_args()
    r = load(a.results)

    n = r["instantiations"]
    calls, failed = r.get("process_madvise_calls"), r.get("process_madvise_failed")
    rounds = r.get("ipi_rounds_sent")
    per_call = r.get("ipi_rounds_per_process_madvise")
    received = r.get("shootdowns_per_instantiation")  # null: no TLB row in /proc/interrupts
    print(f"wasmtime-check ({a.kernel}): Wasmtime {r['wasmtime_version']} {r['config']}, {r['module']}, "
          f"{r['threads']} threads: {n} instantiations, {r['errors']} errors; "
          f"process_madvise(PIDFD_SELF) -> {r['process_madvise_pidfd_self']}; "
          f"{calls} process_madvise calls ({failed} failed), {r.get('madvise_calls')} madvise, "
          f"{r.get('mmap_calls')} mmap; {rounds} IPI rounds sent "
          f"({'-' if per_call is None else f'{per_call:.3f}'} per process_madvise call); "
          f"{'-' if received is None else f'{received:.3f}'} shootdowns received per instantiation")

    problems = []

    def need(cond, what):
        if not cond:
            problems.append(what)

    need(r["config"] == "wasmtime-batch32" and r["decommit_batch_size"] == 32,
         "the row is not Wasmtime with decommit_batch_size 32")
    need(n >= a.min_instantiations, f"{n} instantiations, fewer than {a.min_instantiations}")
    need(r["errors"] == 0, f"Wasmtime returned {r['errors']} errors (first: {r['first_error']})")
    if calls is None or rounds is None:
        need(False, "the guest could not count system calls and IPI rounds (perf, syscall tracepoints)")
    elif a.kernel == "series":
        need(r["process_madvise_pidfd_self"] == "ok",
             f"process_madvise(PIDFD_SELF) answered {r['process_madvise_pidfd_self']}, not ok")
        need(calls > 0, "Wasmtime made no process_madvise call")
        need(failed == 0, f"{failed} of {calls} process_madvise calls failed")
        need(r["madvise_calls"] == 0, f"{r['madvise_calls']} madvise calls: Wasmtime fell back")
        # Two busy threads on two CPUs: a batch that sends no round at all
        # is possible, a row of them is a counter that counts nothing.
        need(rounds > 0, "no IPI round counted in the whole row: the round counter is not counting")
        need(per_call is not None and per_call <= ROUNDS_PER_BATCH_MAX,
             f"{per_call} IPI rounds per process_madvise call, more than {ROUNDS_PER_BATCH_MAX}")
    else:
        need(r["process_madvise_pidfd_self"] == "EBADF",
             f"process_madvise(PIDFD_SELF) answered {r['process_madvise_pidfd_self']}, not EBADF")
        need(calls > 0, "Wasmtime made no process_madvise call")
        need(failed == calls, f"{failed} of {calls} process_madvise calls failed, not all")
        need(r["madvise_calls"] == 0, f"{r['madvise_calls']} madvise calls: Wasmtime fell back to madvise")
        need(r["mmap_calls"] >= 0.9 * n,
             f"{r['mmap_calls']} mmap calls for {n} instantiations: the failed slots were not paved over")
        need(per_call is not None and per_call > ROUNDS_PER_BATCH_MAX,
             f"{per_call} IPI rounds per batch: within the series' bound on a kernel without it")
    for p in problems:
        print(f"wasmtime-check ({a.kernel}): FAILED: {p}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
