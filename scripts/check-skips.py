#!/usr/bin/env python3
"""check-skips.py: every skipped test must be on the allow-list.

A skip is only acceptable where tests/skip-allowlist.txt says, for the
environment the tests ran in, that this test may skip and why.  Anything
else that skipped fails: a test that quietly stops running is a test lost.

  check-skips.py --env ENV --junit FILE [--require NAME]...
      CTest's --output-junit report (host runs: gtest_discover_tests turns a
      GTEST_SKIP into a skipped test, SKIP_RETURN_CODE 77 too).  --require:
      NAME must be in the report and must have run (not skipped).
  check-skips.py --env ENV --guest-log LOG --reports BIN[,BIN...]
      a guest's console log (vm-images/guest/guest-run.sh): its
      "[guest] SKIPPED NAME (BIN)" lines, and one "[guest] skip-report BIN:"
      line per gtest binary named, so that a guest that printed nothing is
      not taken for one where nothing skipped.
  check-skips.py --env ENV --skipped NAME [--why TEXT]
      one thing the Makefile itself skips (vm-trace).
  check-skips.py --selftest
      the checks above on made-up reports; exits 1 if one of them is wrong.

ENV is host, host-asan, host-tsan, guest-patched, guest-patched-6.1 or
guest-unpatched.  An allow-list line's environment E covers ENV when
ENV == E or ENV starts with "E-" (so "host" covers host-asan, "guest" every
guest and "guest-patched" the 6.1 guest too).  Exit 0 when
every skip is allowed, 1 otherwise (each unexpected skip named), 2 on bad
input.
"""
import argparse
import fnmatch
import os
import re
import sys
import tempfile
import xml.etree.ElementTree as ET

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_LIST = os.path.join(os.path.dirname(HERE), "tests", "skip-allowlist.txt")
ENVS = ("host", "host-asan", "host-tsan", "guest-patched", "guest-patched-6.1", "guest-unpatched")


class Bad(Exception):
    pass


def read_allowlist(path):
    """[(envs, pattern, reason, lineno)]; one entry a line: ENVS PATTERN REASON."""
    entries = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            parts = line.split(None, 2)
            if len(parts) < 3:
                raise Bad(f"{path}:{n}: want 'ENVS PATTERN REASON', got {line!r}")
            envs = parts[0].split(",")
            for e in envs:
                if not any(x == e or x.startswith(e + "-") for x in ENVS):
                    raise Bad(f"{path}:{n}: unknown environment {e!r} (know {', '.join(ENVS)})")
            entries.append((envs, parts[1], parts[2], n))
    return entries


def covers(entry_env, env):
    return env == entry_env or env.startswith(entry_env + "-")


def allowed(entries, env, name):
    for envs, pattern, reason, n in entries:
        if any(covers(e, env) for e in envs) and fnmatch.fnmatchcase(name, pattern):
            return reason, n
    return None


def ctest_name(raw):
    # gtest_discover_tests appends "  # GetParam() = 1" to parameterised tests.
    return raw.split("  # ", 1)[0].strip()


def junit_tests(path):
    """{name: 'run' | 'skipped' | 'failed'} from CTest's --output-junit."""
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError) as e:
        raise Bad(f"{path}: {e}")
    out = {}
    for tc in root.iter("testcase"):
        name = ctest_name(tc.get("name", ""))
        status = tc.get("status", "")
        if tc.find("skipped") is not None or status in ("notrun", "disabled"):
            out[name] = "skipped"
        elif tc.find("failure") is not None or status == "fail":
            out[name] = "failed"
        else:
            out[name] = "run"
    if not out:
        raise Bad(f"{path}: no test cases in the report")
    return out


SKIP_LINE = re.compile(r"^\[guest\] SKIPPED (\S+)(?: \((\S+)\))?\s*$")
REPORT_LINE = re.compile(r"^\[guest\] skip-report (\S+):")


def guest_skips(path, reports):
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            lines = [l.replace("\r", "").rstrip("\n") for l in f]
    except OSError as e:
        raise Bad(str(e))
    skipped, seen = [], set()
    for l in lines:
        m = SKIP_LINE.match(l)
        if m:
            skipped.append(m.group(1))
        m = REPORT_LINE.match(l)
        if m:
            seen.add(m.group(1))
    missing = [b for b in reports if b not in seen]
    return skipped, missing


def check(entries, env, skipped, out):
    """Print a line per skip; return the number not allowed."""
    bad = 0
    used = {}
    for name, why in skipped:
        hit = allowed(entries, env, name)
        if hit:
            used.setdefault(hit, []).append(name)
        else:
            bad += 1
            extra = f" ({why})" if why else ""
            print(f"skip-check [{env}]: UNEXPECTED SKIP: {name}{extra}: not on the allow-list "
                  f"for {env}; make it run, or add it to tests/skip-allowlist.txt with the reason",
                  file=out)
    for (reason, n), names in sorted(used.items(), key=lambda x: x[0][1]):
        shown = ", ".join(names[:3]) + (f", ... ({len(names)} in all)" if len(names) > 3 else "")
        print(f"skip-check [{env}]: allowed by line {n} ({reason}): {shown}", file=out)
    return bad


def run(args, out=sys.stdout):
    entries = read_allowlist(args.allowlist)
    if args.env not in ENVS:
        raise Bad(f"--env {args.env!r}: know {', '.join(ENVS)}")
    bad = 0
    skipped = []
    if args.junit:
        tests = junit_tests(args.junit)
        skipped = [(n, "") for n, s in sorted(tests.items()) if s == "skipped"]
        for r in args.require:
            if tests.get(r) != "run" and tests.get(r) != "failed":
                bad += 1
                state = "skipped" if r in tests else "absent from the run (not built?)"
                print(f"skip-check [{args.env}]: REQUIRED TEST DID NOT RUN: {r}: {state}", file=out)
                skipped = [s for s in skipped if s[0] != r]
    elif args.guest_log:
        reports = [b for b in (args.reports or "").split(",") if b]
        names, missing = guest_skips(args.guest_log, reports)
        skipped = [(n, "") for n in names]
        for b in missing:
            bad += 1
            print(f"skip-check [{args.env}]: no skip report from {b} in {args.guest_log} "
                  f"(did it run?)", file=out)
    elif args.skipped:
        skipped = [(args.skipped, args.why or "")]
    else:
        raise Bad("one of --junit, --guest-log, --skipped, --selftest")
    unexpected = check(entries, args.env, skipped, out)
    bad += unexpected
    total = len(skipped)
    print(f"skip-check [{args.env}]: {total} skipped, {total - unexpected} allowed"
          + (f"; FAIL: {unexpected} unexpected, {bad - unexpected} other problems" if bad else ""),
          file=out)
    return 1 if bad else 0


def parser():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--env", default="host")
    p.add_argument("--allowlist", default=DEFAULT_LIST)
    p.add_argument("--junit")
    p.add_argument("--require", action="append", default=[])
    p.add_argument("--guest-log")
    p.add_argument("--reports")
    p.add_argument("--skipped")
    p.add_argument("--why")
    p.add_argument("--selftest", action="store_true")
    return p


def selftest():
    """The checker on made-up inputs: it must pass what is allowed and fail
    everything else."""
    import io
    d = tempfile.mkdtemp()
    allow = os.path.join(d, "allow.txt")
    with open(allow, "w") as f:
        f.write("# comment\n"
                "host,guest-unpatched  Backends/*.*/syscall  no madvisev(2) here\n"
                "guest  Backends/*.*/process_madvise  6.12 has none for the caller\n"
                "host-asan  Scenarios/FirstUse.*/as_limit  sanitizer shadow\n")
    junit = os.path.join(d, "j.xml")

    def write_junit(cases):
        with open(junit, "w") as f:
            f.write('<?xml version="1.0"?><testsuite>')
            for name, st in cases:
                body = '<skipped message="x"/>' if st == "notrun" else ""
                f.write(f'<testcase name="{name}" classname="{name}" status="{st}">{body}</testcase>')
            f.write("</testsuite>")

    log = os.path.join(d, "g.log")

    def write_log(lines):
        with open(log, "w") as f:
            f.write("".join(l + "\r\n" for l in lines))

    def rc(*argv):
        return run(parser().parse_args(["--allowlist", allow, *argv]), io.StringIO())

    cases = []

    def case(what, want, *argv):
        cases.append((what, want, rc(*argv)))

    write_junit([("Backends/Errors.UnknownFlags/syscall  # GetParam() = 1", "notrun"),
                 ("cli.info_runs", "passed"), ("trace.exact_counts", "passed")])
    case("host: allowed syscall skip", 0, "--env", "host", "--junit", junit)
    case("host-tsan: 'host' covers it", 0, "--env", "host-tsan", "--junit", junit)
    case("guest-patched: syscall must not skip", 1, "--env", "guest-patched", "--junit", junit)
    case("required test ran", 0, "--env", "host", "--junit", junit, "--require", "trace.exact_counts")
    case("required test absent", 1, "--env", "host", "--junit", junit, "--require", "trace.nope")
    write_junit([("Backends/Errors.UnknownFlags/io_uring  # GetParam() = 3", "notrun"),
                 ("trace.exact_counts", "notrun")])
    case("host: io_uring skip is unexpected", 1, "--env", "host", "--junit", junit)
    case("required test skipped", 1, "--env", "host", "--junit", junit, "--require", "trace.exact_counts")
    write_junit([("Scenarios/FirstUse.InAFreshProcess/as_limit", "notrun")])
    case("host-asan entry", 0, "--env", "host-asan", "--junit", junit)
    case("host-asan entry is not host's", 1, "--env", "host", "--junit", junit)
    write_log(["[guest] SKIPPED Backends/Semantics.Huge/syscall (madvisev-test)",
               "[guest] skip-report madvisev-test: 1 skipped", "[guest] skip-report wasmpool-test: 0 skipped"])
    case("guest-unpatched: syscall may skip", 0, "--env", "guest-unpatched", "--guest-log", log,
         "--reports", "madvisev-test,wasmpool-test")
    case("guest-patched: syscall may not", 1, "--env", "guest-patched", "--guest-log", log,
         "--reports", "madvisev-test,wasmpool-test")
    case("guest: a binary's report missing", 1, "--env", "guest-unpatched", "--guest-log", log,
         "--reports", "madvisev-test,wasmpool-swap-test")
    case("vm-trace skip is not listed", 1, "--env", "host", "--skipped", "vm-trace")
    bad = 0
    for what, want, got in cases:
        ok = want == got
        bad += not ok
        print(f"check-skips selftest: {'ok ' if ok else 'BAD'} {what}: exit {got}, want {want}")
    return 1 if bad else 0


def main():
    args = parser().parse_args()
    try:
        if args.selftest:
            return selftest()
        return run(args)
    except Bad as e:
        print(f"check-skips: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
