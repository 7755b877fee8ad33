#!/usr/bin/env python3
"""check_channel.py CONSOLE_LOG RESULTS: the guest job `channel` (guest-run.sh).

The guest sent one JSON block on the results channel while another process
forced kernel messages onto the console, and wrote the same bytes to the
console between the old MADVISEV-JSON markers around it.  Passes when

  - the block read back from the results channel (guest-results.py)
    is the payload, byte for byte: 1000 rows, row i numbered i, and
  - kernel messages did land inside the console copy, so the block was
    sent while the console was being written to: the condition that broke
    the old extraction (console-json.sh) held.

--from-console reads the block the old way, from the console between the
markers, instead: this check then fails, as the old extraction did.
"""
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
READER = os.path.join(os.path.dirname(HERE), "guest-results.py")
TEXT = "0123456789abcdefghijklmnopqrstuvwxyz"
ROWS = 1000
KMSG = "madvisev channel test: kernel message"


def console_copy(log):
    """The lines between the old markers, as console-json.sh took them."""
    with open(log, "rb") as f:
        lines = f.read().decode("utf-8", "replace").replace("\r", "").split("\n")
    try:
        begin = lines.index("MADVISEV-JSON-BEGIN channel")
        end = lines.index("MADVISEV-JSON-END channel", begin)
    except ValueError:
        return None
    return "\n".join(lines[begin + 1:end]) + "\n"


def check_payload(text, where):
    try:
        rows = json.loads(text)
    except json.JSONDecodeError as e:
        return f"{where}: not JSON: {e}"
    if not isinstance(rows, list) or len(rows) != ROWS:
        return f"{where}: {len(rows) if isinstance(rows, list) else 'no'} rows, not {ROWS}"
    for i, r in enumerate(rows):
        if r != {"row": i, "text": TEXT}:
            return f"{where}: row {i} is {r!r}"
    return None


def main():
    args = [a for a in sys.argv[1:] if a != "--from-console"]
    from_console = len(args) != len(sys.argv) - 1
    if len(args) != 2:
        sys.exit("usage: check_channel.py [--from-console] CONSOLE_LOG RESULTS")
    log, results = args
    failures = []
    copy = console_copy(log)
    if copy is None:
        failures.append(f"{log}: no console copy between MADVISEV-JSON markers")
    else:
        foreign = [ln for ln in copy.split("\n") if KMSG in ln]
        print(f"console copy: {len(foreign)} lines with kernel messages between the old markers")
        if not foreign:
            failures.append("no kernel message landed inside the console copy: "
                            "the block was not sent under the condition this test is about")
    if from_console:
        got = copy if copy is not None else ""
        where = f"{log} (old extraction)"
    else:
        p = subprocess.run([sys.executable, READER, results, "channel", "--job", "channel"],
                           capture_output=True)
        if p.returncode != 0:
            failures.append(p.stderr.decode().strip())
            got = None
        else:
            got = p.stdout.decode()
            print(f"results channel: block 'channel' verified, {len(p.stdout)} bytes")
        where = f"{results} (results channel)"
    if got is not None:
        err = check_payload(got, where)
        if err:
            failures.append(err)
        else:
            print(f"{where}: the payload, intact ({ROWS} rows)")
    for f in failures:
        print(f"FAIL: {f}")
    print("PASS: the results channel under kernel messages" if not failures
          else "FAIL: the results channel under kernel messages")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
