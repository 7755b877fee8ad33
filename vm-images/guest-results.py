#!/usr/bin/env python3
"""Read what a test guest sent on its results channel.

guest-results.py FILE NAME [--job JOB] [-o OUT]
    Print the block NAME (or write it to OUT, atomically: OUT is removed
    first, so a block that fails leaves no stale file behind).
guest-results.py FILE --list [--job JOB]
    One line per block: its name, size and whether it verified.

FILE is what QEMU wrote from the guest's second serial port (run-vm.sh
-r); the kernel's console is the first port, so no kernel message lands
here.  The guest (guest/guest-run.sh, emit) frames each block anyway, so
that a truncated, altered or interleaved one is detected, never parsed:

    MADVISEV-BLOCK 1 NAME LENGTH SHA256\\n
    LENGTH bytes
    MADVISEV-BLOCK-END NAME\\n

Exit status 0, or 1 with one line naming the job, the block and what is
wrong with it; 2 on a usage error.
"""
import argparse
import hashlib
import os
import re
import sys

HEADER = re.compile(rb"MADVISEV-BLOCK 1 ([A-Za-z0-9._-]+) ([0-9]{1,12}) ([0-9a-f]{64})\n")
MAGIC = b"MADVISEV-BLOCK "


class Block:
    def __init__(self, name, offset, data=None, error=None):
        self.name, self.offset, self.data, self.error = name, offset, data, error


def parse(raw):
    """The blocks in raw, in order, each verified or with its error, and the
    (offset, length) of every run of bytes outside a block."""
    blocks, foreign = [], []
    pos = 0
    while pos < len(raw):
        start = raw.find(MAGIC, pos)
        if start < 0:
            foreign.append((pos, len(raw) - pos))
            break
        if start > pos:
            foreign.append((pos, start - pos))
        m = HEADER.match(raw, start)
        if not m:
            # Not a header we can trust: skip its magic and look further.
            end = raw.find(b"\n", start)
            end = len(raw) if end < 0 else end + 1
            foreign.append((start, end - start))
            pos = end
            continue
        name, length, digest = m.group(1).decode(), int(m.group(2)), m.group(3).decode()
        body = m.end()
        trailer = b"MADVISEV-BLOCK-END " + m.group(1) + b"\n"
        data = raw[body:body + length]
        if len(data) < length:
            blocks.append(Block(name, start, error=f"truncated: {len(data)} of {length} bytes"))
            pos = len(raw)
            continue
        if raw[body + length:body + length + len(trailer)] != trailer:
            # The length is wrong or bytes were inserted: resynchronise on
            # the next header.
            blocks.append(Block(name, start, error=f"no end marker after {length} bytes"))
            pos = body
            continue
        got = hashlib.sha256(data).hexdigest()
        if got != digest:
            blocks.append(Block(name, start, error=f"sha256 {got[:16]}... where the guest sent {digest[:16]}..."))
        else:
            blocks.append(Block(name, start, data=data))
        pos = body + length + len(trailer)
    return blocks, foreign


def main():
    ap = argparse.ArgumentParser(description="Read a block the test guest sent on its results channel.")
    ap.add_argument("file")
    ap.add_argument("name", nargs="?")
    ap.add_argument("--job", default="?", help="the guest job, for messages")
    ap.add_argument("-o", dest="out")
    ap.add_argument("--list", action="store_true")
    a = ap.parse_args()
    if bool(a.list) == bool(a.name):
        ap.error("give a block NAME or --list")
    where = f"job '{a.job}' ({a.file})"
    if a.out:
        try:
            os.remove(a.out)
        except FileNotFoundError:
            pass
    try:
        with open(a.file, "rb") as f:
            raw = f.read()
    except OSError as e:
        sys.exit(f"guest-results: {where}: cannot read the results channel: {e.strerror}")
    blocks, foreign = parse(raw)
    if a.list:
        for b in blocks:
            state = "ok" if b.error is None else b.error
            print(f"{b.name}\t{len(b.data) if b.data is not None else '-'}\t{state}")
        for off, n in foreign:
            print(f"(foreign)\t{n}\tat offset {off}")
        return 0
    found = [b for b in blocks if b.name == a.name]
    if not found:
        extra = f"; {sum(n for _, n in foreign)} bytes there are not in any block" if foreign else ""
        sys.exit(f"guest-results: {where}: no block '{a.name}'{extra}")
    if len(found) > 1:
        sys.exit(f"guest-results: {where}: block '{a.name}' was sent {len(found)} times")
    b = found[0]
    if b.error is not None:
        sys.exit(f"guest-results: {where}: block '{a.name}' failed verification: {b.error}")
    if a.out:
        tmp = a.out + ".tmp"
        with open(tmp, "wb") as f:
            f.write(b.data)
        os.replace(tmp, a.out)
    else:
        sys.stdout.buffer.write(b.data)
    return 0


if __name__ == "__main__":
    sys.exit(main())
