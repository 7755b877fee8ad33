#!/usr/bin/env python3
"""The kselftest's exact IPI-round counts, from a guest log, as JSON.

The mm/madvisev kselftest prints one "flush-table:" line per case it counts
(tlb:tlb_flush at the sender, the fewest rounds over the tries that count)
and one "lock drop:" line for the bounded mmap_lock hold.  This turns the
lines of each kselftest program in LOG (make test's build/vm/test-patched.log,
or the 6.1 guest's) into the JSON the cover letters quote:

    scripts/flush_table.py LOG KERNEL OUT.json
    scripts/flush_table.py --check LOG RECORDED.json

--check holds the counts in LOG (make test's run) to those recorded, so
that a kernel change that moves one shows up before the cover letters
quote a stale figure.

Exit 1 when LOG has no flush-table line, a program's lines disagree with
another's (the 64- and 32-bit programs count the same kernel), or, with
--check, a count differs from the recorded one.
"""

import json
import re
import sys

PROGRAM = re.compile(r"^\[guest\] kselftest mm/madvisev \(([\w.-]+)\)")
ROUNDS = re.compile(r"^# flush-table: (.+?): (\d+) IPI rounds per (call|(\d+) calls)(?: \((\d+) ranges\))?$")
LOCK_DROP = re.compile(r"^# lock drop: (\d+) of (\d+) calls let the mapper in, (\d+) looks through the drop$")


def parse(lines):
    programs, program = {}, None
    for line in lines:
        line = line.rstrip("\r\n")
        m = PROGRAM.match(line)
        if m:
            program = programs.setdefault(m.group(1), {"cases": {}})
            continue
        if program is None:
            continue
        m = ROUNDS.match(line)
        if m:
            case, rounds, _, calls, ranges = m.groups()
            program["cases"][case] = {
                "rounds": int(rounds),
                "calls": int(calls) if calls else 1,
                "ranges": int(ranges) if ranges else None,
            }
            continue
        m = LOCK_DROP.match(line)
        if m:
            program["lock_drop"] = {"calls_let_in": int(m.group(1)), "calls": int(m.group(2)),
                                    "looks_while_dropped": int(m.group(3))}
    return {name: p for name, p in programs.items() if p["cases"]}


def main(argv):
    if len(argv) != 4:
        print(__doc__.strip().split("\n\n")[1], file=sys.stderr)
        return 2
    check = argv[1] == "--check"
    log, kernel, out = (argv[2], None, argv[3]) if check else argv[1:]
    with open(log, encoding="utf-8", errors="replace") as f:
        programs = parse(f)
    if not programs:
        print(f"flush_table: no flush-table lines in {log}", file=sys.stderr)
        return 1
    first = next(iter(programs.values()))["cases"]
    for name, p in programs.items():
        if p["cases"] != first:
            print(f"flush_table: {name} counted differently from the first program", file=sys.stderr)
            return 1
    if check:
        with open(out) as f:
            recorded = next(iter(json.load(f)["programs"].values()))["cases"]
        bad = [f"{case}: {recorded.get(case)} recorded, {first.get(case)} counted"
               for case in sorted(set(recorded) | set(first)) if recorded.get(case) != first.get(case)]
        for b in bad:
            print(f"flush_table: {out}: {b}", file=sys.stderr)
        if bad:
            print("flush_table: the kernel's counts moved; record them again (scripts/flush_table.py LOG KERNEL OUT) "
                  "and update the cover letters", file=sys.stderr)
        return 1 if bad else 0
    doc = {
        "what": "IPI rounds sent per call (tlb:tlb_flush, reason 'remote ipi send', at the sender), "
                "a second thread of the process spinning on the other vCPU: the kselftest's "
                "exact counts, fewest over the tries that count",
        "kernel": kernel,
        "machine": "QEMU TCG x86_64 guest, 2 vCPUs",
        "programs": programs,
    }
    with open(out, "w") as f:
        json.dump(doc, f, indent=1, sort_keys=True)
        f.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
