#!/usr/bin/env python3
"""results.py DATA_DIR OUT_MD PNG_DIR: the results page and its plots.

DATA_DIR holds the JSON the benchmarks wrote: {host,vm}-madvisev-bench.json,
{host,vm}-instantiate-bench.json and {host,vm}-machine.json.  The page is a
pure function of them: the same JSON gives the same bytes.  Plots are drawn
with gnuplot (PNG); a missing gnuplot leaves the page without pictures.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

MACHINES = [("host", "Development host"), ("vm", "Patched Linux 6.12 guest (QEMU TCG)")]


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


def inst_table(recs):
    rows = ["| strategy | dirty pages | threads | batch | instantiations/s | per thread | efficiency | "
            "shootdowns per instantiation | p50 µs | p99 µs |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    for r in recs:
        eff = "–" if r["efficiency"] is None else f"{r['efficiency']:.2f}"
        name = r["strategy"] + (" (INSECURE)" if r["insecure"] else "")
        rows.append(f"| {name} | {r['dirty_pages']} | {r['threads']} | {r['batch_size']} | "
                    f"{fmt(r['instantiations_per_s'])} | {fmt(r['instantiations_per_s'] / r['threads'])} | {eff} | "
                    f"{r['shootdowns_per_instantiation']:.3f} | {r['p50_ns'] / 1000:.1f} | {r['p99_ns'] / 1000:.1f} |")
    return "\n".join(rows)


def reading_bench(recs, fast):
    lines = []
    for size in sorted({r["range_bytes"] for r in recs}):
        for vlen in (64, 1024):
            f = [r for r in recs if r["backend"] == fast and r["vlen"] == vlen and r["range_bytes"] == size]
            s = [r for r in recs if r["backend"] == "sequential" and r["vlen"] == vlen and r["range_bytes"] == size]
            if f and s:
                f, s = f[0], s[0]
                lines.append(f"- {size // 1024} KiB ranges, vlen {vlen}: `{fast}` {f['shootdowns_per_call']:.2f} "
                             f"shootdowns per call and {fmt(f['ns_per_range'])} ns per range; `sequential` "
                             f"{s['shootdowns_per_call']:.2f} and {fmt(s['ns_per_range'])} ns "
                             f"({s['ns_per_range'] / f['ns_per_range']:.1f}x the time).")
    return lines


def reading_inst(recs):
    lines = []
    top = max(r["threads"] for r in recs)
    for dirty in sorted({r["dirty_pages"] for r in recs}):
        rows = [r for r in recs if r["dirty_pages"] == dirty and r["threads"] == top]
        safe = [r for r in rows if not r["insecure"]]
        if not safe:
            continue
        best = max(safe, key=lambda r: r["instantiations_per_s"])
        stock = [r for r in rows if r["strategy"] == "stock"]
        ad = [r for r in rows if r["strategy"] == "pool-adaptive"]
        text = (f"- {dirty} dirty pages, {top} threads: the best safe strategy is `{best['strategy']}` with "
                f"{fmt(best['instantiations_per_s'])}/s")
        if stock:
            text += f", {best['instantiations_per_s'] / stock[0]['instantiations_per_s']:.1f}x `stock`"
        if ad and ad[0] is not best:
            text += f"; `pool-adaptive` is at {100 * ad[0]['instantiations_per_s'] / best['instantiations_per_s']:.0f}% of it"
        lines.append(text + ".")
        if stock:
            losers = [r for r in safe if r["strategy"] != "stock"
                      and r["instantiations_per_s"] < stock[0]["instantiations_per_s"]]
            for r in losers:
                lines.append(f"  - Loses to `stock` ({fmt(stock[0]['instantiations_per_s'])}/s): `{r['strategy']}` with "
                             f"{fmt(r['instantiations_per_s'])}/s "
                             f"({100 * (r['instantiations_per_s'] / stock[0]['instantiations_per_s'] - 1):+.1f}%).")
    return lines


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


def main():
    if len(sys.argv) != 4:
        sys.exit("usage: results.py DATA_DIR OUT_MD PNG_DIR")
    data_dir, out_md, png_dir = sys.argv[1:]
    names = ["madvisev-bench.json", "instantiate-bench.json", "machine.json"]
    data = {f"{k}-{n}": load(data_dir, f"{k}-{n}") for k, _ in MACHINES for n in names}
    if not any(data.values()):
        sys.exit(f"results.py: no benchmark JSON in {data_dir} (run make demo first)")
    os.makedirs(png_dir, exist_ok=True)
    pngs = plots(data, png_dir)
    rel = os.path.relpath(png_dir, os.path.dirname(out_md) or ".")
    out = ["# Results", "",
           "Generated by `make results` from the JSON in `docs/results/data/`, which `make demo` wrote; "
           "the same JSON gives this page byte for byte. Timings come from shared, noisy, virtualized "
           "machines: compare rows of one run, not runs; repeated runs here moved throughput rows by up "
           "to about 10% and shootdown counts by less than 0.05 per call. Shootdowns are the `TLB` row "
           "of `/proc/interrupts`, summed over CPUs.", "",
           "Commands: `make demo` (host: `madvisev-bench --json`, `instantiate-bench --seconds 1 --json`; "
           "guest: `madvisev-bench --ranges 4096`, `instantiate-bench --seconds 0.5`, 2 vCPUs), then "
           "`make results`.", ""]
    for key, title in MACHINES:
        m = data[f"{key}-machine.json"]
        bench = data[f"{key}-madvisev-bench.json"]
        inst = data[f"{key}-instantiate-bench.json"]
        if not (bench or inst):
            continue
        out += [f"## {title}", ""]
        if m:
            out += [f"CPU {m['cpu']}, {m['cores']} CPUs, {m['memory_gib']} GiB, {m['kernel']}, "
                    f"accelerator: {m['accelerator']}.", ""]
        if bench:
            fast = "syscall" if any(r["backend"] == "syscall" for r in bench) else "process_madvise"
            out += ["### madvisev-bench: MADV_DONTNEED per backend", "", bench_table(bench), ""]
            out += reading_bench(bench, fast) + [""]
            if f"{png_dir}/{key}-shootdowns.png" in pngs:
                out += [f"![TLB shootdowns per call against vlen]({rel}/{key}-shootdowns.png)", ""]
        if inst:
            out += ["### instantiate-bench: the wasm2c echo module per strategy", "", inst_table(inst), ""]
            out += reading_inst(inst) + [""]
            for dirty in sorted({r["dirty_pages"] for r in inst}):
                p = f"{png_dir}/{key}-instantiations-{dirty}.png"
                if p in pngs:
                    out += [f"![instantiations per second, {dirty} dirty pages]({rel}/{key}-instantiations-{dirty}.png)", ""]
    with open(out_md, "w") as f:
        f.write("\n".join(out).rstrip() + "\n")


if __name__ == "__main__":
    main()
