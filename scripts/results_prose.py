"""The figures the READMEs quote, written from the same JSON as docs/results.md.

A README marks a block as generated:

    <!-- results.py: NAME -->
    ...
    <!-- results.py: end -->

and `results.py --prose DATA_DIR TOP` rewrites every such block from the JSON
(`make results` does), `results.py --prose-check DATA_DIR TOP` fails when one
differs from what the JSON gives (`make test` does).  So no figure in those
blocks can drift from the record.
"""

import os
import re
import textwrap

import results_wasmtime as rw

FILES = ["README.md", "runtime-integration/README.md", "peers/wasmtime-bench/README.md", "kernel-patch/README.md"]
# Records only the READMEs read (the pages load the rest).
DATA_FILES = ("vm-kselftest-flush.json", "vm-lock-latency.json", "vm-fault-latency.json")
BLOCK = re.compile(r"(<!-- results\.py: ([\w-]+) -->\n)(.*?)(<!-- results\.py: end -->)", re.S)


def _one(recs, **want):
    for r in recs or []:
        if all(r.get(k) == v for k, v in want.items()):
            return r
    return None


def _kernel(machine):
    """'Linux 6.18' from a machine record's kernel string."""
    m = re.match(r"Linux (\d+\.\d+)", (machine or {}).get("kernel", ""))
    return f"Linux {m.group(1)}" if m else "its kernel"


def what_it_measures(data):
    hb, vb = data.get("host-madvisev-bench.json"), data.get("vm-madvisev-bench.json")
    inst = data.get("host-instantiate-bench.json")
    hm = data.get("host-machine.json") or {}
    out = []
    hp = _one(hb, backend="process_madvise", vlen=64, range_bytes=4096)
    hs = _one(hb, backend="sequential", vlen=64, range_bytes=4096)
    vp = _one(vb, backend="syscall", vlen=64, range_bytes=4096)
    vs = _one(vb, backend="sequential", vlen=64, range_bytes=4096)
    top = max(r["threads"] for r in inst)
    ratios = []
    for dirty in (4, 16):
        a = _one(inst, strategy="pool-adaptive", dirty_pages=dirty, threads=top)
        s = _one(inst, strategy="stock", dirty_pages=dirty, threads=top)
        ratios.append(a["instantiations_per_s"] / s["instantiations_per_s"])
    out.append(
        "`docs/results.md` has the tables and plots of the last recorded `make demo`: on the "
        f"{hm.get('cores', '?')}-vCPU development host ({_kernel(hm)}), 64 ranges of 4 KiB per call cost "
        f"{hp['shootdowns_per_call']:.2f} TLB shootdown with `process_madvise` against "
        f"{hs['shootdowns_per_call']:.2f} with one `madvise` per range; in the patched 6.12 guest, "
        f"`madvisev(2)` takes {vp['shootdowns_per_call']:.2f} per call against {vs['shootdowns_per_call']:.2f} "
        "for `sequential`; and instantiating the echo module through the pool with the adaptive reset (the "
        f"default) runs {ratios[0]:.1f}x faster than the stock wasm2c runtime at 4 dirty pages and "
        f"{ratios[1]:.1f}x at 16 ({top} threads).")

    text = ""
    per_kernel = []
    version = None
    for key, label in (("host", "host"), ("vm", "6.12"), ("vm61", "6.1")):
        doc = data.get(f"{key}-real-wasmtime.json")
        if not doc:
            continue
        t = max(r["threads"] for rep in doc["repetitions"] for r in rep["wasmtime"])
        rs = rw._series(doc, "wasmtime", "wasmtime-batch32").get(("echo", t))
        dflt = rw._series(doc, "wasmtime", "wasmtime-default").get(("echo", t))
        version = version or rs[0].get("wasmtime_version")
        calls, rounds = rw._sum(rs, "process_madvise_calls"), rw._sum(rs, "ipi_rounds_sent")
        per_kernel.append((label, rounds / calls if calls else None, rw._per_inst(rs, "shootdowns_per_instantiation"),
                           rw._per_inst(dflt, "shootdowns_per_instantiation"), t))
    if per_kernel:
        t = per_kernel[0][4]
        text = (f"**Real Wasmtime** ({version} from crates.io, `peers/wasmtime-bench`), with "
                f"`decommit_batch_size(32)`, echo, {t} threads: on the host ({_kernel(hm)}, which takes "
                "`PIDFD_SELF`) and in the patched 6.12 and 6.1 guests (2 vCPUs) its `process_madvise` calls cost "
                + ", ".join(f"{pc:.3f}" for _, pc, _, _, _ in per_kernel)
                + " IPI rounds each and "
                + ", ".join(f"{b:.3f}" for _, _, b, _, _ in per_kernel)
                + " shootdowns per instantiation, against "
                + ", ".join(f"{d:.3f} ({label})" for label, _, _, d, _ in per_kernel)
                + " with its default configuration")
    stock = data.get("vmstock-real-wasmtime.json")
    if stock:
        t = max(r["threads"] for rep in stock["repetitions"] for r in rep["wasmtime"])
        rs = rw._series(stock, "wasmtime", "wasmtime-batch32").get(("echo", t))
        calls, failed = rw._sum(rs, "process_madvise_calls"), rw._sum(rs, "process_madvise_failed")
        rounds, errors = rw._sum(rs, "ipi_rounds_sent"), rw._sum(rs, "errors")
        text += (f"; in the unpatched 6.12 guest {failed} of its {calls} calls failed with "
                 f"`{rs[0]['process_madvise_pidfd_self']}`, it returned {errors} errors, paved each slot over "
                 f"with `mmap` ({rw._per_inst(rs, 'mmap_calls'):.2f} per instantiation) and each batch cost "
                 f"{rounds / calls:.3f} rounds, {rw._per_inst(rs, 'shootdowns_per_instantiation'):.3f} shootdowns "
                 "per instantiation")
    side = data.get("host-real-wasmtime.json")
    if side:
        ours = rw._series(side, "pool_adaptive", rw.OURS)
        t = max(w[1] for w in ours)
        cells = []
        for w in sorted((w for w in ours if w[1] == t), key=lambda k: (k[0] != "echo", k)):
            best = max(((c, rw._series(side, "wasmtime", c).get(w)) for c in rw.CONFIGS
                        if rw._series(side, "wasmtime", c).get(w)), key=lambda x: rw._mean_rate(x[1]))
            (mo, ho), (mw, hw) = (rw.interval([r["instantiations_per_s"] for r in ours[w]]),
                                  rw.interval([r["instantiations_per_s"] for r in best[1]]))
            apart = ho is not None and hw is not None and abs(mo - mw) > ho + hw
            cells.append((w[0], mo, mw, best[0], apart))
        reps = len(side["repetitions"])
        e = cells[0]
        text += (f". Beside it on the host, in the same run ({reps} alternated runs, {t} threads), the "
                 f"project's default `pool-adaptive` ran {rw._fmt(e[1])} echo instantiations/s against {rw._fmt(e[2])} "
                 f"for Wasmtime's fastest configuration there (`{e[3]}`), {e[1] / e[2]:.2f}x; "
                 + ", ".join(f"{mo / mw:.2f}x on `{m}`" for m, mo, mw, _, _ in cells[1:])
                 + ("; each outside the other's 95% interval" if all(c[4] for c in cells) else
                    "; the 95% intervals overlap for "
                    + ", ".join(f"`{c[0]}`" for c in cells if not c[4])))
    rsc = [(d, _one(inst, strategy="pool-adaptive", dirty_pages=d, threads=top),
            _one(inst, strategy="pool-resident-scan", dirty_pages=d, threads=top)) for d in (16, 4)]
    if all(a and b for _, a, b in rsc):
        text += (". The rows `pool-madvise-each` and `pool-resident-scan` are Wasmtime's policies reimplemented "
                 "on the project's pool, not Wasmtime: against the second, `pool-adaptive` runs "
                 + " and ".join(f"{a['instantiations_per_s'] / b['instantiations_per_s']:.2f}x at {d} pages"
                                for d, a, b in rsc)
                 + f" on the host ({top} threads); it resets the fiber stack that `pool-resident-scan` leaves "
                 "as the last tenant left it (the `pool-adaptive/no-stacks` rows, where recorded, leave it too)")
    sweep = sorted((int(re.match(r"vm-smp(\d+)-", f).group(1)), f) for f in data
                   if re.match(r"vm-smp\d+-ipi-cost\.json$", f) and data[f])
    if sweep:
        exact = []
        each = []
        inplace = []
        for n, f in sweep:
            full = _one(data[f], receivers=n - 1)
            exact.append((n - 1, full["shootdowns_per_call"] if full else None))
            rows = data.get(f"vm-smp{n}-instantiate-sweep.json") or []
            m = _one(rows, strategy="pool-madvise-each")
            each.append(m["shootdowns_per_instantiation"] if m else None)
            inplace += [r["shootdowns_per_instantiation"] for r in rows
                        if r["strategy"] in ("pool-resident-scan", "pool-adaptive", "pool-zero-inline")]
        text += (". In the guest with " + ", ".join(str(n) for n, _ in sweep) + " vCPUs a `madvise` "
                 "interrupted " + ", ".join(f"{s:.2f}" for _, s in exact) + " CPUs per call with "
                 + ", ".join(str(r) for r, _ in exact) + " others running the process, and "
                 "`pool-madvise-each` sent " + ", ".join(f"{x:.3f}" for x in each if x is not None)
                 + " shootdowns per instantiation"
                 + (f" against {min(inplace):.3f} to {max(inplace):.3f} for the in-place resets" if inplace else ""))
    out.append(text + ".")
    return "\n\n".join(_wrap(p) for p in out)


def _wrap(text):
    return textwrap.fill(text, 72, break_long_words=False, break_on_hyphens=False)


def budget_table(data):
    recs = data.get("host-instantiate-budget.json")
    if not recs:
        return "(no budget run recorded)"
    budget = max(r.get("resident_budget", 0) for r in recs if r["strategy"] == "pool-adaptive")
    out = ["| dirty pages, threads | `pool-adaptive` | best fixed strategy within the budget | ratio | "
           "adaptive's shootdowns per instantiation (1.5 / batch = 0.047) | adaptive's slots decommitted per "
           "instantiation |", "|---|---|---|---|---|---|"]
    for a in recs:
        if a["strategy"] != "pool-adaptive":
            continue
        peers = [r for r in recs if r["dirty_pages"] == a["dirty_pages"] and r["threads"] == a["threads"]
                 and r["strategy"] not in ("pool-adaptive", "stock") and not r["insecure"]
                 and r["pool_resident_bytes"] <= budget]
        if not peers:
            continue
        best = max(peers, key=lambda r: r["instantiations_per_s"])
        out.append(f"| {a['dirty_pages']}, {a['threads']} | {rw._fmt(a['instantiations_per_s'])}/s | "
                   f"`{best['strategy']}` {rw._fmt(best['instantiations_per_s'])}/s | "
                   f"{a['instantiations_per_s'] / best['instantiations_per_s']:.2f}x | "
                   f"{a['shootdowns_per_instantiation']:.3f} | {a['decommits_per_instantiation']:.2f} |")
    return "\n".join(out)


def budget_latency(data):
    recs = data.get("host-instantiate-budget.json")
    pair = {}
    for d in (16, 256):
        for t in (1, 2):
            f = _one(recs, strategy="pool-sharded-process-madvise", dirty_pages=d, threads=t)
            i = _one(recs, strategy="pool-sharded-inline", dirty_pages=d, threads=t)
            if not (f and i):
                return "(no latency figures recorded)"
            pair[d, t] = (f["p99_ns"] / 1000, i["p99_ns"] / 1000)

    def cmp(t):
        return " and ".join(f"{rw._fmt(pair[d, t][0])} µs against {rw._fmt(pair[d, t][1])} µs at {d} pages"
                            for d in (16, 256))
    lower1 = all(pair[d, 1][0] < pair[d, 1][1] for d in (16, 256))
    lower2 = all(pair[d, 2][0] < pair[d, 2][1] for d in (16, 256))
    return _wrap(
        "Latency p99 in the same run, flusher thread against flushing in `release()` "
        "(`pool-sharded-process-madvise` against `pool-sharded-inline`): " + cmp(1) + " with one worker thread, "
        "where a core is free for the flusher"
        + ("" if lower1 else " (not lower with it at every size here)") + "; with two workers on the two "
        "cores, " + cmp(2) + (": the flusher competes with them." if not lower2 else
                                ": lower with it even so.")
        + " On a machine with a core to spare the flusher takes the batch's system call off every request; "
        "on one without, flushing inline can be the better choice (`background_flush = false`).")


def wasmtime_request(data):
    """Real Wasmtime's `request` with the batch alone: where its rounds do not come from."""
    cells = {}
    for key in ("host", "vm"):
        doc = data.get(f"{key}-real-wasmtime.json")
        if not doc:
            return "(no real-Wasmtime record)"
        t = max(r["threads"] for rep in doc["repetitions"] for r in rep["wasmtime"])
        rs = rw._series(doc, "wasmtime", "wasmtime-batch32").get(("request", t))
        kr = rw._series(doc, "wasmtime", "wasmtime-batch32-keep-resident").get(("request", t))
        n = sum(r["instantiations"] for r in rs)
        other = sum(rw._sum(rs, f) or 0 for f in ("madvise_calls", "mmap_calls", "mprotect_calls", "munmap_calls"))
        cells[key] = dict(t=t, reps=len(doc["repetitions"]), recv=rw._per_inst(rs, "shootdowns_per_instantiation"),
                          sent=rw._sum(rs, "ipi_rounds_sent") / n, pm=rw._sum(rs, "process_madvise_calls") / n,
                          other=other / n, kept=rw._per_inst(kr, "shootdowns_per_instantiation") if kr else None)
    h, v = cells["host"], cells["vm"]
    hm = data.get("host-machine.json") or {}
    return _wrap(
        f"`request` with the batch alone, {h['t']} threads, still costs {h['recv']:.3f} shootdowns received per "
        f"instantiation on the host ({_kernel(hm)}, {h['reps']} runs) and {v['recv']:.3f} in the patched 6.12 "
        f"guest (`docs/results.md`): its workers send {h['sent']:.3f} and {v['sent']:.3f} IPI rounds per "
        f"instantiation while making {h['pm']:.3f} and {v['pm']:.3f} `process_madvise` calls and "
        f"{h['other']:.3f} and {v['other']:.3f} `madvise`/`mmap`/`mprotect`/`munmap` calls per instantiation, "
        "so the rounds come from outside every counted system call. With its memory kept resident they fall "
        f"to {h['kept']:.3f} and {v['kept']:.3f}. Where they come from has not been traced further.")


WASI_STRATEGIES = ("stock", "pool-immediate", "pool-sharded-process-madvise", "pool-keep-resident", "pool-adaptive")


def wasi_table(data):
    """The WASI programs on one host thread: the table and what it shows."""
    recs = data.get("host-instantiate-wasi.json")
    hm = data.get("host-machine.json") or {}
    rows = {(r["module"], r["strategy"]): r for r in recs or [] if r["threads"] == 1}
    mods = [m for m in ("request", "compress", "grow") if (m, "pool-adaptive") in rows and (m, "stock") in rows]
    if not mods:
        return "(no WASI run recorded)"
    runs = rows[mods[0], "pool-adaptive"].get("runs", 1)
    out = [_wrap(f"The WASI programs on the {hm.get('cores', '?')}-vCPU development host ({_kernel(hm)}), "
                 f"one thread, {runs} interleaved runs a row (`make demo`'s `instantiate-wasi` step; "
                 "`host-instantiate-wasi.json`): instantiations/s, median (95% interval), and TLB shootdowns "
                 "per instantiation; \"short\" marks a row whose runs made fewer than 10 batches per thread:"),
           "", "| program | " + " | ".join(f"`{s}`" for s in WASI_STRATEGIES) + " |",
           "|---" * (len(WASI_STRATEGIES) + 1) + "|"]
    for m in mods:
        out.append(f"| `{m}` | " + " | ".join(
            f"{rw.rate_text(rows[m, s], unit='/s')}, {rows[m, s]['shootdowns_per_instantiation']:.3f}" if (m, s) in rows else "-"
            for s in WASI_STRATEGIES) + " |")

    def gain(m):
        return rows[m, "pool-adaptive"]["instantiations_per_s"] / rows[m, "stock"]["instantiations_per_s"]
    grow = rows.get(("grow", "pool-adaptive"))
    text = ("`pool-adaptive` runs " + ", ".join(f"{gain(m):.1f}x `stock` on `{m}`" for m in mods) + ". ")
    if grow:
        text += (f"`grow` dirties {grow['memory_pages_dirtied_per_instantiation']:.0f} pages per instantiation, "
                 "so every decommitting strategy pays their faults again, which the in-place resets avoid; ")
    text += ("`compress` is dominated by its own work. With one worker thread the process seldom runs on both "
             "CPUs when it unmaps or zaps, so the shootdown counts are small and vary between runs. "
             "`docs/results.md` has the two-thread rows.")
    out += ["", _wrap(text)]
    return "\n".join(out)


def _ms_or_us(us):
    return f"{us / 1000:.1f} ms" if us >= 1000 else f"{us:.0f} us"


def fault_latency(data):
    """The page-fault latency beside MADV_ZERO, before and after clearing outside the lock."""
    doc = data.get("vm-fault-latency.json")
    if not doc:
        return "(no fault-latency run recorded)"
    rows = {}
    for r in doc["rows"]:
        rows.setdefault((r["host_load"], r["vcpus"], r["kernel"]), []).append(r["result"])
    out = ["| host | vCPUs | kernel | faults beside the zeroing, per "
           f"{doc['rows'][0]['result']['seconds']:.0f} s | p99 (us) | p99.9 (us) | MADV_ZERO call, mean (us) |",
           "|---|---|---|---|---|---|---|"]
    for (load, vcpus, kernel), rs in sorted(rows.items(), key=lambda kv: (kv[0][0], kv[0][1], kv[0][2] != "before")):
        cols = [" / ".join(f"{f(r):,.0f}" for r in rs) for f in (
            lambda r: r["beside_zero"]["faults"], lambda r: r["beside_zero"]["p99_us"],
            lambda r: r["beside_zero"]["p999_us"], lambda r: r["zero_call_mean_us"])]
        out.append(f"| {'loaded' if load else 'idle'} | {vcpus} | {kernel} | " + " | ".join(cols) + " |")

    def pick(load, kernel):
        return [r for (ld, _, k), rs in rows.items() if ld == load and k == kernel for r in rs]
    idle_before, idle_after = pick(False, "before"), pick(False, "after")
    loaded_before = pick(True, "before")
    after = pick(False, "after") + pick(True, "after")
    slow = [r for r in loaded_before if r["beside_zero"]["p99_us"] > 100]
    gains = [a["beside_zero"]["faults"] / b["beside_zero"]["faults"] for a, b in zip(idle_after, idle_before)]
    p99s = [r["beside_zero"]["p99_us"] for r in after]
    text = (f"Before, on idle host cores, p99.9 of the faults beside the zeroing was "
            f"{_ms_or_us(min(r['beside_zero']['p999_us'] for r in idle_before))} to "
            f"{_ms_or_us(max(r['beside_zero']['p999_us'] for r in idle_before))}, about a whole call "
            f"({_ms_or_us(min(r['zero_call_mean_us'] for r in idle_before))} to "
            f"{_ms_or_us(max(r['zero_call_mean_us'] for r in idle_before))} on average); under host load "
            f"{len(slow)} runs of {len(loaded_before)} had a p99 above 100 us, up to "
            f"{_ms_or_us(max(r['beside_zero']['p99_us'] for r in loaded_before))}. After, p99 is "
            f"{min(p99s):.0f} to {max(p99s):.0f} us in every run, and {min(gains):.1f} to {max(gains):.1f} "
            "times as many faults complete beside the zeroing on idle host cores (run by run).")
    return "\n".join(out) + "\n\n" + _wrap(text)


def lock_latency(data):
    """mmap()+munmap() beside long madvisev() calls, from make demo's patched guest."""
    recs = data.get("vm-lock-latency.json")
    if not recs:
        return "(no lock-latency run recorded)"
    out = [f"| {recs[0]['ranges']} ranges of | calls | call time p50 / max | mmap+munmap pairs overlapping "
           "a call | their wait p50 / p99 / max |", "|---|---|---|---|---|"]
    for r in recs:
        out.append(f"| {r['range_kib']} KiB ({r['ranges'] * r['range_kib'] // 1024} MiB) | {r['calls']} | "
                   f"{_ms_or_us(r['call_p50_us'])} / {_ms_or_us(r['call_max_us'])} | {r['samples']} | "
                   f"{_ms_or_us(r['wait_p50_us'])} / {_ms_or_us(r['wait_p99_us'])} / "
                   f"{_ms_or_us(r['wait_max_us'])} |")
    return "\n".join(out)


# The kselftest's counted cases as kernel-patch/README.md shows them:
# (what the case advises, its key in vm-kselftest-flush.json, why).
DISCARD_ROWS = [
    ("anonymous 4 KiB pages, `MADV_DONTNEED`", "anon-4k-dontneed", "one gather"),
    ("anonymous 4 KiB pages, `MADV_FREE`", "anon-4k-free", "one gather"),
    ("anonymous, `process_madvise()` on self, `MADV_DONTNEED`", "process_madvise-self-dontneed",
     "same loop (0005)"),
    ("the same ranges, one `madvise()` each", "madvise-loop", "one gather per call"),
    ("each range part of a PMD-mapped THP, `MADV_DONTNEED`", "thp-partial-dontneed",
     "each PMD split flushes at once, then the gather"),
    ("whole PMD-mapped THPs, `MADV_DONTNEED`", "thp-whole-dontneed", "`zap_huge_pmd()` gathers"),
    ("whole PMD-mapped THPs, `MADV_FREE`", "thp-whole-free",
     "`madvise_free_huge_pmd()`'s `pmdp_invalidate()` flushes each at once"),
    ("dirty `MAP_SHARED` shmem (memfd)", "shmem-dirty",
     "dirty shared pages' rmap removal waits for a flush, forced before each page table's lock is dropped"),
    ("clean `MAP_SHARED` shmem", "shmem-readonly", ""),
    ("userfaultfd-registered VMA, no `UFFD_EVENT_REMOVE`", "uffd-no-remove-event", "the lock is kept"),
    ("8 ranges, 4 registered with `UFFD_EVENT_REMOVE`", "uffd-remove-event",
     "the gather is finished before each drop of the lock, then once more"),
    ("anonymous, hugetlb, anonymous", "hugetlb", "a hugetlb range keeps its own gather"),
]
ZERO_ROWS = [
    ("anonymous 4 KiB, `madvisev()`", "anon-4k-zero"),
    ("anonymous 4 KiB, `process_madvise()` on self", "process_madvise-self-zero"),
    ("the same, one `madvise()` each", "madvise-loop-zero"),
    ("a whole PMD-mapped THP and part of another (`AnonHugePages` unchanged)", "thp-zero"),
    ("swapped-out pages", "swapped-zero"),
    ("16 exclusive, 16 pinned (io_uring fixed buffers), 16 swapped, 8 zero-page, 8 empty", "mixed-zero"),
    ("two threads, one per CPU, each zeroing 16 pages of its own", "two threads zeroing at once"),
]


def _flush_table(data, rows, why):
    doc = data.get("vm-kselftest-flush.json")
    if not doc:
        return "(no kselftest counts recorded)"
    cases = doc["programs"]["madvisev-kselftest"]["cases"]
    out = ["| memory, call | ranges | calls | IPI rounds in all |" + (" why |" if why else ""),
           "|---|---|---|---|" + ("---|" if why else "")]
    for row in rows:
        c = cases[row[1]]
        out.append(f"| {row[0]} | {c['ranges'] if c['ranges'] is not None else '-'} | {c['calls']:,} | "
                   f"{c['rounds']:,} |" + (f" {row[2] or '-'} |" if why else ""))
    return "\n".join(out)


def discard_rounds(data):
    """The discarding advice's IPI rounds, counted by the kselftest in the 6.12 guest."""
    return _flush_table(data, DISCARD_ROWS, True)


def zero_rounds(data):
    """MADV_ZERO's IPI rounds, counted by the kselftest in the 6.12 guest."""
    return _flush_table(data, ZERO_ROWS, False)


BLOCKS = {"what-it-measures": what_it_measures, "budget-table": budget_table, "budget-latency": budget_latency,
          "wasmtime-request": wasmtime_request, "wasi-table": wasi_table, "fault-latency": fault_latency,
          "lock-latency": lock_latency, "discard-rounds": discard_rounds, "zero-rounds": zero_rounds}


def render(path, data):
    """The file at @path with its generated blocks written from @data."""
    text = open(path, encoding="utf-8").read()
    return BLOCK.sub(lambda m: m.group(1) + BLOCKS[m.group(2)](data) + "\n" + m.group(4), text)


def run(data, top, check):
    stale = []
    for f in FILES:
        path = os.path.join(top, f)
        new = render(path, data)
        if new != open(path, encoding="utf-8").read():
            if check:
                stale.append(f)
            else:
                with open(path, "w", encoding="utf-8") as out:
                    out.write(new)
    for f in stale:
        print(f"results.py: {f}: a generated block differs from what docs/results/data gives "
              "(make results rewrites it)")
    return 1 if stale else 0
