#!/usr/bin/env python3
"""Hold madvisev-trace's figures to what is known.  Exit 0 pass, 1 fail.

check_counts.py child TRACE_JSON CHILD_STDERR
    The tracer's report on trace-child against what the child says it did:
    it makes a known number of calls of each kind, each range one dirty
    page; the tracer must report exactly those calls, ranges and failures,
    and one zapped page per range of every call that succeeded.  With a
    sibling thread spinning on another CPU, madvise must send IPI rounds
    for at least half its calls (the sibling may be off its CPU now and
    then), and the batching calls (process_madvise, madvisev) at most one
    per call.
check_counts.py bench BENCH_JSON
    madvisev-bench --trace: a batching backend makes one system call per
    benchmark call, with at most one IPI round, and zaps exactly the pages
    of its ranges (each dirty); the sequential one makes a call per range
    at least (a sanitizer runtime may add madvise calls of its own).
check_counts.py ibench IBENCH_JSON
    instantiate-bench --trace: pool-immediate makes a reset call per
    instantiation at least, a batching pool one per 32-instance batch; the
    stock runtime makes (almost) none and unmaps instead.  With
    MADVISEV_SANITIZED=1 in the environment (a sanitizer runtime makes
    madvise calls of its own around every mmap), only the lower bounds.
"""
import json
import os
import re
import sys


def check_child(trace_json, child_stderr):
    report = json.load(open(trace_json))
    said = None
    for line in open(child_stderr):
        m = re.match(r"trace-child: (\{.*\})\s*$", line)
        if m:
            said = json.loads(m.group(1))
    if said is None:
        return ["trace-child reported nothing"]
    by = {s["syscall"]: s for s in report["syscalls"]}
    print("traced:", {k: (v["calls"], v["errors"], v["ranges"], v["pages_zapped"],
                          v["ipi_rounds"]) for k, v in by.items()},
          "received", report["shootdowns_received"])
    print("child: ", said)
    errors = []

    def expect(what, got, want):
        if got != want:
            errors.append(f"{what}: {got}, expected {want}")

    vlen = said["vlen"]
    for kind, per_call in (("madvise", 1), ("process_madvise", vlen), ("madvisev", vlen),
                           ("io_uring_madvise", 1)):
        asked, failed = said[kind]
        s = by.get(kind)
        if asked == 0:
            if s is not None:
                errors.append(f"{kind}: {s['calls']} calls, expected none")
            continue
        if s is None:
            errors.append(f"{kind}: not seen, expected {asked} calls")
            continue
        if failed not in (0, asked):
            errors.append(f"{kind}: {failed} of {asked} calls failed; the test wants all or none")
            continue
        expect(f"{kind} calls", s["calls"], asked)
        expect(f"{kind} ranges", s["ranges"], asked * per_call)
        expect(f"{kind} errors", s["errors"], failed)
        expect(f"{kind} pages zapped", s["pages_zapped"], 0 if failed else asked * per_call)
        if failed:
            continue
        if kind in ("process_madvise", "madvisev") and s["ipi_rounds"] > asked:
            errors.append(f"{kind}: {s['ipi_rounds']} IPI rounds for {asked} calls: "
                          "more than one per call")
        if said["sibling"] and kind == "madvise" and s["ipi_rounds"] < asked // 2:
            errors.append(f"madvise: {s['ipi_rounds']} IPI rounds for {asked} calls "
                          "with a spinning sibling")
    if said["io_uring_madvise"][0]:
        s = by.get("io_uring_enter")
        if s is None:
            errors.append("io_uring_enter: not seen")
        else:
            expect("io_uring_enter calls", s["calls"], 1)
            expect("io_uring_enter submissions", s["ranges"], said["io_uring_madvise"][0])
            expect("io_uring_enter pages zapped (the workers zap)", s["pages_zapped"], 0)
    return errors


BATCHING = ("process_madvise", "syscall")


def check_bench(bench_json):
    errors = []
    for r in json.load(open(bench_json)):
        row = f"{r['backend']} vlen {r['vlen']}"
        print(row, {k: r[k] for k in r if k.startswith("traced_")})
        pages = r["vlen"] * r["range_bytes"] // 4096
        if r["backend"] in BATCHING:
            if r["traced_syscalls_per_call"] != 1:
                errors.append(f"{row}: {r['traced_syscalls_per_call']} system calls per call")
            if r["traced_ipi_rounds_per_call"] > 1:
                errors.append(f"{row}: {r['traced_ipi_rounds_per_call']} IPI rounds per call")
            if r["traced_pages_zapped_per_call"] != pages:
                errors.append(f"{row}: {r['traced_pages_zapped_per_call']} pages zapped per "
                              f"call, expected {pages}")
        elif r["traced_syscalls_per_call"] < r["vlen"]:
            errors.append(f"{row}: {r['traced_syscalls_per_call']} system calls per call")
    return errors


def check_ibench(ibench_json):
    rows = {r["strategy"]: r for r in json.load(open(ibench_json))}
    exact = os.environ.get("MADVISEV_SANITIZED") != "1"
    errors = []
    for name, r in rows.items():
        print(name, {k: r[k] for k in r if k.startswith("traced_")})
    for name, r in rows.items():
        calls = r["traced_syscalls_per_instantiation"]
        if name == "pool-immediate" and calls < 1:
            errors.append(f"{name}: {calls} reset calls per instantiation")
        if name.startswith("pool-sharded-") and name.split("pool-sharded-")[1] in (
                "process-madvise", "syscall"):
            # One call per full batch, and a few partial ones the tracer also
            # sees: after the warm-up, by a thread that ran short, and the
            # queue flushed at destruction.  A short run (few instantiations
            # on a slow guest) is held to that count, a long one to half a
            # batch of slack.  Unbatched resets would cost 3 per instantiation.
            n = r["instantiations"]
            total = round(calls * n)
            allowed = max(1.5 * n / r["batch_size"], n // r["batch_size"] + 3)
            if exact and total > allowed:
                errors.append(f"{name}: {total} reset calls for {n} instantiations "
                              f"(batch {r['batch_size']}: at most {allowed:g})")
            zapped = r["traced_pages_zapped_per_instantiation"]
            if zapped is None:
                errors.append(f"{name}: the tracer counted no zapped pages")
            elif zapped < r["dirty_pages"]:
                errors.append(f"{name}: fewer pages zapped than dirtied")
        if name == "stock":
            # glibc trims a thread's heap with madvise now and then.
            if exact and calls >= 0.1:
                errors.append(f"stock: {calls} madvise-family calls per instantiation")
            if r["traced_other_flushes_per_instantiation"] <= 0:
                errors.append("stock: no flushes outside calls (it unmaps)")
    return errors


def main():
    modes = {"child": (check_child, 2), "bench": (check_bench, 1), "ibench": (check_ibench, 1)}
    if len(sys.argv) < 2 or sys.argv[1] not in modes or len(sys.argv) != 2 + modes[sys.argv[1]][1]:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    fn, _ = modes[sys.argv[1]]
    errors = fn(*sys.argv[2:])
    for e in errors:
        print("FAIL:", e)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
