#!/usr/bin/env python3
"""side-by-side.py: real Wasmtime beside the project's default strategy.

side-by-side.py run --wasmtime-bench BIN --instantiate-bench BIN --wasm DIR
                    [--modules echo,request,...] [--threads 1,2] [--seconds S]
                    [--repetitions R] -o OUT.json
    R times, alternating: wasmtime-bench in each of its configurations,
    then instantiate-bench's pool-adaptive (the project's default) on the
    same modules (echo with 16 dirty pages), threads and time.  One JSON
    with every repetition's rows, for scripts/results.py's "Real
    Wasmtime" section.  Exits non-zero when a run failed (what was measured
    before it is still written).
side-by-side.py merge --wasmtime FILE --ours FILE... -o OUT.json
    The same JSON from a guest's blocks (one repetition).

OUT: {"dirty_pages": 16, "repetitions": [{"wasmtime": [rows],
      "pool_adaptive": [rows]}, ...]}
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

DIRTY_PAGES = 16


def write(out, reps):
    tmp = out + ".tmp"
    with open(tmp, "w") as f:
        json.dump({"dirty_pages": DIRTY_PAGES, "repetitions": reps}, f, indent=1)
        f.write("\n")
    os.replace(tmp, out)


def load_rows(path):
    with open(path) as f:
        rows = json.load(f)
    if not isinstance(rows, list):
        raise ValueError(f"{path}: not a list of rows")
    return rows


def module_file(d, m):
    """DIR/NAME.wasm, or DIR/wasi/NAME.wasm (the build tree's layout)."""
    for p in (os.path.join(d, m + ".wasm"), os.path.join(d, "wasi", m + ".wasm")):
        if os.path.exists(p):
            return p
    raise ValueError(f"no {m}.wasm in {d} or {d}/wasi")


def run(a):
    modules = a.modules.split(",")
    reps = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(a.repetitions):
            print(f"== repetition {i + 1} of {a.repetitions}: Wasmtime", flush=True)
            wt = os.path.join(tmp, "wasmtime.json")
            spec = ",".join(f"{m}={module_file(a.wasm, m)}" for m in modules)
            subprocess.run([a.wasmtime_bench, "--module", spec, "--threads", a.threads,
                            "--dirty-pages", str(DIRTY_PAGES), "--seconds", str(a.seconds), "--json", wt],
                           check=True)
            rep = {"wasmtime": load_rows(wt), "pool_adaptive": []}
            print(f"== repetition {i + 1} of {a.repetitions}: pool-adaptive", flush=True)
            for m in modules:
                ours = os.path.join(tmp, f"ours-{m}.json")
                what = ["--dirty-pages", str(DIRTY_PAGES)] if m == "echo" else ["--module", m]
                subprocess.run([a.instantiate_bench, "--strategy", "pool-adaptive", *what, "--threads", a.threads,
                                "--seconds", str(a.seconds), "--json", ours], check=True)
                rep["pool_adaptive"] += load_rows(ours)
            reps.append(rep)
            write(a.output, reps)


def merge(a):
    rows = []
    for f in a.ours:
        rows += load_rows(f)
    write(a.output, [{"wasmtime": load_rows(a.wasmtime), "pool_adaptive": rows}])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run")
    r.add_argument("--wasmtime-bench", required=True)
    r.add_argument("--instantiate-bench", required=True)
    r.add_argument("--wasm", required=True, help="directory of echo.wasm and the WASI programs (or of wasi/)")
    r.add_argument("--modules", default="echo,request,compress,grow")
    r.add_argument("--threads", default="1,2")
    r.add_argument("--seconds", type=float, default=1.0)
    r.add_argument("--repetitions", type=int, default=3)
    r.add_argument("-o", "--output", required=True)
    m = sub.add_parser("merge")
    m.add_argument("--wasmtime", required=True)
    m.add_argument("--ours", nargs="+", required=True)
    m.add_argument("-o", "--output", required=True)
    a = ap.parse_args()
    try:
        if a.cmd == "run":
            if a.repetitions < 1:
                ap.error("--repetitions must be at least 1")
            run(a)
        else:
            merge(a)
    except (subprocess.CalledProcessError, OSError, ValueError, json.JSONDecodeError) as e:
        sys.exit(f"side-by-side.py: {e}")


if __name__ == "__main__":
    main()
