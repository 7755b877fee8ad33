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
import os
import shutil
import subprocess
import sys
import tempfile

MACHINES = [("host", "Development host"), ("vm", "Patched Linux 6.12 guest (QEMU TCG)")]

# Run-to-run noise the page states, per machine: a timing (ns per range,
# instantiations/s) of a fresh run lies within TIME of the recorded one, a
# count (shootdowns per call or per instantiation) within COUNT_ABS plus
# COUNT_REL of it; "the figures match" when at least MATCH of the rows do.
# Set from --compare between make demo runs on the development host
# (MEASURED).  Counts of the unbatched backends move by up to ~20%: their
# IPIs depend on whether the spinning sibling thread is on its CPU.  The
# insecure bound (unsafe-no-reset) is not held to it: it times a loop that
# does next to nothing, which moves by up to 3x between runs.
NOISE = {"host": {"time": 0.20, "count_abs": 0.05, "count_rel": 0.15},
         "vm": {"time": 0.40, "count_abs": 0.05, "count_rel": 0.15}}
MATCH = 0.90
# Within one run, two rows this close can swap places in the next one
# (per-thread against global queue moved by up to 4% on the host).
WITHIN_RUN = {"host": 0.05, "vm": 0.10}
MEASURED = ("The band was set from consecutive `make demo` runs here (five runs, four comparisons: 96%, "
            "96%, 94% and, against this page, 93% of the rows held to it inside): per table, the median "
            "timing moved 2–11%; the largest moves were the insecure bound (up to 3x, hence not held to "
            "the band), the range-by-range strategies on the host (up to 43%), a few rows of the "
            "emulated guest (up to 77%) and the shootdown counts of io_uring, whose workers race the "
            "spinning sibling thread (up to 42%); batched calls' counts did not move.")


def load(d, name):
    p = os.path.join(d, name)
    if not os.path.exists(p):
        return None
    with open(p) as f:
        return json.load(f)


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


def inst_table(recs):
    # Records from before the page-scan pass have no pages-dirtied column.
    scanned = any("memory_pages_dirtied_per_instantiation" in r for r in recs)
    rows = ["| strategy | dirty pages | threads | batch | instantiations/s | per thread | efficiency | "
            "shootdowns per instantiation | " + ("pages dirtied (memory + stack) | " if scanned else "")
            + "p50 µs | p99 µs |",
            "|---|---|---|---|---|---|---|---|---|---|" + ("---|" if scanned else "")]
    for r in recs:
        eff = "–" if r["efficiency"] is None else f"{r['efficiency']:.2f}"
        name = r["strategy"] + (" (INSECURE)" if r["insecure"] else "")
        rows.append(f"| {name} | {r['dirty_pages']} | {r['threads']} | {r['batch_size']} | "
                    f"{fmt(r['instantiations_per_s'])} | {fmt(r['instantiations_per_s'] / r['threads'])} | {eff} | "
                    f"{r['shootdowns_per_instantiation']:.3f} | " + (f"{dirtied(r)} | " if scanned else "")
                    + f"{r['p50_ns'] / 1000:.1f} | {r['p99_ns'] / 1000:.1f} |")
    return "\n".join(rows)


def wasi_table(recs):
    rows = ["| module | strategy | threads | batch | instantiations/s | per thread | efficiency | "
            "shootdowns per instantiation | pages dirtied (memory + stack) | p50 µs | p99 µs |",
            "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in recs:
        eff = "–" if r["efficiency"] is None else f"{r['efficiency']:.2f}"
        rows.append(f"| {r['module']} | {r['strategy']} | {r['threads']} | {r['batch_size']} | "
                    f"{fmt(r['instantiations_per_s'])} | {fmt(r['instantiations_per_s'] / r['threads'])} | {eff} | "
                    f"{r['shootdowns_per_instantiation']:.3f} | {dirtied(r)} | "
                    f"{r['p50_ns'] / 1000:.1f} | {r['p99_ns'] / 1000:.1f} |")
    return "\n".join(rows)


def reading_wasi(recs):
    """What the WASI programs show at the most threads, computed from their rows."""
    lines = []
    top = max(r["threads"] for r in recs)
    for module in sorted({r["module"] for r in recs}, key=lambda m: [r["module"] for r in recs].index(m)):
        at = rows(recs, module=module, threads=top)
        safe = [r for r in at if not r["insecure"]]
        stock = one(at, strategy="stock")
        if not safe or not stock:
            continue
        best = max(safe, key=lambda r: r["instantiations_per_s"])
        pages = stock.get("pages_dirtied_per_instantiation")
        text = (f"- **`{module}`, {top} threads:** "
                + (f"it leaves {pages:.0f} pages holding data per instance (memory and stack); " if pages is not None else "")
                + f"`{best['strategy']}` is the fastest safe strategy, {fmt(best['instantiations_per_s'])}/s, "
                f"{best['instantiations_per_s'] / stock['instantiations_per_s']:.1f}x `stock`")
        shoot = [r for r in safe if r["strategy"] != "stock"]
        if shoot:
            worst = max(shoot, key=lambda r: r["shootdowns_per_instantiation"])
            text += (f"; the pool's strategies cost at most {worst['shootdowns_per_instantiation']:.3f} shootdowns "
                     f"per instantiation (`{worst['strategy']}`) against {stock['shootdowns_per_instantiation']:.3f} "
                     "for `stock`")
        lines.append(text + ".")
    return lines


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


def reading_inst(recs, machine):
    """What instantiate-bench shows at the most threads, each claim checked."""
    lines = []
    top = max(r["threads"] for r in recs)
    batched = sorted({r["strategy"] for r in recs
                      if r["strategy"] in ("pool-sharded-syscall", "pool-sharded-process-madvise")})
    for dirty in sorted({r["dirty_pages"] for r in recs}):
        at = rows(recs, dirty_pages=dirty, threads=top)
        safe = [r for r in at if not r["insecure"]]
        stock = one(at, strategy="stock")
        if not safe or not stock:
            continue
        best = max(safe, key=lambda r: r["instantiations_per_s"])
        text = (f"- **{dirty} dirty pages, {top} threads:** `{best['strategy']}` is the fastest safe strategy, "
                f"{fmt(best['instantiations_per_s'])}/s, {best['instantiations_per_s'] / stock['instantiations_per_s']:.1f}x "
                f"`stock`.")
        for name in batched:
            b = one(at, strategy=name)
            seq = one(at, strategy="pool-sharded-sequential")
            if b and seq:
                holds = b["shootdowns_per_instantiation"] <= 1.5 / b["batch_size"]
                text += (f" Batched resets (`{name}`) cost {b['shootdowns_per_instantiation']:.3f} shootdowns per "
                         f"instantiation, one round per {b['batch_size']}-instance batch, against "
                         f"{seq['shootdowns_per_instantiation']:.2f} for the same pool resetting range by range, "
                         f"and run at {b['instantiations_per_s'] / seq['instantiations_per_s']:.2f}x its rate."
                         f"{verdict(holds)}")
        lines.append(text)
    return lines


ZERO_ROWS = ["pool-zero-in-place", "pool-zero-inline", "pool-zero-emulated", "pool-sharded-syscall", "pool-sharded-process-madvise",
             "pool-keep-resident", "pool-adaptive", "stock"]


def zero_workloads(inst, wasi):
    """(label, rows at the most threads) for echo at each dirty size and each WASI program."""
    out = []
    if inst:
        top = max(r["threads"] for r in inst)
        for dirty in sorted({r["dirty_pages"] for r in inst}):
            out.append((f"echo, {dirty} pages", rows(inst, dirty_pages=dirty, threads=top), top))
    if wasi:
        top = max(r["threads"] for r in wasi)
        for module in sorted({r["module"] for r in wasi}, key=lambda m: [r["module"] for r in wasi].index(m)):
            out.append((f"{module} (WASI)", rows(wasi, module=module, threads=top), top))
    return [w for w in out if one(w[1], strategy="pool-zero-in-place")]


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
            faults = r.get("page_faults_per_instantiation")
            head.append(f"| {label} | {top} | {name} | {fmt(r['instantiations_per_s'])} | {vs} | "
                        f"{r['shootdowns_per_instantiation']:.3f} | "
                        f"{'–' if faults is None else f'{faults:.2f}'} | "
                        f"{r['resident_bytes'] / 2**20:.1f} | {dirtied(r)} |")
    return "\n".join(head)


def reading_zero(inst, wasi, native):
    """Is the zero-in-place reset the fastest safe reset, with no IPI?  Checked per workload."""
    lines = []
    how = ("the kernel's `MADV_ZERO`" if native else
           "the library's emulation, this kernel having no `MADV_ZERO`: `PAGEMAP_SCAN`, `memset`, one "
           "`MADV_DONTNEED` call for swapped runs")
    for label, at, top in zero_workloads(inst, wasi):
        # The better of the two ways the pool uses the advice: a batch of
        # slots per call on the flusher, or one instance per call inline.
        z = max((r for r in (one(at, strategy="pool-zero-in-place"), one(at, strategy="pool-zero-inline")) if r),
                key=lambda r: r["instantiations_per_s"])
        batched = one(at, strategy="pool-zero-in-place")
        safe = [r for r in at if not r["insecure"]]
        best = max(safe, key=lambda r: r["instantiations_per_s"])
        text = (f"- **{label}, {top} threads:** `{z['strategy']}` ({how}) runs "
                f"{fmt(z['instantiations_per_s'])}/s with {z['shootdowns_per_instantiation']:.3f} shootdowns "
                "per instantiation")
        faults = z.get("page_faults_per_instantiation")
        if faults is not None:
            text += f" and {faults:.2f} page faults"
        if best is z:
            text += "; the fastest safe reset here"
        else:
            text += (f"; `{best['strategy']}` is faster, {fmt(best['instantiations_per_s'])}/s "
                     f"({best['instantiations_per_s'] / z['instantiations_per_s']:.2f}x)")
        if batched and batched is not z:
            text += (f"; the batched `pool-zero-in-place` {fmt(batched['instantiations_per_s'])}/s "
                     f"({batched.get('page_faults_per_instantiation') or 0:.1f} faults per instantiation)")
        for name, what in (("pool-zero-emulated", "the emulation"), ("pool-keep-resident", "`pool-keep-resident`")):
            o = one(at, strategy=name)
            if o and o is not z and native:
                text += f"; {z['instantiations_per_s'] / o['instantiations_per_s']:.2f}x {what}"
        for name in ("pool-sharded-syscall", "pool-sharded-process-madvise"):
            o = one(at, strategy=name)
            if o:
                of = o.get("page_faults_per_instantiation")
                text += (f"; {z['instantiations_per_s'] / o['instantiations_per_s']:.2f}x batched "
                         f"`MADV_DONTNEED` (`{name}`"
                         + (f", {of:.1f} faults per instantiation" if of is not None else "") + ")")
                break
        lines.append(text + "." + verdict(not native or z["shootdowns_per_instantiation"] < 0.05))
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
                    if r["strategy"] != "stock" and not r["insecure"] and \
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
                        dat = os.path.join(tmp, f"{key}-{s}-{dirty}.dat")
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
    h, v = NOISE["host"], NOISE["vm"]
    return (f"Timings come from shared, noisy, virtualized machines: compare rows of one run, not runs. "
            f"A fresh `make demo` matches this page when at least {MATCH:.0%} of its rows (the insecure "
            f"bound aside) lie within the noise measured here between runs: timings within ±{h['time']:.0%} on the host and "
            f"±{v['time']:.0%} in the emulated guest; shootdown counts within {h['count_abs']} plus "
            f"{h['count_rel']:.0%} of the figure. `make demo` prints that comparison "
            f"(`scripts/results.py --compare`). Shootdowns are the `TLB` row of `/proc/interrupts`, "
            f"summed over CPUs; the traced figures come from `madvisev-trace`. " + MEASURED)


def compare(recorded_dir, fresh_dir):
    keys = {"madvisev-bench.json": (("backend", "vlen", "range_bytes"), "ns_per_range", "shootdowns_per_call"),
            "instantiate-bench.json": (("strategy", "dirty_pages", "threads"), "instantiations_per_s",
                                       "shootdowns_per_instantiation"),
            "instantiate-wasi.json": (("module", "strategy", "threads"), "instantiations_per_s",
                                      "shootdowns_per_instantiation")}
    total = inside = 0
    for key, title in MACHINES:
        band = NOISE[key]
        for name, (ident, time_f, count_f) in keys.items():
            old, new = load(recorded_dir, f"{key}-{name}"), load(fresh_dir, f"{key}-{name}")
            if old is None and new is None:
                continue
            if old is None or new is None:
                print(f"{title}, {name}: missing in {'the record' if old is None else 'the fresh run'}")
                continue
            recorded = {tuple(r[k] for k in ident): r for r in old}
            devs, outside, bounds = [], [], []
            for r in new:
                o = recorded.get(tuple(r[k] for k in ident))
                if o is None or o[time_f] <= 0:
                    continue
                if r.get("insecure"):
                    bounds.append(r[time_f] / o[time_f] - 1)
                    continue
                dt = r[time_f] / o[time_f] - 1
                dc = abs(r[count_f] - o[count_f])
                ok = abs(dt) <= band["time"] and dc <= band["count_abs"] + band["count_rel"] * abs(o[count_f])
                devs.append(abs(dt))
                total += 1
                inside += ok
                if not ok:
                    outside.append(f"    {' '.join(str(r[k]) for k in ident)}: {time_f} {o[time_f]:,.1f} -> "
                                   f"{r[time_f]:,.1f} ({100 * dt:+.1f}%), {count_f} {o[count_f]:.3f} -> "
                                   f"{r[count_f]:.3f}")
            devs.sort()
            if devs:
                print(f"{title}, {name}: {len(devs)} rows, {len(devs) - len(outside)} inside the band; "
                      f"timing deviation median {100 * devs[len(devs) // 2]:.1f}%, max {100 * devs[-1]:.1f}%")
            for line in outside:
                print(line)
            if bounds:
                print(f"    (the insecure bound, not held to the band: {len(bounds)} rows moved by "
                      f"{min(100 * b for b in bounds):+.0f}% to {max(100 * b for b in bounds):+.0f}%)")
    if total:
        verdict_ = "match" if inside >= MATCH * total else "do NOT match"
        print(f"{inside} of {total} rows ({inside / total:.0%}) inside the stated noise: the figures {verdict_} "
              f"the record (needs {MATCH:.0%}).")


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "--compare":
        compare(sys.argv[2], sys.argv[3])
        return
    if len(sys.argv) != 4:
        sys.exit("usage: results.py DATA_DIR OUT_MD PNG_DIR | --compare RECORDED_DIR FRESH_DIR")
    data_dir, out_md, png_dir = sys.argv[1:]
    names = ["madvisev-bench.json", "instantiate-bench.json", "machine.json", "madvisev-trace.json",
             "instantiate-trace.json", "instantiate-wasi.json"]
    data = {f"{k}-{n}": load(data_dir, f"{k}-{n}") for k, _ in MACHINES for n in names}
    if not any(data.values()):
        sys.exit(f"results.py: no benchmark JSON in {data_dir} (run make demo first)")
    os.makedirs(png_dir, exist_ok=True)
    pngs = plots(data, png_dir)
    rel = os.path.relpath(png_dir, os.path.dirname(out_md) or ".")
    out = ["# Results", "",
           "Generated by `make results` from the JSON in `docs/results/data/`, which `make demo` wrote; "
           "the same JSON gives this page byte for byte. " + noise_text(), "",
           "Commands: `make demo` (host: `madvisev-bench --json`, "
           + ("`madvisev-bench --trace` on 4 KiB ranges, " if data["host-madvisev-trace.json"] else "")
           + "`instantiate-bench --seconds 1 --json`"
           + (", `instantiate-bench --trace` on 2 threads" if data["host-instantiate-trace.json"] else "")
           + "; guest: `madvisev-bench --ranges 4096`, `instantiate-bench --seconds 0.5`"
           + (", `instantiate-bench --module request,compress,grow --threads 1,2 --seconds 0.5`"
              if data["vm-instantiate-wasi.json"] else "")
           + ", 2 vCPUs), then "
           "`make results`.", "",
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
            out += reading_wasi(data[f"{key}-instantiate-wasi.json"])
        out += reading_zero(inst, data[f"{key}-instantiate-wasi.json"], key == "vm")
        out += [""]
    lost = losses(data)
    out += ["### Where the project loses", ""]
    out += lost if lost else ["- Nowhere in this run."]
    out += [""]
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
        if traced_inst:
            out += ["### madvisev-trace: what each strategy's resets cost", "",
                    "`instantiate-bench --trace` (a separate, shorter run): per instantiation, the madvise-family "
                    "system calls the process made, the IPI rounds those calls sent, the pages they zapped, and "
                    "the flushes outside them (the stock runtime's unmaps).", "",
                    traced_inst_table(traced_inst), ""]
    with open(out_md, "w") as f:
        f.write("\n".join(out).rstrip() + "\n")


if __name__ == "__main__":
    main()
