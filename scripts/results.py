#!/usr/bin/env python3
"""The results page, its plots, and how a fresh run compares with it.

results.py DATA_DIR OUT_MD PNG_DIR
    DATA_DIR holds the JSON the benchmarks wrote: {host,vm}-madvisev-bench.json,
    {host,vm}-instantiate-bench.json, {host,vm}-machine.json and, optionally,
    host-madvisev-trace.json and host-instantiate-trace.json (--trace runs) and
    {host,vm}-instantiate-wasi.json (instantiate-bench --module on the WASI programs).  The page is a pure
    function of them: the same JSON gives the same bytes.  Plots are drawn
    with gnuplot (PNG); a missing gnuplot leaves the page without pictures.
results.py --compare RECORDED_DIR FRESH_DIR
    Row by row, how far a fresh run's figures are from the recorded ones,
    against the noise band the page states (NOISE); prints a summary and
    the rows outside it, and says which files are missing.  Informational:
    it always exits 0.
"""
import json
import math
import os
import random
import shutil
import subprocess
import statistics
import sys
import tempfile

import results_vcpus
import results_prose
import results_wasmtime

MACHINES = [("host", "Development host"), ("vm", "Patched Linux 6.12 guest (QEMU TCG)")]
# What every make demo writes (the --trace runs need root and the tracer,
# the sweep's files are named by its vCPU counts).
EXPECTED = [f"{k}-{n}.json" for k, _ in MACHINES
            for n in ("madvisev-bench", "instantiate-bench", "machine", "instantiate-wasi")] + [
    "host-ipi-cost.json", "vm61-madvisev-bench.json", "vm61-machine.json", "vmstock-machine.json"] + results_wasmtime.DEMO_FILES
# Wasmtime's policies reimplemented on this pool: baselines, not the
# project's strategies, and not Wasmtime (that is results_wasmtime).
WASMTIME = ("pool-madvise-each", "pool-resident-scan")
# What a user of the pool gets without choosing: "ours" in every headline and
# every comparison with a peer.  The fastest of the project's strategies in a
# row is shown only labelled as a best-of-N figure.
DEFAULT = "pool-adaptive"


def resets_all(r):
    """A row whose strategy resets everything a tenant wrote: not the insecure bound, not a variant that
    leaves the fiber stacks (NAME/no-stacks, as Wasmtime's policies leave them)."""
    return not r["insecure"] and not r["strategy"].endswith("/no-stacks")
# Their names in JSON recorded before they were renamed.
RENAMED = {"wasmtime-default": "pool-madvise-each", "wasmtime-best": "pool-resident-scan"}

# Run-to-run noise in the counts, per machine: a count (shootdowns per call
# or per instantiation) of a fresh run lies within COUNT_ABS plus COUNT_REL
# of the recorded one; "the counts match" when at least MATCH of the rows
# do.  Set from --compare between make demo runs on the development host:
# batched calls' counts did not move; those of the unbatched backends moved
# by up to ~20% (their IPIs depend on whether the spinning sibling thread is
# on its CPU), io_uring's by up to 42% (its workers race the sibling).  The
# insecure bound (unsafe-no-reset) is held to nothing: it times a loop that
# does next to nothing.
NOISE = {"host": {"count_abs": 0.05, "count_rel": 0.15},
         "vm": {"count_abs": 0.05, "count_rel": 0.15}}
MATCH = 0.90
# Within one run, two rows this close can swap places in the next one
# (per-thread against global queue moved by up to 4% on the host).
WITHIN_RUN = {"host": 0.05, "vm": 0.10}


def in_count_band(new, old, band):
    """A fresh count within the run-to-run noise of a recorded one (NOISE)."""
    return abs(new - old) <= band["count_abs"] + band["count_rel"] * abs(old)


# What load() could not use, as (file, why): reported by name on stderr and
# on the page, the rest rendered without it.
LEFT_OUT = []


def load(d, name):
    """A benchmark's JSON, or None where the file is missing or unusable."""
    p = os.path.join(d, name)
    if not os.path.exists(p):
        return None
    try:
        with open(p) as f:
            doc = json.load(f)
        for r in doc if isinstance(doc, list) else []:
            if isinstance(r, dict) and r.get("strategy") in RENAMED:
                r["strategy"] = RENAMED[r["strategy"]]
        return doc
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        why = f"not valid JSON ({e})" if isinstance(e, json.JSONDecodeError) else f"unreadable ({e})"
        LEFT_OUT.append((name, why))
        print(f"results.py: {p}: {why}; left out", file=sys.stderr)
        return None


def left_out_lines():
    """The page's word on what it could not use, where anything."""
    if not LEFT_OUT:
        return []
    return ["**Left out of this page** (the rest is rendered without it): "
            + "; ".join(f"`{n}`, {why}" for n, why in LEFT_OUT) + ".", ""]


def report_missing(data_dir, data):
    """The files every make demo writes, where missing, reported by name."""
    for name in EXPECTED:
        if data.get(name) is None and name not in (n for n, _ in LEFT_OUT):
            LEFT_OUT.append((name, "missing"))
            print(f"results.py: {os.path.join(data_dir, name)}: missing; left out", file=sys.stderr)


def fmt(x, digits=0):
    return f"{x:,.{digits}f}"


def bench_table(recs):
    rows = ["| backend | range | vlen | calls | ns per range | shootdowns per call |",
            "|---|---|---|---|---|---|"]
    for r in recs:
        rows.append(f"| {r['backend']} | {r['range_bytes'] // 1024} KiB | {r['vlen']} | {r['calls']} | "
                    f"{fmt(r['ns_per_range'], 1)} | {r['shootdowns_per_call']:.2f} |")
    return "\n".join(rows)


def dirtied(r):
    """Pages holding data at free per instantiation, memory + stack (instantiate-bench's
    untimed page-scan pass); "–" where the run did not count them."""
    mem, stack = r.get("memory_pages_dirtied_per_instantiation"), r.get("stack_pages_dirtied_per_instantiation")
    if mem is None:
        return "–"
    return f"{mem:.1f} + {stack:.0f}" if stack is not None else f"{mem:.1f} + ?"


def rate_cell(r):
    """Instantiations/s: the median over the row's runs with its 95% interval
    where it ran more than once, and a mark where runs were short."""
    return results_wasmtime.rate_text(
        r, short=" **short: {short_runs} of {runs} runs under 10 batches per thread**")


def flusher_cell(r):
    """The pool's flusher thread's CPU time per instantiation, in µs ("–": stock, or not measured)."""
    f = r.get("flusher_cpu_ns_per_instantiation")
    return "–" if f is None else f"{f / 1000:.2f}"


def faults_cell(r):
    f = r.get("page_faults_per_instantiation")
    return "–" if f is None else f"{f:.2f}"


def inst_table(recs):
    # Records from before the page-scan pass have no pages-dirtied column,
    # those from before getrusage() no page-fault column.
    scanned = any("memory_pages_dirtied_per_instantiation" in r for r in recs)
    faulted = any("page_faults_per_instantiation" in r for r in recs)
    flushed = any("flusher_cpu_ns_per_instantiation" in r for r in recs)
    rows = ["| strategy | dirty pages | threads | batch | instantiations/s | per thread | efficiency | "
            "shootdowns per instantiation | " + ("pages dirtied (memory + stack) | " if scanned else "")
            + ("page faults per instantiation | " if faulted else "")
            + ("flusher CPU µs per instantiation | " if flushed else "") + "p50 µs | p99 µs |",
            "|---|---|---|---|---|---|---|---|---|---|" + ("---|" if scanned else "") + ("---|" if faulted else "")
            + ("---|" if flushed else "")]
    for r in recs:
        eff = "–" if r["efficiency"] is None else f"{r['efficiency']:.2f}"
        name = r["strategy"] + (" (INSECURE)" if r["insecure"] else "")
        rows.append(f"| {name} | {r['dirty_pages']} | {r['threads']} | {r['batch_size']} | "
                    f"{rate_cell(r)} | {fmt(r['instantiations_per_s'] / r['threads'])} | {eff} | "
                    f"{r['shootdowns_per_instantiation']:.3f} | " + (f"{dirtied(r)} | " if scanned else "")
                    + (f"{faults_cell(r)} | " if faulted else "")
                    + (f"{flusher_cell(r)} | " if flushed else "")
                    + f"{r['p50_ns'] / 1000:.1f} | {r['p99_ns'] / 1000:.1f} |")
    return "\n".join(rows)


def wasi_table(recs):
    faulted = any("page_faults_per_instantiation" in r for r in recs)
    flushed = any("flusher_cpu_ns_per_instantiation" in r for r in recs)
    rows = ["| module | strategy | threads | batch | instantiations/s | per thread | efficiency | "
            "shootdowns per instantiation | pages dirtied (memory + stack) | "
            + ("page faults per instantiation | " if faulted else "")
            + ("flusher CPU µs per instantiation | " if flushed else "") + "p50 µs | p99 µs |",
            "|---|---|---|---|---|---|---|---|---|---|---|" + ("---|" if faulted else "") + ("---|" if flushed else "")]
    for r in recs:
        eff = "–" if r["efficiency"] is None else f"{r['efficiency']:.2f}"
        rows.append(f"| {r['module']} | {r['strategy']} | {r['threads']} | {r['batch_size']} | "
                    f"{rate_cell(r)} | {fmt(r['instantiations_per_s'] / r['threads'])} | {eff} | "
                    f"{r['shootdowns_per_instantiation']:.3f} | {dirtied(r)} | "
                    + (f"{faults_cell(r)} | " if faulted else "")
                    + (f"{flusher_cell(r)} | " if flushed else "")
                    + f"{r['p50_ns'] / 1000:.1f} | {r['p99_ns'] / 1000:.1f} |")
    return "\n".join(rows)


def reading_wasi(recs, machine="host"):
    """What the WASI programs show at the most threads, computed from their rows."""
    lines = []
    top = max(r["threads"] for r in recs)
    for module in sorted({r["module"] for r in recs}, key=lambda m: [r["module"] for r in recs].index(m)):
        at = rows(recs, module=module, threads=top)
        safe = [r for r in at if resets_all(r) and r["strategy"] not in WASMTIME]
        stock = one(at, strategy="stock")
        if not safe or not stock:
            continue
        pages = stock.get("pages_dirtied_per_instantiation")
        text = (f"- **`{module}`, {top} threads:** "
                + (f"it leaves {pages:.0f} pages holding data per instance (memory and stack); " if pages is not None else "")
                + headline(at, safe, stock, top, machine == "host"))
        shoot = [r for r in safe if r["strategy"] != "stock"]
        if shoot:
            worst = max(shoot, key=lambda r: r["shootdowns_per_instantiation"])
            text += (f"; the pool's strategies cost at most {worst['shootdowns_per_instantiation']:.3f} shootdowns "
                     f"per instantiation (`{worst['strategy']}`) against {stock['shootdowns_per_instantiation']:.3f} "
                     "for `stock`")
        lines.append(text + ".")
    return lines


def headline(at, safe, stock, top, timed=True):
    """Ours (the default) against stock at @top threads, then the fastest of the safe strategies, labelled as
    the best of N, where it is another.  Untimed (a guest's emulated times): the counts alone."""
    mine = one(at, strategy=DEFAULT)
    if not timed:
        return ((f"ours, `{DEFAULT}` (the default), sends {mine['shootdowns_per_instantiation']:.3f} shootdowns per "
                 f"instantiation against {stock['shootdowns_per_instantiation']:.3f} for `stock` on {top} threads "
                 "(counts: the guest's times are emulation's)") if mine else "")
    best = max(safe, key=lambda r: r["instantiations_per_s"])
    n = len([r for r in safe if r["strategy"] != "stock"])
    text = ""
    if mine:
        text = (f"ours, `{DEFAULT}` (the default), runs {fmt(mine['instantiations_per_s'])}/s, "
                f"{mine['instantiations_per_s'] / stock['instantiations_per_s']:.1f}x `stock` on {top} threads")
    if best is not mine:
        text += ("; " if text else "") + (
            f"the fastest of the {n} safe strategies (best of {n}) is `{best['strategy']}`, "
            f"{fmt(best['instantiations_per_s'])}/s, {best['instantiations_per_s'] / stock['instantiations_per_s']:.1f}x")
    return text


def rows(recs, **want):
    return [r for r in recs if all(r[k] == v for k, v in want.items())]


def one(recs, **want):
    found = rows(recs, **want)
    return found[0] if found else None


def verdict(holds):
    return "" if holds else " **This does not hold in this run.**"


def reading_bench(recs, fast, machine):
    """What madvisev-bench shows, each claim checked against the figures."""
    lines = []
    f = one(recs, backend=fast, vlen=64, range_bytes=4096)
    s = one(recs, backend="sequential", vlen=64, range_bytes=4096)
    if f and s:
        holds = f["shootdowns_per_call"] <= 1.1 and s["shootdowns_per_call"] >= 0.9 * 64
        lines.append(
            f"- **One IPI round per call, not per range.** At 64 ranges of 4 KiB, `{fast}` costs "
            f"{f['shootdowns_per_call']:.2f} shootdowns per call and `sequential` "
            f"{s['shootdowns_per_call']:.2f}: {s['shootdowns_per_call'] / max(f['shootdowns_per_call'], 0.01):.0f}x "
            f"fewer, and {s['ns_per_range'] / f['ns_per_range']:.1f}x less time per range "
            f"({fmt(f['ns_per_range'])} against {fmt(s['ns_per_range'])} ns).{verdict(holds)}")
    lo = one(recs, backend=fast, vlen=1, range_bytes=4096)
    hi = one(recs, backend=fast, vlen=1024, range_bytes=4096)
    if lo and hi:
        holds = hi["ns_per_range"] < lo["ns_per_range"]
        lines.append(
            f"- **The batch pays for its call once.** `{fast}` falls from {fmt(lo['ns_per_range'])} ns per "
            f"4 KiB range alone to {fmt(hi['ns_per_range'])} ns in a batch of 1024, while `sequential` stays "
            f"where it is: every range pays a system call and a flush.{verdict(holds)}")
    u = one(recs, backend="io_uring", vlen=64, range_bytes=4096)
    if u and s:
        holds = u["shootdowns_per_call"] >= 0.9 * 64
        pace = "slower" if u["ns_per_range"] > s["ns_per_range"] else "no faster"
        lines.append(
            f"- **io_uring is no cure.** Its 64 linked madvise operations still cost "
            f"{u['shootdowns_per_call']:.2f} shootdowns: one submission, but each operation zaps and "
            f"flushes on its own, in an io-wq worker. It is {pace} than `sequential` "
            f"({fmt(u['ns_per_range'])} against {fmt(s['ns_per_range'])} ns per range).{verdict(holds)}")
    big = one(recs, backend=fast, vlen=1024, range_bytes=65536)
    if big and big["shootdowns_per_call"] > 1.5:
        lines.append(
            f"- **Where batching stops:** 1024 ranges of 64 KiB (16384 pages) cost "
            f"{big['shootdowns_per_call']:.2f} shootdowns per call: the mmu_gather flushes when its page "
            "batch fills, so a batch of more than about 10,000 pages takes a second round. Still "
            f"{1024 / big['shootdowns_per_call']:.0f} times fewer than one per range.")
    if machine == "vm":
        lines.append(
            "- Under TCG an IPI is a cheap emulated event and every instruction is slow, so the guest's "
            "times understate what the saved IPIs are worth on real hardware; its counts are exact.")
    return lines


def linux61_section(data):
    """The patched 6.1 guest's madvisev-bench beside the 6.12 guest's: the
    same backends, ranges and vector lengths, shootdowns per call side by
    side (exact in both), times for information (emulated)."""
    new, old = data.get("vm61-madvisev-bench.json"), data.get("vm-madvisev-bench.json")
    if not new:
        return []
    m = data.get("vm61-machine.json")
    out = ["## Patched Linux 6.1 guest (QEMU TCG)", ""]
    if m:
        out += [f"CPU {m['cpu']}, {m['cores']} CPUs, {m['memory_gib']} GiB, {m['kernel']}, "
                f"accelerator: {m['accelerator']}.", ""]
    out += ["The series ported to Linux 6.1 LTS, the kernel Debian 12 runs (`kernel-patch/6.1`), booted "
            "like the 6.12 guest and measured with the same `madvisev-bench --ranges 4096`; the 6.12 "
            "guest's figures from the same data set beside it. Shootdowns are counted exactly in both; the times "
            "are emulated and shown for information.", ""]
    index = {(r["backend"], r["range_bytes"], r["vlen"]): r for r in (old or [])}
    rows = ["| backend | range | vlen | shootdowns per call, 6.1 | shootdowns per call, 6.12 | "
            "ns per range, 6.1 | ns per range, 6.12 |", "|---|---|---|---|---|---|---|"]
    for r in new:
        o = index.get((r["backend"], r["range_bytes"], r["vlen"]))
        rows.append(f"| {r['backend']} | {r['range_bytes'] // 1024} KiB | {r['vlen']} | "
                    f"{r['shootdowns_per_call']:.2f} | "
                    + (f"{o['shootdowns_per_call']:.2f}" if o else "–") + f" | {fmt(r['ns_per_range'], 1)} | "
                    + (fmt(o["ns_per_range"], 1) if o else "–") + " |")
    lines = []
    batched = [r for r in new if r["backend"] in ("syscall", "process_madvise") and r["range_bytes"] == 4096]
    if batched:
        worst = max(batched, key=lambda r: r["shootdowns_per_call"])
        holds = worst["shootdowns_per_call"] <= 1.1
        lines.append(
            f"- **One IPI round per call on 6.1 too.** `madvisev()` and `process_madvise()` on self cost at "
            f"most {worst['shootdowns_per_call']:.2f} shootdowns per call over 4 KiB ranges at every vector "
            f"length, 1 to {max(r['vlen'] for r in batched)} ranges.{verdict(holds)}")
    s = one(new, backend="sequential", vlen=64, range_bytes=4096)
    f = one(new, backend="syscall", vlen=64, range_bytes=4096)
    if s and f:
        holds = s["shootdowns_per_call"] >= 0.9 * 64
        lines.append(
            f"- One `madvise()` per range still costs {s['shootdowns_per_call']:.2f} shootdowns per 64 "
            f"ranges, {s['ns_per_range'] / f['ns_per_range']:.1f}x the time per range of one "
            f"`madvisev()`.{verdict(holds)}")
    if old:
        same = [r for r in new if (r["backend"], r["range_bytes"], r["vlen"]) in index]
        band = NOISE["vm"]
        inside = [r for r in same if in_count_band(
            r["shootdowns_per_call"],
            index[(r["backend"], r["range_bytes"], r["vlen"])]["shootdowns_per_call"], band)]
        holds = len(inside) >= MATCH * len(same)
        lines.append(
            f"- **The same counts as 6.12.** {len(inside)} of {len(same)} rows lie within the count band "
            f"of the 6.12 guest's.{verdict(holds)}")
    return out + lines + ["", "\n".join(rows), ""]


def reading_inst(recs, machine):
    """What instantiate-bench shows at the most threads, each claim checked."""
    lines = []
    top = max(r["threads"] for r in recs)
    batched = sorted({r["strategy"] for r in recs
                      if r["strategy"] in ("pool-sharded-syscall", "pool-sharded-process-madvise")})
    for dirty in sorted({r["dirty_pages"] for r in recs}):
        at = rows(recs, dirty_pages=dirty, threads=top)
        safe = [r for r in at if resets_all(r) and r["strategy"] not in WASMTIME]
        stock = one(at, strategy="stock")
        if not safe or not stock:
            continue
        text = f"- **{dirty} dirty pages, {top} threads:** " + headline(at, safe, stock, top, machine == "host") + "."
        for name in batched:
            b = one(at, strategy=name)
            seq = one(at, strategy="pool-sharded-sequential")
            if b and seq:
                holds = b["shootdowns_per_instantiation"] <= 1.5 / b["batch_size"]
                text += (f" Batched resets (`{name}`) cost {b['shootdowns_per_instantiation']:.3f} shootdowns per "
                         f"instantiation, one round per {b['batch_size']}-instance batch, against "
                         f"{seq['shootdowns_per_instantiation']:.2f} for the same pool resetting range by range"
                         + (f", and run at {b['instantiations_per_s'] / seq['instantiations_per_s']:.2f}x its rate"
                            if machine == "host" else "") + f".{verdict(holds)}")
        lines.append(text)
    return lines


ZERO_ROWS = ["pool-zero-in-place", "pool-zero-inline", "pool-zero-emulated", "pool-sharded-syscall", "pool-sharded-process-madvise",
             "pool-keep-resident", "pool-adaptive", "stock"]


def workloads(inst, wasi):
    """(label, rows at the most threads, threads) for echo at each dirty size and each WASI program."""
    out = []
    if inst:
        top = max(r["threads"] for r in inst)
        for dirty in sorted({r["dirty_pages"] for r in inst}):
            out.append((f"echo, {dirty} pages", rows(inst, dirty_pages=dirty, threads=top), top))
    if wasi:
        top = max(r["threads"] for r in wasi)
        for module in sorted({r["module"] for r in wasi}, key=lambda m: [r["module"] for r in wasi].index(m)):
            out.append((f"{module} (WASI)", rows(wasi, module=module, threads=top), top))
    return out


def zero_workloads(inst, wasi):
    """The workloads where the zero-in-place reset ran."""
    return [w for w in workloads(inst, wasi) if one(w[1], strategy="pool-zero-in-place")]


def zero_table(inst, wasi):
    """MADVISEV_ZERO against decommit and keep-resident: the resets side by side."""
    head = ["| workload | threads | strategy | instantiations/s | vs `pool-keep-resident` | "
            "shootdowns per instantiation | page faults per instantiation | resident MiB | "
            "pages dirtied (memory + stack) |",
            "|---|---|---|---|---|---|---|---|---|"]
    for label, at, top in zero_workloads(inst, wasi):
        keep = one(at, strategy="pool-keep-resident")
        for name in ZERO_ROWS:
            r = one(at, strategy=name)
            if not r:
                continue
            vs = f"{r['instantiations_per_s'] / keep['instantiations_per_s']:.2f}x" if keep else "–"
            head.append(f"| {label} | {top} | {name} | {fmt(r['instantiations_per_s'])} | {vs} | "
                        f"{r['shootdowns_per_instantiation']:.3f} | {faults_cell(r)} | "
                        f"{r['resident_bytes'] / 2**20:.1f} | {dirtied(r)} |")
    return "\n".join(head)


def batched_dontneed(at):
    """The row of the pool's batched MADV_DONTNEED reset among @at, madvisev() first; None if neither ran."""
    return one(at, strategy="pool-sharded-syscall") or one(at, strategy="pool-sharded-process-madvise")


def reading_zero(inst, wasi, native):
    """Is the zero-in-place reset the fastest safe reset, with no IPI?  Checked per workload.  Where the
    kernel has MADV_ZERO (the guests), their times are emulation's: counts only."""
    lines = []
    how = ("the kernel's `MADV_ZERO`" if native else
           "the library's emulation, this kernel having no `MADV_ZERO`: `PAGEMAP_SCAN`, `memset`, one "
           "`MADV_DONTNEED` call for swapped runs")
    for label, at, top in zero_workloads(inst, wasi):
        batched = one(at, strategy="pool-zero-in-place")
        if native:
            z = one(at, strategy="pool-zero-inline") or batched
            text = (f"- **{label}, {top} threads:** `{z['strategy']}` ({how}) sends "
                    f"{z['shootdowns_per_instantiation']:.3f} shootdowns per instantiation")
            faults = z.get("page_faults_per_instantiation")
            if faults is not None:
                text += f" and takes {faults:.2f} page faults"
            if batched and batched is not z:
                text += (f"; the batched `pool-zero-in-place` {batched['shootdowns_per_instantiation']:.3f} "
                         f"and {batched.get('page_faults_per_instantiation') or 0:.1f}")
            o = batched_dontneed(at)
            if o:
                of = o.get("page_faults_per_instantiation")
                text += (f"; batched `MADV_DONTNEED` (`{o['strategy']}`) {o['shootdowns_per_instantiation']:.3f}"
                         + (f" and {of:.1f}" if of is not None else ""))
            lines.append(text + " (counts: the guest's times are emulation's)."
                         + verdict(z["shootdowns_per_instantiation"] < 0.05))
            continue
        # The better of the two ways the pool uses the advice: a batch of
        # slots per call on the flusher, or one instance per call inline.
        z = max((r for r in (batched, one(at, strategy="pool-zero-inline")) if r),
                key=lambda r: r["instantiations_per_s"])
        safe = [r for r in at if resets_all(r) and r["strategy"] not in WASMTIME]
        best = max(safe, key=lambda r: r["instantiations_per_s"])
        text = (f"- **{label}, {top} threads:** `{z['strategy']}` ({how}) runs "
                f"{fmt(z['instantiations_per_s'])}/s with {z['shootdowns_per_instantiation']:.3f} shootdowns "
                "per instantiation")
        faults = z.get("page_faults_per_instantiation")
        if faults is not None:
            text += f" and {faults:.2f} page faults"
        if best is z:
            text += "; the fastest safe reset here (best of the safe strategies)"
        else:
            text += (f"; `{best['strategy']}` is faster, {fmt(best['instantiations_per_s'])}/s "
                     f"({best['instantiations_per_s'] / z['instantiations_per_s']:.2f}x)")
        if batched and batched is not z:
            text += (f"; the batched `pool-zero-in-place` {fmt(batched['instantiations_per_s'])}/s "
                     f"({batched.get('page_faults_per_instantiation') or 0:.1f} faults per instantiation)")
        o = batched_dontneed(at)
        if o:
            of = o.get("page_faults_per_instantiation")
            text += (f"; {z['instantiations_per_s'] / o['instantiations_per_s']:.2f}x batched "
                     f"`MADV_DONTNEED` (`{o['strategy']}`"
                     + (f", {of:.1f} faults per instantiation" if of is not None else "") + ")")
        lines.append(text + ".")
    return lines


def losses(data):
    """Where the project loses, found in the figures, not written in advance."""
    out = []
    for key, title in MACHINES:
        inst = data.get(f"{key}-instantiate-bench.json")
        if not inst:
            continue
        top = max(r["threads"] for r in inst)
        band = WITHIN_RUN[key]
        for dirty in sorted({r["dirty_pages"] for r in inst}):
            at = rows(inst, dirty_pages=dirty, threads=top)
            stock = one(at, strategy="stock")
            if stock:
                for r in at:
                    if r["strategy"] not in ("stock",) + WASMTIME and resets_all(r) and \
                            r["instantiations_per_s"] < stock["instantiations_per_s"]:
                        short = 1 - r["instantiations_per_s"] / stock["instantiations_per_s"]
                        if r["strategy"] == "pool-keep-resident" and key == "vm":
                            why = "it memsets the whole slot, which emulation makes slow"
                        elif r["shootdowns_per_instantiation"] > stock["shootdowns_per_instantiation"]:
                            why = (f"every instance refaults its pages, as stock faults them, and its resets "
                                   f"send more IPIs ({r['shootdowns_per_instantiation']:.2f} per instance) "
                                   f"than stock's unmaps ({stock['shootdowns_per_instantiation']:.2f})")
                        else:
                            why = (f"its resets send fewer IPIs ({r['shootdowns_per_instantiation']:.2f} per "
                                   f"instance against stock's {stock['shootdowns_per_instantiation']:.2f}), but "
                                   "refaulting the pages dominates at this size")
                        if short < band:
                            why += f"; a difference this small (under {band:.0%}) can swap in the next run"
                        out.append(f"- {title}, {dirty} pages, {top} threads: `{r['strategy']}` "
                                   f"{fmt(r['instantiations_per_s'])}/s is {100 * short:.1f}% "
                                   f"below `stock` ({fmt(stock['instantiations_per_s'])}/s): {why}.")
            for name in ("pool-sharded-syscall", "pool-sharded-process-madvise"):
                b, seq = one(at, strategy=name), one(at, strategy="pool-sharded-sequential")
                if b and seq and b["instantiations_per_s"] < seq["instantiations_per_s"]:
                    out.append(f"- {title}, {dirty} pages, {top} threads: batched `{name}` "
                               f"({fmt(b['instantiations_per_s'])}/s) is not faster than resetting range by "
                               f"range ({fmt(seq['instantiations_per_s'])}/s) although it sends "
                               f"{seq['shootdowns_per_instantiation'] / max(b['shootdowns_per_instantiation'], 0.001):.0f}x "
                               "fewer IPIs: refaulting the pages costs more than the IPIs saved.")
                g = one(at, strategy="pool-global-queue")
                if b and g and abs(b["instantiations_per_s"] / g["instantiations_per_s"] - 1) < band:
                    out.append(f"- {title}, {dirty} pages, {top} threads: per-thread queues (`{name}`, "
                               f"{fmt(b['instantiations_per_s'])}/s) and one global queue "
                               f"({fmt(g['instantiations_per_s'])}/s) are within {band:.0%} of each other, "
                               f"which the next run can swap: {top} threads hardly contend for one lock.")
    for key, title in MACHINES:
        for label, at, top in wasmtime_workloads(data.get(f"{key}-instantiate-bench.json"),
                                                 data.get(f"{key}-instantiate-wasi.json")):
            best, mine = one(at, strategy="pool-resident-scan"), ours(at)
            if mine and mine["instantiations_per_s"] < best["instantiations_per_s"]:
                out.append(f"- {title}, {label}, {top} threads: Wasmtime's best policy reimplemented on "
                           f"this pool (`pool-resident-scan`, {fmt(best['instantiations_per_s'])}/s) beats the project's "
                           f"default (`{mine['strategy']}`, {fmt(mine['instantiations_per_s'])}/s) by "
                           f"{100 * (best['instantiations_per_s'] / mine['instantiations_per_s'] - 1):.0f}%; it "
                           "leaves stacks as the last tenant left them, which ours resets (the comparison with "
                           "stacks left alike is under *Against Wasmtime's policies*).")
    return out


def ours(at):
    """The project's default strategy's row among rows @at, or None."""
    return one(at, strategy=DEFAULT)


def fastest_safe(at):
    """The fastest of the project's safe strategies among rows @at (a best-of-N figure): not stock, not
    Wasmtime's policies."""
    safe = [r for r in at if resets_all(r) and r["strategy"] not in ("stock",) + WASMTIME]
    return max(safe, key=lambda r: r["instantiations_per_s"]) if safe else None


def wasmtime_workloads(inst, wasi):
    """The workloads where Wasmtime's best configuration and one of the project's strategies ran."""
    return [w for w in workloads(inst, wasi) if one(w[1], strategy="pool-resident-scan") and ours(w[1])]


def wasmtime_table(inst, wasi):
    head = ["| workload | threads | strategy | instantiations/s | vs `pool-resident-scan` | shootdowns per instantiation "
            "| page faults per instantiation | pages dirtied (memory + stack) | stacks reset |",
            "|---|---|---|---|---|---|---|---|---|"]
    for label, at, top in wasmtime_workloads(inst, wasi):
        best, mine, fast = one(at, strategy="pool-resident-scan"), ours(at), fastest_safe(at)
        nostacks = one(at, strategy=DEFAULT + "/no-stacks")
        n = len([r for r in at if resets_all(r) and r["strategy"] not in ("stock",) + WASMTIME])
        shown = [one(at, strategy="pool-madvise-each"), best, mine, nostacks,
                 fast if fast is not mine and fast is not nostacks else None, one(at, strategy="stock")]
        for r in shown:
            if not r:
                continue
            name = f"`{r['strategy']}`" + (" (ours: the default)" if r is mine else
                                           " (the default, stacks not reset)" if r is nostacks else
                                           f" (fastest of {n} safe strategies: best-of-{n})" if r is fast else "")
            reset = "no" if r["strategy"] in WASMTIME or r["strategy"].endswith("/no-stacks") else "yes"
            head.append(f"| {label} | {top} | {name} | {rate_cell(r)} | "
                        f"{r['instantiations_per_s'] / best['instantiations_per_s']:.2f}x | "
                        f"{r['shootdowns_per_instantiation']:.3f} | {faults_cell(r)} | "
                        f"{dirtied(r)} | {reset} |")
    return "\n".join(head)


def reading_wasmtime(inst, wasi, band, emulated=False):
    """Does the project's default strategy beat Wasmtime's best configuration?  Per workload.
    Under emulation (the guests) the times are said to be no evidence."""
    lines = []
    for label, at, top in wasmtime_workloads(inst, wasi):
        best, mine, dflt = one(at, strategy="pool-resident-scan"), ours(at), one(at, strategy="pool-madvise-each")
        ratio = mine["instantiations_per_s"] / best["instantiations_per_s"]
        text = (f"- **Against Wasmtime's policies on this pool, {label}, {top} threads:** ours, `{mine['strategy']}` "
                f"(the default), {fmt(mine['instantiations_per_s'])}/s is {ratio:.2f}x `pool-resident-scan` "
                f"({fmt(best['instantiations_per_s'])}/s)")
        if dflt:
            text += (f" and {mine['instantiations_per_s'] / dflt['instantiations_per_s']:.1f}x `pool-madvise-each` "
                     f"({fmt(dflt['instantiations_per_s'])}/s, {dflt['shootdowns_per_instantiation']:.2f} shootdowns "
                     "per instantiation")
            f = dflt.get("page_faults_per_instantiation")
            text += (f", {f:.1f} page faults)" if f is not None else ")")
        if ratio < 1 and emulated:
            text += (f". Wasmtime's best policy, on this pool, ran {100 * (1 / ratio - 1):.0f}% faster here, under "
                     "emulation, whose times are not evidence of speed")
        elif ratio < 1:
            text += (f". **Here Wasmtime's best policy, on this pool, is faster, by {100 * (1 / ratio - 1):.0f}%**"
                     + (f" (under {band:.0%} apart: the next run can swap them)" if 1 / ratio - 1 < band else ""))
            nostacks = one(at, strategy=DEFAULT + "/no-stacks")
            if nostacks:
                r2 = nostacks["instantiations_per_s"] / best["instantiations_per_s"]
                text += (f"; without resetting fiber stacks, as Wasmtime's policy does not, ours runs at {r2:.2f}x it "
                         f"(`{nostacks['strategy']}`, {fmt(nostacks['instantiations_per_s'])}/s)")
            else:
                text += "; whether the fiber stacks it leaves unreset explain it was not measured in this run"
        lines.append(text + ".")
    return lines


def sweep_counts(data):
    """{vCPUs: (ipi-cost rows, instantiate rows)} from the vCPU sweep's JSON."""
    out = {}
    for name, recs in data.items():
        if name.startswith("vm-smp") and recs is not None:
            n = int(name[len("vm-smp"):].split("-", 1)[0])
            ipi, inst = out.get(n, (None, None))
            if name.endswith("-ipi-cost.json"):
                ipi = recs
            else:
                inst = recs
            out[n] = (ipi, inst)
    return dict(sorted(out.items()))


def sweep_section(data):
    sweep = sweep_counts(data)
    if not sweep:
        return []
    out = ["## More CPUs: the patched guest with " + ", ".join(str(n) for n in sweep) + " vCPUs", "",
           "`make demo` boots the patched guest once per vCPU count (`VM_SMP_SWEEP`), on the host's "
           f"cores under QEMU TCG: counts are exact, times are not ({max(sweep)} vCPUs share the host's cores, "
           "so an IPI waits for its target's host thread to be scheduled). `madvisev-ipi-cost`: one "
           "`madvise(MADV_DONTNEED)` of one dirtied page per call while 0 to N-1 other threads of the "
           "process spin, each on its own CPU.", "",
           "| vCPUs | shootdowns per call, by spinning receivers (0, 1, ...) |", "|---|---|"]
    for n, (ipi, _) in sweep.items():
        if ipi:
            out.append(f"| {n} | " + ", ".join(f"{r['receivers']}: {r['shootdowns_per_call']:.2f}" for r in ipi) + " |")
    strategies = []
    for _, (_, inst) in sweep.items():
        for r in inst or []:
            if r["strategy"] not in strategies:
                strategies.append(r["strategy"])
    out += ["", "`instantiate-bench` on as many threads as vCPUs (echo; the dirty size as in the row): "
            "shootdowns per instantiation (instantiations/s under emulation in brackets, for information).", "",
            "| strategy | dirty pages | " + " | ".join(f"{n} vCPUs" for n in sweep) + " |",
            "|---|---|" + "---|" * len(sweep)]
    for name in strategies:
        cells, dirty = [], "–"
        for n, (_, inst) in sweep.items():
            r = one(inst or [], strategy=name)
            if r:
                dirty = r["dirty_pages"]
            cells.append("–" if not r else f"{r['shootdowns_per_instantiation']:.3f} ({fmt(r['instantiations_per_s'])})")
        out.append(f"| `{name}` | {dirty} | " + " | ".join(cells) + " |")
    exact = all(abs(r["shootdowns_per_call"] - r["receivers"]) <= 0.05 for _, (ipi, _) in sweep.items()
                for r in ipi or [])
    out += ["", ("Every call interrupted exactly the CPUs that were running the process: shootdowns per call "
                 "equal the receivers, at every vCPU count." if exact else
                 "**Shootdowns per call did not equal the receivers at every vCPU count in this run.**"),
            "Per instantiation, a decommitting strategy sends its rounds to the CPUs that are running the "
            "process at that moment; threads waiting on a lock, a fault or a host time slice are idle and left "
            "out. `docs/scaling.md` compares these counts with its model's `(N - 1) R`; it makes no prediction "
            "of rates for more cores (it says why).", ""]
    return out


# The seed report's totals (executions on 1, 3 and 8 threads; no time base given).
SEED = {1: 110_000, 3: 120_000, 8: 80_000}
SEED_ROUNDS = 2  # its IPI rounds per call: unmapping the fiber stack and the memory


def model_time(w, r, a, c, q, n):
    """Seconds one core spends per instantiation with n cores busy: its own work w, the
    rounds r it sends (a each, waiting for the acknowledgements), the rounds the other
    n - 1 cores send it (c each) and contention among the rounds (q r^2 (n - 1)^2)."""
    if n == 1:
        return w
    return w + r * a + (n - 1) * r * c + q * r * r * (n - 1) ** 2


def seed_fit(rho):
    """Fit the seed's three figures: w from one thread; r a and r c (with a = rho c, the
    ratio measured here) and Q = q r^2 from three and eight.  Also the best fit with Q = 0."""
    w = 1 / SEED[1]
    t3, t8 = 3 / SEED[3] - w, 8 / SEED[8] - w
    # (rho + 2) RC + 4 Q = t3 ; (rho + 7) RC + 49 Q = t8
    det = (rho + 2) * 49 - 4 * (rho + 7)
    rc = (t3 * 49 - 4 * t8) / det
    q = ((rho + 2) * t8 - (rho + 7) * t3) / det
    # Q = 0: least squares over the two times
    k3, k8 = rho + 2, rho + 7
    rc0 = max(0.0, (k3 * t3 + k8 * t8) / (k3 * k3 + k8 * k8))
    return w, rc, q, rc0


def scaling_page(data):
    ipi = data.get("host-ipi-cost.json")
    inst = data.get("host-instantiate-bench.json")
    if not ipi or not inst or not any(r["receivers"] == 1 for r in ipi):
        return None
    s0 = one(ipi, receivers=0)["ns_per_call"] * 1e-9
    one_rx = one(ipi, receivers=1)
    a = max(0.0, one_rx["ns_per_call"] * 1e-9 - s0)
    c = max(0.0, one_rx["receiver_ns_per_ipi"] * 1e-9)
    rho = a / c if c > 0 else 1.0
    w_s, rc, q_seed, rc0 = seed_fit(rho)
    a_s, c_s = rho * rc / SEED_ROUNDS, rc / SEED_ROUNDS
    qr_s = q_seed / SEED_ROUNDS ** 2
    m = data.get("host-machine.json") or {}
    out = ["# Scaling: instantiations per second against cores", "",
           "Generated by `make results` with `docs/results.md`, from the same JSON (`docs/results/data/`); "
           "the same JSON gives this page byte for byte. The host has two cores: the model below is built from what "
           "was measured and checked where it can be (two threads here, the shape of the seed's figures, the "
           "guest's counts past two CPUs); it makes no prediction for more cores, for the reasons given at the "
           "end. Model outputs have two significant figures.", "",
           "## The model", "",
           "N cores each run instantiations back to back. An instantiation costs its core `W` (all its work "
           "with no other core running the process: the one-thread row), plus, for each of the `R` IPI rounds "
           "its resets send, `A` waiting for the other cores to acknowledge. Each round interrupts every other "
           "core running the process, costing it `C`; with N cores busy, a core receives the rounds of N - 1 "
           "others. Rounds also contend with each other (the flush requests queue on the receivers, and the "
           "senders wait holding `mmap_lock`): a term `q R^2 (N - 1)^2`. So, per core and instantiation,", "",
           "    T(N) = W + R A + (N - 1) R C + q R^2 (N - 1)^2      (T(1) = W)",
           "    instantiations/s = N / T(N)", "",
           "What enters it, all measured by `make demo`:", "",
           f"- `A` and `C` on this host ({m.get('cpu', '?')}, {m.get('cores', '?')} CPUs, {m.get('kernel', '?')}), from "
           f"`madvisev-ipi-cost`: one `madvise(MADV_DONTNEED)` of a dirty page costs the sender "
           f"{s0 * 1e6:.1f} µs alone and {one_rx['ns_per_call'] / 1000:.1f} µs with one other thread spinning "
           f"on the other CPU, so **A = {a * 1e6:.1f} µs**; the spinning thread loses **C = {c * 1e6:.1f} µs** per "
           f"IPI it receives ({one_rx['shootdowns_per_call']:.2f} shootdowns per call; the median over seven "
           "phases of calls, each judged against the spinner's rate just before and after it). This host is itself a "
           "virtual machine: an IPI is a trap to its hypervisor on both sides, several times dearer than "
           "on bare metal.",
           "- `W` per strategy: 1 / instantiations/s on one thread (`instantiate-bench`, echo).",
           "- `R` per strategy: shootdowns per instantiation on two threads, where every round can interrupt "
           "one other CPU: the rounds per instantiation that found the other core running the process.",
           "- `q`: not measurable on two cores (it needs rounds from several senders at once), and no part of "
           "the check on two threads.", ""]
    # Check 1: this host, two threads.
    flushed = any(r.get("flusher_cpu_ns_per_instantiation") is not None for r in inst)
    out += ["## Checked on this host: two threads", "",
            "The model with this host's `A` and `C` (and `q` = 0) against the measured two-thread rate, echo"
            + (". With both cores running workers, the pool's flusher thread takes its CPU time `F` per "
               "instantiation (measured on two threads) from them too: predicted = 2 / (T(2) + F); on one "
               "thread it runs on the idle core, outside `W`" if flushed else
               " (this record has no flusher CPU time: `F` is left out)") + ":", "",
            "| strategy | dirty pages | W µs | R | F µs | predicted 2 threads /s | measured /s | measured / predicted |",
            "|---|---|---|---|---|---|---|---|"]
    rows_ = []
    errs = []
    for r1 in inst:
        if r1["threads"] != 1 or r1["insecure"]:
            continue
        r2 = one(inst, strategy=r1["strategy"], dirty_pages=r1["dirty_pages"], threads=2)
        if not r2:
            continue
        w = 1 / r1["instantiations_per_s"]
        r = r2["shootdowns_per_instantiation"]
        f_ns = r2.get("flusher_cpu_ns_per_instantiation")
        f = (f_ns or 0) * 1e-9
        pred = 2 / (model_time(w, r, a, c, 0, 2) + f)
        rows_.append((r1, r2, w, r, pred))
        errs.append(r2["instantiations_per_s"] / pred)
        out.append(f"| `{r1['strategy']}` | {r1['dirty_pages']} | {w * 1e6:.1f} | {r:.3f} | "
                   f"{'–' if f_ns is None else f'{f * 1e6:.2f}'} | {sig2(pred)} | "
                   f"{fmt(r2['instantiations_per_s'])} | {r2['instantiations_per_s'] / pred:.2f} |")
    errs.sort()
    ipi_rows = [x[1]["instantiations_per_s"] / x[4] for x in rows_ if x[3] >= 0.5]
    out += ["", f"Measured over predicted: median {errs[len(errs) // 2]:.2f}, from {errs[0]:.2f} to {errs[-1]:.2f} "
            f"over {len(errs)} rows"
            + (f"; {min(ipi_rows):.2f} to {max(ipi_rows):.2f} for the rows that send at least half a round per "
               "instantiation, where the IPI terms matter" if ipi_rows else "")
            + ". A strategy that sends no IPI is predicted to double its one-thread rate; below 1 it does "
            "not, for what the model leaves out (two threads share one memory bus; the other processes of a "
            "shared machine take CPU time).", ""]
    # Check 2: the seed.
    t = {n: model_time(w_s, SEED_ROUNDS, a_s, c_s, qr_s, n) for n in SEED}
    out += ["## Checked against the shape of the seed's figures", "",
            "The seed report (Wasmtime 2022, its on-demand allocator: every call mapped and unmapped a fiber "
            f"stack and a memory, taken here as R = {SEED_ROUNDS} rounds) gives totals of 110,000 executions on "
            "one thread, 120,000 on three and 80,000 on eight: one or two significant figures and no time base. "
            "Read as rates over one common time, only their shape can check the model, not any cost:", "",
            "- **Without contention (q = 0) the model cannot fall from three threads to eight**: with `A`/`C` "
            f"as measured here ({sig2(rho)}), its best fit gives {sig2(3 / model_time(w_s, 1, rho * rc0, rc0, 0, 3))} "
            f"on three threads and {sig2(8 / model_time(w_s, 1, rho * rc0, rc0, 0, 8))} on eight, in the seed's "
            "unit. A cost per round that does not grow with the cores makes throughput flatten, not fall.",
            ("- **With contention it can**: the three figures fit exactly with positive costs. Three figures and "
             "three unknowns make that a consistency check, not a measurement; no cost on this page comes "
             "from it." if rc > 0 and q_seed >= 0 else
             "- **The figures cannot be fitted with non-negative costs even with contention.**"), ""]
    # Check 3: the guest's counts past two CPUs.
    sweep = sweep_counts(data)
    base_n = min(sweep) if sweep else None
    if sweep and sweep[base_n][1]:
        out += ["## Checked in the guest: counts past two CPUs", "",
                f"The model's `(N - 1) R` IPIs per instantiation, with `R` from the {base_n}-vCPU run "
                f"(shootdowns per instantiation / {base_n - 1}), against the shootdowns the patched guest counted "
                "with N threads on N vCPUs (`docs/results.md`, More CPUs):", "",
                "| strategy | R | " + " | ".join(f"{n} vCPUs: predicted / counted" for n in sweep) + " |",
                "|---|---|" + "---|" * len(sweep)]
        top_n = max(sweep)
        quiet, shares = [], []
        for r0 in sweep[base_n][1]:
            r = r0["shootdowns_per_instantiation"] / max(base_n - 1, 1)
            cells = []
            for n, (_, inst_n) in sweep.items():
                m_ = one(inst_n or [], strategy=r0["strategy"])
                cells.append("–" if not m_ else f"{(n - 1) * r:.2f} / {m_['shootdowns_per_instantiation']:.2f}")
                if m_ and n == top_n:
                    if r < 0.0005:
                        quiet.append(m_["shootdowns_per_instantiation"])
                    else:
                        shares.append((m_["shootdowns_per_instantiation"] / ((n - 1) * r), r0["strategy"]))
            out.append(f"| `{r0['strategy']}` | {r:.3f} | " + " | ".join(cells) + " |")
        text = ""
        if quiet:
            text += (f"The strategies that sent no round on {base_n} vCPUs count at most {max(quiet):.2f} "
                     f"shootdowns per instantiation at {top_n}. ")
        if shares and top_n > base_n:
            lo, hi = min(shares), max(shares)
            text += (f"The others count {lo[0]:.0%} (`{lo[1]}`) to {hi[0]:.0%} (`{hi[1]}`) of `(N - 1) R` at "
                     f"{top_n} vCPUs: a round reaches only the CPUs running the process at that moment, and "
                     f"under emulation, {top_n} vCPUs on the host's cores, threads often wait (on a lock, a "
                     "fault, a host time slice) with their CPU idle. Where the cores all run the workload the "
                     "count approaches `(N - 1) R`, as the model assumes"
                     + (": here `(N - 1) R` bounds every count from above." if hi[0] <= 1 else
                        f"; it is not an upper bound: `{hi[1]}` counted {hi[0]:.0%} of it (rounds that found "
                        "more CPUs in the mm's mask than threads running, such as the flusher's)."))
        out += ["", text, ""]
    # No predictions: what the guest measured of the costs past one receiver.
    out += ["## Why the model makes no prediction past two cores", "",
            "Its `A` and `C` are measured with one receiver, on this host, and the fit to the seed above is a "
            "consistency check with as many unknowns as figures. The guest sweep measured what a round costs "
            "with more receivers, and it is not constant (`madvisev-ipi-cost` in the patched guest, N vCPUs on "
            "the host's two cores, two significant figures):", "",
            "| vCPUs | receivers | sender per call | per receiving IPI |", "|---|---|---|---|"]
    for f in sorted(k for k in data if k.startswith("vm-smp") and k.endswith("-ipi-cost.json") and data[k]):
        for r in data[f]:
            out.append(f"| {r['cpus']} | {r['receivers']} | {dur2(r['ns_per_call'])} | "
                       + ("–" if r["receivers"] == 0 else dur2(r["receiver_ns_per_ipi"])) + " |")
    out += ["", "With more vCPUs than host cores a round waits for host time slices, so these are the "
            "emulator's costs, not a machine's (a negative cost per IPI is a receiver that ran faster while "
            "interrupted: noise larger than the cost). A prediction for N real cores needs `A(N)`, `C(N)` "
            "and the contention term measured there, by `madvisev-ipi-cost` and `instantiate-bench` run on that "
            "machine. What the model leaves out is named: memory bandwidth "
            "for the `memset` and page faults for what is decommitted; the pool's flusher thread is in it as "
            "`F` where its CPU time was recorded (`docs/results.md` shows it per row).", "",
            "## What a machine with real cores should show", "",
            "Measured on bare metal, the counts carry over (they are what `make demo` compares); the times do "
            "not. The guest sweep in `docs/results.md` checks the count side past two CPUs."]
    return out


def dur2(ns):
    """A duration in ns, to two significant figures, in µs or, from a millisecond, ms."""
    return f"{sig2(ns / 1e6)} ms" if abs(ns) >= 1e6 else f"{sig2(ns / 1e3)} µs"


def sig2(x):
    """x to two significant figures, with thousands separators."""
    if x == 0:
        return "0"
    e = math.floor(math.log10(abs(x)))
    return f"{round(x, 1 - e):,.{max(0, 1 - e)}f}"


def analysis(data):
    """Which reset to use when: the project's reading of its own figures, every number from the JSON."""
    inst = data.get("host-instantiate-bench.json")
    vm = data.get("vm-instantiate-bench.json")
    if not inst:
        return []
    top = max(r["threads"] for r in inst)

    def x(recs, strategy, dirty, threads=None):
        r = one(recs or [], strategy=strategy, dirty_pages=dirty, threads=threads or top)
        return r["instantiations_per_s"] if r else None

    def r_(recs, strategy, dirty, field, threads=None):
        r = one(recs or [], strategy=strategy, dirty_pages=dirty, threads=threads or top)
        return r.get(field) if r else None

    out = ["## Which reset to use: a reading for runtime authors", "",
           f"From the tables below (host, {top} threads, unless a guest figure is named). The sections after "
           "this one check each claim against the figures; this is what we would tell someone choosing.", ""]
    ad16, kr16, dc16 = x(inst, "pool-adaptive", 16), x(inst, "pool-keep-resident", 16), None
    batched = next((s_ for s_ in ("pool-sharded-syscall", "pool-sharded-process-madvise") if x(inst, s_, 16)), None)
    if batched:
        dc16 = x(inst, batched, 16)
    if ad16 and dc16:
        faults = r_(inst, batched, 16, "page_faults_per_instantiation")
        out.append(f"- **Memory is not the limit: reset in place.** Zeroing the pages a tenant wrote and keeping "
                   f"them resident beats decommitting them, batched or not: at 16 dirty pages `pool-adaptive` "
                   f"runs {fmt(ad16)}/s against {fmt(dc16)}/s for batched `MADV_DONTNEED` (`{batched}`), "
                   f"{ad16 / dc16:.1f}x. The decommitted pages come back as page faults"
                   + (f" ({faults:.1f} per instantiation)" if faults is not None else "")
                   + ", and faults, not IPIs, are what a batch cannot remove." + verdict(ad16 > dc16))
    ad4, ad256, kr256 = x(inst, "pool-adaptive", 4), x(inst, "pool-adaptive", 256), x(inst, "pool-keep-resident", 256)
    if ad4 and kr16 and ad256 and kr256:
        kr4 = x(inst, "pool-keep-resident", 4)
        out.append(f"- **Small dirty sets: ask which pages were written.** `PAGEMAP_SCAN` finds them for the price "
                   f"of a page-table walk; zeroing the whole slot instead (`pool-keep-resident`) costs the same "
                   f"however little was written: {fmt(kr4)}/s at 4 pages against {fmt(ad4)}/s for "
                   f"`pool-adaptive`.{verdict(ad4 > kr4)} **Dense ones: skip the scan.** At 256 pages "
                   f"`pool-adaptive` has learnt that the slot is dense and zeroes it whole ({fmt(ad256)}/s, "
                   f"`pool-keep-resident` {fmt(kr256)}/s, `pool-resident-scan`, which scans every time, "
                   f"{fmt(x(inst, 'pool-resident-scan', 256) or 0)}/s).")
    wb = {d: x(inst, "pool-resident-scan", d) for d in (4, 16, 256)}
    if all(wb.values()):
        lost = [d for d in wb if (ours(rows(inst, dirty_pages=d, threads=top)) or {}).get("instantiations_per_s", 0) < wb[d]]
        out.append(f"- **Wasmtime's best policy is an in-place reset too**: reimplemented here as "
                   f"`pool-resident-scan` ({fmt(wb[4])}, "
                   f"{fmt(wb[16])} and {fmt(wb[256])}/s at 4, 16 and 256 pages) scans every slot on every reset, "
                   "which costs it most on dense slots, and resets no stack. "
                   + ("The project's default, `pool-adaptive`, beats it at every size here."
                      if not lost else
                      f"It beats the project's default, `pool-adaptive`, at {', '.join(str(d) for d in lost)} pages "
                      "here (the table under *Against Wasmtime's policies* has the figures)."))
    if batched:
        seq = x(inst, "pool-sharded-sequential", 16)
        rs, rb = (r_(inst, "pool-sharded-sequential", 16, "shootdowns_per_instantiation"),
                  r_(inst, batched, 16, "shootdowns_per_instantiation"))
        if seq and rs is not None and rb is not None:
            out.append(f"- **Memory is bounded: decommit, and batch the calls.** When the pool must give pages "
                       f"back, one vectored call per 32 instances sends {rb:.3f} shootdowns per instantiation "
                       f"against {rs:.2f} range by range, and runs {dc16 / seq:.1f}x as fast at 16 pages on "
                       f"{top} threads. That is what the kernel call buys, and it grows with cores: a strategy "
                       "that sends R rounds per instantiation cannot exceed about 1 / (R C) instantiations/s on "
                       "the whole machine (`docs/scaling.md`), so batching raises that ceiling by the batch size."
                       + verdict(rb < rs and dc16 > seq))
    if vm:
        vtop = max(r["threads"] for r in vm)
        zrow = one(rows(vm, dirty_pages=16, threads=vtop), strategy="pool-zero-inline")
        if zrow:
            f = zrow.get("page_faults_per_instantiation")
            out.append(f"- **Where the kernel has `MADV_ZERO`** (the patched guest), one call per instance clears "
                       f"the written pages without a scan or an IPI: `pool-zero-inline` sent "
                       f"{zrow['shootdowns_per_instantiation']:.3f} shootdowns per instantiation at 16 pages on "
                       f"{vtop} threads" + (f", with {f:.2f} page faults" if f is not None else "")
                       + ". How fast that is cannot be told here: the guest's times are emulation's, and the "
                       "development host's kernel has no `MADV_ZERO`; the guest's counts are what carry over.")
    out += ["- **Where the kernel call does not matter**: a reset that sends no IPI (every in-place one) gains "
            "nothing from batching, and on one thread no reset sends IPIs at all. It matters where memory is "
            "bounded, where stacks or memories must be decommitted, and more with every core.",
            "- **Where we lose**: see *Where the project loses* below, computed from the same figures.", ""]
    return out


def traced_inst_table(recs):
    rows_ = ["| strategy | dirty pages | threads | madvise-family calls per instantiation | IPI rounds they sent "
             "| pages they zapped | flushes outside them |",
             "|---|---|---|---|---|---|---|"]
    for r in recs:
        if "traced_syscalls_per_instantiation" not in r:
            continue
        pages = r["traced_pages_zapped_per_instantiation"]
        rows_.append(f"| {r['strategy']} | {r['dirty_pages']} | {r['threads']} | "
                     f"{r['traced_syscalls_per_instantiation']:.3f} | {r['traced_ipi_rounds_per_instantiation']:.3f} | "
                     f"{'–' if pages is None else f'{pages:.2f}'} | "
                     f"{r['traced_other_flushes_per_instantiation']:.3f} |")
    return "\n".join(rows_)


def traced_table(recs):
    rows_ = ["| backend | range | vlen | system calls per call | IPI rounds sent per call | pages zapped per call |",
             "|---|---|---|---|---|---|"]
    for r in recs:
        if "traced_syscalls_per_call" not in r:
            continue
        rows_.append(f"| {r['backend']} | {r['range_bytes'] // 1024} KiB | {r['vlen']} | "
                     f"{r['traced_syscalls_per_call']:.2f} | {r['traced_ipi_rounds_per_call']:.2f} | "
                     f"{r['traced_pages_zapped_per_call']:.2f} |")
    return "\n".join(rows_)


def plots(data, png_dir):
    if not shutil.which("gnuplot"):
        return []
    made = []
    with tempfile.TemporaryDirectory() as tmp:
        for key, _ in MACHINES:
            bench = data.get(f"{key}-madvisev-bench.json")
            if bench:
                backends = sorted({r["backend"] for r in bench})
                plot = []
                for b in backends:
                    dat = os.path.join(tmp, f"{key}-{b}.dat")
                    with open(dat, "w") as f:
                        for r in sorted((r for r in bench if r["backend"] == b and r["range_bytes"] == 4096),
                                        key=lambda r: r["vlen"]):
                            f.write(f"{r['vlen']} {max(r['shootdowns_per_call'], 0.01)}\n")
                    plot.append(f"'{dat}' using 1:2 with linespoints title '{b}'")
                out = os.path.join(png_dir, f"{key}-shootdowns.png")
                script = (f"set terminal pngcairo size 800,500; set output '{out}'; set logscale xy;"
                          f"set xlabel 'ranges per call (vlen), 4 KiB each'; set ylabel 'TLB shootdowns per call';"
                          f"set key left top; set grid; plot " + ", ".join(plot))
                subprocess.run(["gnuplot", "-e", script], check=True)
                made.append(out)
            inst = data.get(f"{key}-instantiate-bench.json")
            if inst:
                for dirty in sorted({r["dirty_pages"] for r in inst}):
                    plot = []
                    for s in sorted({r["strategy"] for r in inst}):
                        rows = sorted((r for r in inst if r["strategy"] == s and r["dirty_pages"] == dirty),
                                      key=lambda r: r["threads"])
                        # A variant's name (pool-adaptive/no-stacks) is no file name.
                        dat = os.path.join(tmp, f"{key}-{s.replace('/', '+')}-{dirty}.dat")
                        with open(dat, "w") as f:
                            for r in rows:
                                f.write(f"{r['threads']} {r['instantiations_per_s']}\n")
                        style = "dashtype 2" if rows and rows[0]["insecure"] else "dashtype 1"
                        title = s + (" (insecure bound)" if rows and rows[0]["insecure"] else "")
                        plot.append(f"'{dat}' using 1:2 with linespoints {style} title '{title}'")
                    out = os.path.join(png_dir, f"{key}-instantiations-{dirty}.png")
                    script = (f"set terminal pngcairo size 1000,560; set output '{out}'; set logscale y;"
                              f"set xlabel 'threads'; set ylabel 'instantiations per second (total)';"
                              f"set title '{dirty} dirty pages per instance'; set key outside right; set grid;"
                              f"set xtics 1; plot " + ", ".join(plot))
                    subprocess.run(["gnuplot", "-e", script], check=True)
                    made.append(out)
    return made


def noise_text():
    h = NOISE["host"]
    return (f"Timings come from shared, noisy, virtualized machines: compare rows of one run, not runs, and "
            f"not machines. What carries from this machine to another is what `make demo` compares with this "
            f"page (`scripts/results.py --compare`): shootdown counts, which match when at least {MATCH:.0%} of "
            f"the rows (the insecure bound aside) lie within {h['count_abs']} plus {h['count_rel']:.0%} of the "
            f"figure, and ratios within one run (batched against range-by-range backends at each vlen, each "
            f"strategy against `stock`), each held to the band it moved by between recorded runs. Absolute "
            f"times are printed beside them for information: another machine's IPI round, page fault or "
            f"`memset` can cost several times this one's. Shootdowns are the `TLB` row of `/proc/interrupts`, "
            f"summed over CPUs; the traced figures come from `madvisev-trace`. " + RATIO_MEASURED)


# Within one run, how a figure compares with its reference row: madvisev-bench's
# `sequential` ns per range over each other backend's at the same vlen and
# range (what batching buys), instantiate-bench's instantiations/s of each
# strategy over `stock` at the same size and threads (what the pool buys).
# RATIO_BAND: how far such a ratio moved between consecutive recorded runs
# (the 90th percentile over the last six records, RATIO_MEASURED); counts
# are held to NOISE's count band.  Absolute times are reported, not judged.
RATIO_BAND = {"host": {"madvisev-bench.json": 0.16, "instantiate-bench.json": 0.70,
                       "instantiate-wasi.json": 0.38},
              "vm": {"madvisev-bench.json": 0.68, "instantiate-bench.json": 0.34,
                     "instantiate-wasi.json": 0.34}}
RATIO_MEASURED = ("Ratio bands, for rows run once: the 90th percentile of how far each ratio moved between "
                  "consecutive records of this page (six `make demo` runs, 2026-11-26 to 2026-11-27): host "
                  f"{RATIO_BAND['host']['madvisev-bench.json']:.0%} (madvisev-bench), "
                  f"{RATIO_BAND['host']['instantiate-bench.json']:.0%} (instantiate-bench), "
                  f"{RATIO_BAND['host']['instantiate-wasi.json']:.0%} (WASI programs); guest "
                  f"{RATIO_BAND['vm']['madvisev-bench.json']:.0%}, "
                  f"{RATIO_BAND['vm']['instantiate-bench.json']:.0%} and "
                  f"{RATIO_BAND['vm']['instantiate-wasi.json']:.0%}. Those runs also span changes to the pool, so "
                  "these bands overstate pure noise. Where both runs repeated every row (`instantiate-bench "
                  "--repeat`, as `make demo` now runs it), a ratio is held to the same code's noise instead: it "
                  "moved when the 95% intervals of its per-round ratios part. `--compare` exits 1 when fewer than "
                  f"{MATCH:.0%} of the counts or of the ratios lie inside, or when any count of a batched call "
                  f"or any ratio of `{DEFAULT}` does not.")


def run_ratios(recs, name):
    """{row key: (ratio, what it is)} for one JSON file of one run."""
    out = {}
    if recs is None:
        return out
    if name == "madvisev-bench.json":
        seq = {(r["range_bytes"], r["vlen"]): r for r in recs if r["backend"] == "sequential"}
        for r in recs:
            s = seq.get((r["range_bytes"], r["vlen"]))
            if s and r["backend"] != "sequential" and r["ns_per_range"] > 0:
                out[(r["backend"], r["vlen"], r["range_bytes"])] = (
                    s["ns_per_range"] / r["ns_per_range"],
                    f"{r['backend']} vs sequential, vlen {r['vlen']}, {r['range_bytes'] // 1024} KiB")
        return out
    ident = ("dirty_pages", "threads") if name == "instantiate-bench.json" else ("module", "threads")
    stock = {tuple(r[k] for k in ident): r for r in recs if r["strategy"] == "stock"}
    for r in recs:
        s = stock.get(tuple(r[k] for k in ident))
        if s and r["strategy"] != "stock" and not r["insecure"] and s["instantiations_per_s"] > 0:
            out[(r["strategy"],) + tuple(r[k] for k in ident)] = (
                r["instantiations_per_s"] / s["instantiations_per_s"],
                f"{r['strategy']} vs stock, " + ", ".join(f"{k.replace('_', ' ')} {r[k]}" for k in ident))
    return out


def median_ci95(xs, resamples=2000):
    """A 95% percentile-bootstrap interval of the median of xs (fixed seed)."""
    rng = random.Random(0x6d616476)
    meds = sorted(statistics.median([rng.choice(xs) for _ in xs]) for _ in range(resamples))
    return meds[int(0.025 * (resamples - 1))], meds[int(0.975 * (resamples - 1))]


def round_ratios(recs, name):
    """{row key: per-round ratios against stock} for instantiate rows run more than twice
    (instantiate-bench --repeat): round k of a strategy against round k of stock."""
    out = {}
    if recs is None or name == "madvisev-bench.json":
        return out
    ident = ("dirty_pages", "threads") if name == "instantiate-bench.json" else ("module", "threads")
    stock = {tuple(r[k] for k in ident): r for r in recs if r["strategy"] == "stock"}
    for r in recs:
        s = stock.get(tuple(r[k] for k in ident))
        a, b = r.get("instantiations_per_s_runs"), (s or {}).get("instantiations_per_s_runs")
        if s and r["strategy"] != "stock" and not r["insecure"] and a and b and len(a) == len(b) >= 3 \
                and all(x > 0 for x in b):
            out[(r["strategy"],) + tuple(r[k] for k in ident)] = [x / y for x, y in zip(a, b)]
    return out


def repeat_arg(recs):
    """" --repeat N" where the rows of @recs were run N times, else ""."""
    n = max((r.get("runs", 1) for r in recs or []), default=1)
    return f" --repeat {n}" if n > 1 else ""


def machine_line(d, key):
    m = load(d, f"{key}-machine.json")
    if not m:
        return "unknown"
    return f"{m['cpu']}, {m['cores']} CPUs, {m['kernel']}"


def compare(recorded_dir, fresh_dir):
    """What carries from one machine to another: shootdown counts, and ratios
    within one run on the host; absolute times, and the guests' ratios
    (emulation's times), are shown for information only."""
    keys = {"madvisev-bench.json": (("backend", "vlen", "range_bytes"), "ns_per_range", "shootdowns_per_call"),
            "instantiate-bench.json": (("strategy", "dirty_pages", "threads"), "instantiations_per_s",
                                       "shootdowns_per_instantiation"),
            "instantiate-wasi.json": (("module", "strategy", "threads"), "instantiations_per_s",
                                      "shootdowns_per_instantiation")}
    counts = counts_in = ratios = ratios_in = 0
    # Held row by row, not by the share inside: the counts of the batched
    # calls (one round per call is what the project claims) and the ratios
    # of the default strategy (what the page calls ours).
    strict = []
    for key, title in MACHINES:
        band = NOISE[key]
        # The guests run under emulation: their counts are exact, their
        # times (and so the ratios of their rates) are not evidence, and
        # are shown for information only.
        timed = key == "host"
        print(f"{title}: the record ran on {machine_line(recorded_dir, key)}; "
              f"this run on {machine_line(fresh_dir, key)}")
        for name, (ident, time_f, count_f) in keys.items():
            old, new = load(recorded_dir, f"{key}-{name}"), load(fresh_dir, f"{key}-{name}")
            if old is None and new is None:
                continue
            if old is None or new is None:
                print(f"  {name}: missing in {'the record' if old is None else 'the fresh run'}")
                continue
            recorded = {tuple(r[k] for k in ident): r for r in old}
            c_rows = c_out = 0
            times = []
            count_lines = []
            for r in new:
                o = recorded.get(tuple(r[k] for k in ident))
                if o is None or r.get("insecure"):
                    continue
                c_rows += 1
                if o[time_f] > 0:
                    times.append(r[time_f] / o[time_f])
                if not in_count_band(r[count_f], o[count_f], band):
                    c_out += 1
                    count_lines.append(f"    {' '.join(str(r[k]) for k in ident)}: {count_f} "
                                       f"{o[count_f]:.3f} -> {r[count_f]:.3f}")
                    if r.get("backend") in ("syscall", "process_madvise") and r.get("vlen", 0) >= 16:
                        strict.append(f"{key} {name}: {r['backend']} vlen {r['vlen']} "
                                      f"{r['range_bytes'] // 1024} KiB sends {r[count_f]:.2f} rounds per call, "
                                      f"recorded {o[count_f]:.2f}")
            rb = RATIO_BAND[key][name]
            old_r, new_r = run_ratios(old, name), run_ratios(new, name)
            old_rounds, new_rounds = round_ratios(old, name), round_ratios(new, name)
            r_rows = r_out = by_interval = 0
            ratio_lines = []
            for k, (v, what) in new_r.items():
                if k not in old_r:
                    continue
                r_rows += 1
                ov = old_r[k][0]
                if k in old_rounds and k in new_rounds:
                    # Both runs repeated every row: the same code's noise is in
                    # the rounds; a ratio moved when the intervals part.
                    by_interval += 1
                    (olo, ohi), (nlo, nhi) = median_ci95(old_rounds[k]), median_ci95(new_rounds[k])
                    outside = nhi < olo or nlo > ohi
                    line = (f"{what}: {ov:.2f}x ({olo:.2f}-{ohi:.2f}) -> {v:.2f}x ({nlo:.2f}-{nhi:.2f}), "
                            "95% intervals apart")
                else:
                    outside = max(v / ov, ov / v) > 1 + rb
                    line = f"{what}: {ov:.2f}x -> {v:.2f}x, outside ±{rb:.0%}"
                if outside:
                    r_out += 1
                    ratio_lines.append("    " + line)
                    if k[0] == DEFAULT and timed:
                        strict.append(f"{key} {name}: {line}")
            counts += c_rows
            counts_in += c_rows - c_out
            if timed:
                ratios += r_rows
                ratios_in += r_rows - r_out
            times.sort()
            print(f"  {name}: shootdown counts {c_rows - c_out} of {c_rows} rows inside the count band; "
                  f"ratios within the run{'' if timed else ' (emulation: information only)'} "
                  f"{r_rows - r_out} of {r_rows} inside "
                  + (f"their 95% intervals ({by_interval} rows) or " if by_interval else "") + f"±{rb:.0%}"
                  + (f"; absolute times (information only) {times[len(times) // 2]:.2f}x the record's at the "
                     f"median, {times[0]:.2f}x to {times[-1]:.2f}x" if times else ""))
            for line in count_lines + ratio_lines:
                print(line)
    # The vCPU sweep and the 6.1 guest: counts only (their times are emulation's).
    band = NOISE["vm"]
    sweep_files = sorted(f for f in (os.listdir(fresh_dir) if os.path.isdir(fresh_dir) else [])
                         if (f.startswith("vm-smp") or f.startswith("vm61-"))
                         and f.endswith(("-ipi-cost.json", "-madvisev-bench.json", "-instantiate-sweep.json")))
    for f in sweep_files:
        old, new = load(recorded_dir, f), load(fresh_dir, f)
        if old is None:
            print(f"  {f}: missing in the record")
            continue
        ident, count_f = ((("receivers",), "shootdowns_per_call") if f.endswith("-ipi-cost.json") else
                          (("backend", "vlen", "range_bytes"), "shootdowns_per_call")
                          if f.endswith("-madvisev-bench.json") else
                          (("strategy", "dirty_pages"), "shootdowns_per_instantiation"))
        recorded = {tuple(r[k] for k in ident): r for r in old}
        c_rows = c_out = 0
        for r in new:
            o = recorded.get(tuple(r[k] for k in ident))
            if o is None:
                continue
            c_rows += 1
            if not in_count_band(r[count_f], o[count_f], band):
                c_out += 1
                print(f"    {f} {' '.join(str(r[k]) for k in ident)}: {count_f} {o[count_f]:.3f} -> {r[count_f]:.3f}")
        counts += c_rows
        counts_in += c_rows - c_out
        print(f"  {f}: shootdown counts {c_rows - c_out} of {c_rows} rows inside the count band")
    failed = []
    if counts:
        ok = counts_in >= MATCH * counts
        print(f"Counts: {counts_in} of {counts} rows ({counts_in / counts:.0%}) inside the count band: "
              + ("the shootdown counts match the record." if ok else
                 "the shootdown counts do NOT match the record (needs {MATCH:.0%}).".format(MATCH=MATCH)))
        if not ok:
            failed.append("shootdown counts")
    if ratios:
        ok = ratios_in >= MATCH * ratios
        print(f"Ratios within the run: {ratios_in} of {ratios} ({ratios_in / ratios:.0%}) inside their band"
              + ("." if ok else
                 f" (needs {MATCH:.0%}): this code or this machine weighs IPIs, page faults and memset "
                 "differently from the record's (see the rows listed)."))
        if not ok:
            failed.append("ratios within the run")
    for line in strict:
        print(f"Outside, and held row by row: {line}")
    if strict:
        failed.append(f"{len(strict)} batched count(s) or ratio(s) of `{DEFAULT}`")
    if failed:
        print(f"compare: FAIL: {' and '.join(failed)} outside the noise of the record")
    return 1 if failed else 0


def load_all(data_dir):
    """Every JSON file the pages read, by name (None where missing or bad)."""
    names = ["madvisev-bench.json", "instantiate-bench.json", "machine.json", "madvisev-trace.json",
             "instantiate-trace.json", "instantiate-wasi.json", "ipi-cost.json"]
    data = {f"{k}-{n}": load(data_dir, f"{k}-{n}") for k, _ in MACHINES for n in names}
    if os.path.exists(os.path.join(data_dir, "host-instantiate-budget.json")):
        data["host-instantiate-budget.json"] = load(data_dir, "host-instantiate-budget.json")
    for f in sorted(os.listdir(data_dir)):
        if (f.startswith(("vm-smp", "vm61-", "vmstock-", "debian")) and f.endswith(".json") or f in results_wasmtime.FILES
                or f in results_vcpus.FILES or f in results_prose.DATA_FILES):
            data[f] = load(data_dir, f)
    return data


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "--compare":
        sys.exit(compare(sys.argv[2], sys.argv[3]))
    if len(sys.argv) == 4 and sys.argv[1] in ("--prose", "--prose-check"):
        sys.exit(results_prose.run(load_all(sys.argv[2]), sys.argv[3], sys.argv[1] == "--prose-check"))
    if len(sys.argv) != 4:
        sys.exit("usage: results.py DATA_DIR OUT_MD PNG_DIR | --compare RECORDED_DIR FRESH_DIR | "
                 "--prose[-check] DATA_DIR TOP")
    data_dir, out_md, png_dir = sys.argv[1:]
    data = load_all(data_dir)
    if not any(data.values()):
        sys.exit(f"results.py: no benchmark JSON in {data_dir} (run make demo first)")
    report_missing(data_dir, data)
    os.makedirs(png_dir, exist_ok=True)
    pngs = plots(data, png_dir)
    rel = os.path.relpath(png_dir, os.path.dirname(out_md) or ".")
    out = ["# Results", "",
           "Generated by `make results` from the JSON in `docs/results/data/`, which `make demo` wrote; "
           "the same JSON gives this page byte for byte. " + noise_text(), "",
           "Commands: `make demo` (host: `madvisev-bench --json`, "
           + ("`madvisev-bench --trace` on 4 KiB ranges, " if data["host-madvisev-trace.json"] else "")
           + f"`instantiate-bench --seconds 1{repeat_arg(data['host-instantiate-bench.json'])} --json`"
           + (", `instantiate-bench --trace` on 2 threads" if data["host-instantiate-trace.json"] else "")
           + "; guest: `madvisev-bench --ranges 4096`, "
           + f"`instantiate-bench --seconds 0.5{repeat_arg(data['vm-instantiate-bench.json'])}`"
           + (", `instantiate-bench --module request,compress,grow --threads 1,2 --seconds 0.5`"
              if data["vm-instantiate-wasi.json"] else "")
           + ", 2 vCPUs"
           + ("; the patched 6.1 guest: `madvisev-bench --ranges 4096`, 2 vCPUs"
              if data.get("vm61-madvisev-bench.json") else "")
           + ("; `madvisev-ipi-cost` on the host and, with `instantiate-bench` on as many threads, in the guest "
              "booted with " + ", ".join(str(n) for n in sweep_counts(data)) + " vCPUs" if sweep_counts(data) else "")
           + ("; real Wasmtime beside `pool-adaptive`: `peers/wasmtime-bench/side-by-side.py run` on the host "
              f"({len(data['host-real-wasmtime.json']['repetitions'])} alternated runs) and the guest job "
              "`wasmtime` in the 6.12 guests without and with the series and the patched 6.1 guest"
              if data.get("host-real-wasmtime.json") else "")
           + "), then `make results`, which also writes `docs/scaling.md`.", ""] + left_out_lines() + analysis(data) + [
           "## What the figures show", "",
           "Every claim below is computed from the tables further down; one that the figures do not bear "
           "out says so.", ""]
    for key, title in MACHINES:
        bench, inst = data[f"{key}-madvisev-bench.json"], data[f"{key}-instantiate-bench.json"]
        if not (bench or inst):
            continue
        out += [f"### {title}", ""]
        if bench:
            fast = "syscall" if any(r["backend"] == "syscall" for r in bench) else "process_madvise"
            out += reading_bench(bench, fast, key)
        if inst:
            out += reading_inst(inst, key)
        if data[f"{key}-instantiate-wasi.json"]:
            out += reading_wasi(data[f"{key}-instantiate-wasi.json"], key)
        out += reading_zero(inst, data[f"{key}-instantiate-wasi.json"], key == "vm")
        out += reading_wasmtime(inst, data[f"{key}-instantiate-wasi.json"], WITHIN_RUN[key], key != "host")
        out += [""]
    lost = losses(data) + results_wasmtime.losses(data)
    out += ["### Where the project loses", ""]
    out += lost if lost else ["- Nowhere in this run."]
    out += [""]
    out += results_wasmtime.section(data)
    for key, title in MACHINES:
        m = data[f"{key}-machine.json"]
        bench = data[f"{key}-madvisev-bench.json"]
        inst = data[f"{key}-instantiate-bench.json"]
        traced = data[f"{key}-madvisev-trace.json"]
        traced_inst = data[f"{key}-instantiate-trace.json"]
        if not (bench or inst or data[f"{key}-instantiate-wasi.json"]):
            continue
        out += [f"## {title}", ""]
        if m:
            out += [f"CPU {m['cpu']}, {m['cores']} CPUs, {m['memory_gib']} GiB, {m['kernel']}, "
                    f"accelerator: {m['accelerator']}.", ""]
        if bench:
            out += ["### madvisev-bench: MADV_DONTNEED per backend", "", bench_table(bench), ""]
            if f"{png_dir}/{key}-shootdowns.png" in pngs:
                out += [f"![TLB shootdowns per call against vlen]({rel}/{key}-shootdowns.png)", ""]
        if traced:
            out += ["### madvisev-trace: what each backend's own calls cost", "",
                    "`madvisev-bench --trace`: per benchmark call, the system calls the tracer saw, the IPI "
                    "rounds they (or, for io_uring, its workers' madvise operations) sent, and the pages "
                    "they zapped. The tracer runs beside the benchmark, so its timings are left out.", "",
                    traced_table(traced), ""]
        if inst:
            out += ["### instantiate-bench: the wasm2c echo module per strategy", "", inst_table(inst), ""]
            for dirty in sorted({r["dirty_pages"] for r in inst}):
                p = f"{png_dir}/{key}-instantiations-{dirty}.png"
                if p in pngs:
                    out += [f"![instantiations per second, {dirty} dirty pages]({rel}/{key}-instantiations-{dirty}.png)", ""]
        wasi = data[f"{key}-instantiate-wasi.json"]
        if wasi:
            out += ["### instantiate-bench: WASI programs in C per strategy", "",
                    "`instantiate-bench --module request,compress,grow`: each iteration instantiates the program "
                    "(clang --target=wasm32-wasi, wasm2c), runs its `_start` on a pooled fiber through the "
                    "project's WASI layer, checks its stdout against a reference run and frees it. `request` "
                    "parses a CGI-style request and prints a JSON response; `compress` runs LZ77 and FNV-1a "
                    "over 128 KiB; `grow` grows its memory past 5 MiB. Pages dirtied: the pages of the "
                    "instance's memory and fiber stack that hold data just before free (`PAGEMAP_SCAN`, and "
                    "not all zero), from an untimed pass after each row. `unsafe-no-reset` has no rows: "
                    "without a reset a program finds its zero-initialised data stale and misbehaves.", "",
                    wasi_table(wasi), ""]
        if zero_workloads(inst, wasi):
            out += ["### Zeroing in place against decommit and keep-resident", "",
                    "The same rows as above, side by side at the most threads: `pool-zero-in-place` resets "
                    "each batch of released slots with one `madvisev(..., MADVISEV_ZERO)` call ("
                    + ("the kernel clears the pages where they are mapped" if key == "vm" else
                       "emulated on this kernel: `PAGEMAP_SCAN` for the pages holding data, `memset`, and one "
                       "`MADV_DONTNEED` call for the swapped ones")
                    + "); `pool-zero-inline` makes the same call per instance, on the thread that frees it; "
                    "`pool-zero-emulated` forces the library's emulation; `pool-sharded-*` decommits the "
                    "batch with `MADV_DONTNEED` (one flush per batch, a page fault per page on reuse); "
                    "`pool-keep-resident` memsets every slot whole. Resident: the process's RSS growth over "
                    "the row. The programs that grow their memory (`compress`, `grow`) pay about one shootdown "
                    "per instantiation under every pool strategy: the next instance starts smaller and "
                    "`acquire()` shrinks the slot with `mprotect()`, not the reset.", "", zero_table(inst, wasi), ""]
        if wasmtime_workloads(inst, wasi):
            out += ["### Against Wasmtime's policies, reimplemented on this pool", "",
                    "Not Wasmtime (real Wasmtime is under *Real Wasmtime*): the policies of its configurations "
                    "reproduced on this pool, side by side with the project's default (`pool-adaptive`, ours), "
                    "the default with fiber stacks left unreset as Wasmtime's policies leave them "
                    "(`pool-adaptive/no-stacks`, where recorded), the fastest of the project's safe strategies "
                    "where that is another (labelled best of N) and `stock`, at the most threads. "
                    "`pool-madvise-each` follows Wasmtime's pooling "
                    "allocator as it comes: `decommit_batch_size` 1 (each memory and table decommitted by its own "
                    "`madvise` when freed), no `*_keep_resident`, `async_stack_zeroing` off (stacks are not "
                    "reset). `pool-resident-scan` follows its best configuration today: `memory_keep_resident` and "
                    "`table_keep_resident` covering the whole slot with `pagemap_scan` (only the pages written "
                    "are zeroed, at most 32 runs of them, the rest decommitted), `decommit_batch_size` 32 through "
                    "`process_madvise(PIDFD_SELF)` where the kernel takes `MADV_DONTNEED` there, per-thread "
                    "shards, stacks not reset. Our reproduction of its scan also treats swapped-out pages as "
                    "data, which costs nothing here (nothing is swapped) and which a scan for present pages "
                    "alone would leave in place. The project's strategies all reset the stack.", "",
                    wasmtime_table(inst, wasi), ""]
        if traced_inst:
            out += ["### madvisev-trace: what each strategy's resets cost", "",
                    "`instantiate-bench --trace` (a separate, shorter run): per instantiation, the madvise-family "
                    "system calls the process made, the IPI rounds those calls sent, the pages they zapped, and "
                    "the flushes outside them (the stock runtime's unmaps).", "",
                    traced_inst_table(traced_inst), ""]
    out += linux61_section(data)
    out += sweep_section(data)
    with open(out_md, "w") as f:
        f.write("\n".join(out).rstrip() + "\n")
    scaling = scaling_page(data)
    if scaling:
        scaling += [""] + results_vcpus.section(data)
        with open(os.path.join(os.path.dirname(out_md) or ".", "scaling.md"), "w") as f:
            f.write("\n".join(scaling).rstrip() + "\n")


if __name__ == "__main__":
    main()
