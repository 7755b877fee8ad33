#!/usr/bin/env python3
"""vcpu-sweep.py: instantiate-bench in x86_64 guests of 2, 4, 8 ... vCPUs, on one
thread and on as many threads as vCPUs, for one or more kernel and initramfs
pairs run in turn, idle and with a second guest loading the host, repeated;
writes the rows as JSON (docs/results/data/vm-vcpu-sweep.json).

  scripts/vcpu-sweep.py --config NAME=BZIMAGE,INITRAMFS [--config ...] --out FILE
      [--vcpus 2,4,8] [--reps 3] [--seconds 2] [--strategies A,B] [--loads idle,loaded]
      [--lock-stat]

--lock-stat: the kernel has CONFIG_LOCK_STAT; each row also gets the locks
waited for longest during the run (/proc/lock_stat, block 'lock-stat').
The loader is the first config's kernel and initramfs in a 2-vCPU guest
running pool-adaptive on two threads for as long as the loaded rows take.
Times from these guests are QEMU TCG's; compare rows of one run only."""

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUN_VM = os.path.join(TOP, "vm-images", "run-vm.sh")
RESULTS = os.path.join(TOP, "vm-images", "guest-results.py")
LOCK_ROW = re.compile(r"\s*(\S.*?):" + r"\s+([\d.]+)" * 12 + r"\s*$")


def lock_stat(text, keep=8):
    """The classes of /proc/lock_stat, longest total wait first."""
    rows = []
    for line in text.splitlines():
        m = LOCK_ROW.match(line)
        if m:
            g = m.groups()
            rows.append({"class": g[0], "contentions": int(g[2]), "wait_max_us": float(g[4]),
                         "wait_total_us": float(g[5]), "acquisitions": int(g[8]),
                         "hold_max_us": float(g[10]), "hold_total_us": float(g[11])})
    rows.sort(key=lambda r: -r["wait_total_us"])
    return rows[:keep]


def block(results, name):
    p = subprocess.run([sys.executable, RESULTS, results, name], capture_output=True, text=True)
    return p.stdout if p.returncode == 0 else None


def guest(kernel, initrd, vcpus, args, tmp, limit=900):
    log, res = os.path.join(tmp, "guest.log"), os.path.join(tmp, "guest.results")
    rc = subprocess.run([RUN_VM, "-q", "-k", kernel, "-i", initrd, "-j", "sweep", "-s", str(vcpus), "-t", str(limit),
                         "-l", log, "-r", res, "-a", args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode
    return rc, res


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", action="append", required=True, help="NAME=BZIMAGE,INITRAMFS")
    ap.add_argument("--out", required=True)
    ap.add_argument("--vcpus", default="2,4,8")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--seconds", default="2")
    ap.add_argument("--strategies", default="pool-adaptive,pool-resident-scan,pool-zero-inline")
    ap.add_argument("--loads", default="idle,loaded")
    ap.add_argument("--lock-stat", action="store_true")
    o = ap.parse_args()
    configs = []
    for c in o.config:
        name, _, files = c.partition("=")
        kernel, _, initrd = files.partition(",")
        if not name or not os.path.isfile(kernel) or not os.path.isfile(initrd):
            ap.error(f"--config {c}: want NAME=BZIMAGE,INITRAMFS, both files present")
        configs.append((name, kernel, initrd))
    loads = o.loads.split(",")
    if any(x not in ("idle", "loaded") for x in loads):
        ap.error("--loads: idle and/or loaded")
    vcpus = [int(x) for x in o.vcpus.split(",")]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(1, o.reps + 1):
            for load in loads:
                loader = None
                if load == "loaded":
                    ltmp = os.path.join(tmp, "loader")
                    os.makedirs(ltmp, exist_ok=True)
                    loader = subprocess.Popen(
                        [RUN_VM, "-q", "-k", configs[0][1], "-i", configs[0][2], "-j", "sweep", "-s", "2", "-t", "7200",
                         "-l", os.path.join(ltmp, "g.log"), "-r", os.path.join(ltmp, "g.results"), "-a",
                         "madvisev.ipicost=--calls:10 madvisev.sweep=--threads:2:--dirty-pages:16:--seconds:3600:"
                         "--strategy:pool-adaptive"],
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
                    time.sleep(15)  # booted and running
                try:
                    for n in vcpus:
                        for name, kernel, initrd in configs:
                            args = (f"madvisev.ipicost=--calls:10 madvisev.sweep=--threads:1,{n}:--dirty-pages:16:"
                                    f"--seconds:{o.seconds}:--strategy:{o.strategies}")
                            if o.lock_stat:
                                args += " madvisev.lockstat=1"
                            rc, res = guest(kernel, initrd, n, args, tmp)
                            row = {"kernel": name, "load": load, "vcpus": n, "rep": rep}
                            sweep = block(res, "instantiate-sweep")
                            if rc != 0 or sweep is None:
                                row["error"] = f"guest exit {rc}" + ("" if sweep else ", no instantiate-sweep block")
                            else:
                                row["sweep"] = json.loads(sweep)
                            if o.lock_stat:
                                text = block(res, "lock-stat")
                                row["locks"] = lock_stat(text) if text else None
                            rows.append(row)
                            print(f"{time.strftime('%H:%M:%S')} rep {rep} {load} {n} vCPUs {name}: "
                                  + (row.get("error") or " ".join(f"{r['strategy']}/{r['threads']} "
                                                                  f"{r['instantiations_per_s']:.0f}"
                                                                  for r in row["sweep"])), flush=True)
                            with open(o.out, "w") as f:
                                json.dump({"rows": rows}, f, indent=1)
                finally:
                    if loader:
                        # QEMU runs under timeout(1), in a process group of
                        # its own: found by the results file only it names.
                        subprocess.run(["pkill", "-f", os.path.join(ltmp, "g.results")])
                        os.killpg(loader.pid, 15)
                        loader.wait()
    return 0 if all("error" not in r for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
