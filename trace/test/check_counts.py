#!/usr/bin/env python3
"""check_counts.py TRACE_JSON CHILD_STDERR: hold madvisev-trace's report on
trace-child to what the child says it did.  Exit 0 pass, 1 fail.

The child makes a known number of calls of each kind, each range one dirty
page; the tracer must report exactly those calls, ranges and failures, and
one zapped page per range of every call that succeeded.  With a sibling
thread spinning on another CPU, madvise must send an IPI round per call and
the batching calls (process_madvise, madvisev) at most one per call.
"""
import json
import re
import sys


def main():
    report = json.load(open(sys.argv[1]))
    said = None
    for line in open(sys.argv[2]):
        m = re.match(r"trace-child: (\{.*\})\s*$", line)
        if m:
            said = json.loads(m.group(1))
    if said is None:
        print("FAIL: trace-child reported nothing")
        return 1
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
    for e in errors:
        print("FAIL:", e)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
