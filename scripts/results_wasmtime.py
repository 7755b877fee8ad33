"""The results page's "Real Wasmtime" section (scripts/results.py).

Its data: {host,vmstock,vm,vm61}-real-wasmtime.json and, where make demo
had the Debian image, {debianstock,debian}-real-wasmtime.json, written by
peers/wasmtime-bench/side-by-side.py: per repetition, wasmtime-bench's rows
(Wasmtime from crates.io in each configuration) and instantiate-bench's
pool-adaptive rows on the same modules, threads and time.
"""
import math
import statistics

# The runs, in the order the page shows them: (data key, title, kernel).
RUNS = [("host", "Development host", "the host's kernel"),
        ("vmstock", "Linux 6.12 guest without the series", "stock 6.12"),
        ("vm", "Linux 6.12 guest with the series", "6.12 + series"),
        ("vm61", "Linux 6.1 guest with the series", "6.1 + series"),
        ("debianstock", "Debian 12 image, Debian's own kernel (linux-image-amd64)", "Debian 12's own"),
        ("debian", "Debian 12 image, the madvisev 6.12 kernel package", "Debian 12, madvisev 6.12 package")]
# The Debian image's runs are made where the image is built (make image).
IMAGE_RUNS = ("debianstock", "debian")
FILES = [f"{k}-real-wasmtime.json" for k, _, _ in RUNS]
DEMO_FILES = [f"{k}-real-wasmtime.json" for k, _, _ in RUNS if k not in IMAGE_RUNS]
CONFIGS = ["wasmtime-default", "wasmtime-batch32", "wasmtime-batch32-keep-resident", "wasmtime-batch32-pagemap"]
OURS = "pool-adaptive"
# Student's t, two-sided 95%, by degrees of freedom.
T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262}


def _fmt(x):
    return f"{x:,.0f}"


def rate_text(r, unit="", short=" short"):
    """Instantiations/s as the pages show it: the median over the row's runs
    (followed by @unit), its 95% interval where it ran more than once, and
    @short, formatted with the row, where its runs were short."""
    text = f"{_fmt(r['instantiations_per_s'])}{unit}"
    ci = r.get("instantiations_per_s_ci95")
    if r.get("runs", 1) > 1 and ci:
        text += f" ({_fmt(ci[0])}–{_fmt(ci[1])})"
    if r.get("short_runs"):
        text += short.format(**r)
    return text


def interval(values):
    """(mean, half-width of the 95% interval) over repetitions; half None for one."""
    m = statistics.mean(values)
    if len(values) < 2:
        return m, None
    # Past the table, its last entry: wider than the true t, never narrower.
    t = T95.get(len(values) - 1, T95[9])
    return m, t * statistics.stdev(values) / math.sqrt(len(values))


def _key(r):
    """A row's workload: (module, threads); echo is run with one dirty-page count."""
    return r["module"], r["threads"]


def _series(doc, side, name):
    """{workload: [rows, one per repetition]} of one configuration (or pool-adaptive)."""
    out = {}
    for rep in doc["repetitions"]:
        for r in rep[side]:
            if r.get("config", r.get("strategy")) == name:
                out.setdefault(_key(r), []).append(r)
    return out


def _rate_cell(rs):
    m, h = interval([r["instantiations_per_s"] for r in rs])
    return _fmt(m) + (f" ± {_fmt(h)}" if h is not None else "")


def _mean_rate(rs):
    return statistics.mean(r["instantiations_per_s"] for r in rs)


def _per_inst(rs, field):
    """Over all repetitions, per instantiation: a count field summed, or a
    per-instantiation field weighted by each row's instantiations; None
    where a row lacks it."""
    n = sum(r["instantiations"] for r in rs)
    vals = [r.get(field) for r in rs]
    if n == 0 or any(v is None for v in vals):
        return None
    if field.endswith("_per_instantiation"):
        return sum(v * r["instantiations"] for v, r in zip(vals, rs)) / n
    return sum(vals) / n


def _sum(rs, field):
    vals = [r.get(field) for r in rs]
    return None if any(v is None for v in vals) else sum(vals)


def _num(x, digits=3):
    return "-" if x is None else f"{x:.{digits}f}"


def kernel_table(data):
    """What each kernel made of each configuration: echo, the most threads."""
    head = ["| kernel | configuration | `process_madvise(PIDFD_SELF)` | process_madvise calls per instantiation "
            "(failed) | IPI rounds per process_madvise call | madvise per instantiation | mmap per instantiation "
            "| shootdowns received per instantiation | page faults per instantiation | errors Wasmtime returned |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    for key, _, kernel in RUNS:
        doc = data.get(f"{key}-real-wasmtime.json")
        if not doc:
            continue
        top = max(r["threads"] for rep in doc["repetitions"] for r in rep["wasmtime"])
        for conf in CONFIGS:
            rs = _series(doc, "wasmtime", conf).get(("echo", top))
            if not rs:
                continue
            calls, failed, rounds = _sum(rs, "process_madvise_calls"), _sum(rs, "process_madvise_failed"), \
                _sum(rs, "ipi_rounds_sent")
            per_call = rounds / calls if calls and rounds is not None else None
            head.append(f"| {kernel} | `{conf}` | {rs[0]['process_madvise_pidfd_self']} | "
                        f"{_num(_per_inst(rs, 'process_madvise_calls'))} ({failed}) | {_num(per_call)} | "
                        f"{_num(_per_inst(rs, 'madvise_calls'), 2)} | {_num(_per_inst(rs, 'mmap_calls'), 2)} | "
                        f"{_num(_per_inst(rs, 'shootdowns_per_instantiation'))} | "
                        f"{_num(_per_inst(rs, 'faults_per_instantiation'), 1)} | {_sum(rs, 'errors')} |")
    return "\n".join(head)


def reading_kernels(data):
    """The batch's fate per kernel, computed from the rows."""
    out = []
    for key, title, kernel in RUNS:
        doc = data.get(f"{key}-real-wasmtime.json")
        if not doc:
            continue
        top = max(r["threads"] for rep in doc["repetitions"] for r in rep["wasmtime"])
        rs = _series(doc, "wasmtime", "wasmtime-batch32").get(("echo", top))
        dflt = _series(doc, "wasmtime", "wasmtime-default").get(("echo", top))
        if not rs:
            continue
        calls, failed, rounds = _sum(rs, "process_madvise_calls"), _sum(rs, "process_madvise_failed"), \
            _sum(rs, "ipi_rounds_sent")
        answer = rs[0]["process_madvise_pidfd_self"]
        if calls is None:
            out.append(f"- **{title}**: `process_madvise(PIDFD_SELF)` answers {answer}; the system calls "
                       "were not counted here (no syscall tracepoints or no right to count them).")
            continue
        text = (f"- **{title}**, `wasmtime-batch32`, echo, {top} threads: the kernel answers "
                f"`process_madvise(PIDFD_SELF)` with {answer}; Wasmtime made {calls} such calls, "
                f"{failed} failed, and returned {_sum(rs, 'errors')} errors to its embedder")
        if calls and rounds is not None:
            text += f"; {rounds / calls:.3f} IPI rounds per call"
        text += (f"; {_num(_per_inst(rs, 'shootdowns_per_instantiation'))} shootdowns received per "
                 f"instantiation")
        if dflt:
            text += f" against {_num(_per_inst(dflt, 'shootdowns_per_instantiation'))} with the default configuration"
        if failed and failed == calls:
            text += (". Every batch failed and Wasmtime said nothing: it dropped the slots' memory images "
                     f"and paved the slots over ({_num(_per_inst(rs, 'mmap_calls'), 2)} mmap calls per "
                     "instantiation), so batching saved no shootdown")
        elif calls and not failed and rounds is not None:
            text += (". At most one IPI round per batch" if rounds / calls <= 1.1 else
                     ". More than one IPI round per batch")
        out.append(text + ".")
    return out


def side_by_side_table(doc):
    """pool-adaptive and every Wasmtime configuration, per module and thread count."""
    reps = len(doc["repetitions"])
    ours = _series(doc, "pool_adaptive", OURS)
    head = [f"| module | threads | runtime | instantiations/s ({'mean ± 95% interval, ' + str(reps) + ' runs' if reps > 1 else 'one run'}) "
            "| vs `pool-adaptive` | shootdowns per instantiation | page faults per instantiation |",
            "|---|---|---|---|---|---|---|"]
    for w in sorted(ours, key=lambda k: (k[0] != "echo", k)):
        base = _mean_rate(ours[w])
        label = f"{w[0]} ({doc['dirty_pages']} pages)" if w[0] == "echo" else w[0]
        lines = [("`pool-adaptive` (ours, the default)", ours[w], "page_faults_per_instantiation")]
        for conf in CONFIGS:
            rs = _series(doc, "wasmtime", conf).get(w)
            if rs:
                lines.append((f"Wasmtime `{conf}`", rs, "faults_per_instantiation"))
        for name, rs, faults in lines:
            rate = _mean_rate(rs)
            head.append(f"| {label} | {w[1]} | {name} | {_rate_cell(rs)} | {rate / base:.2f}x | "
                        f"{_num(_per_inst(rs, 'shootdowns_per_instantiation'))} | {_num(_per_inst(rs, faults), 1)} |")
    return "\n".join(head)


def reading_side_by_side(doc, title):
    """Per module at the most threads: pool-adaptive against Wasmtime's fastest configuration."""
    out = []
    ours = _series(doc, "pool_adaptive", OURS)
    top = max(w[1] for w in ours) if ours else None
    for w in sorted((w for w in ours if w[1] == top), key=lambda k: (k[0] != "echo", k)):
        best = None
        for conf in CONFIGS:
            rs = _series(doc, "wasmtime", conf).get(w)
            if rs and (best is None or _mean_rate(rs) > _mean_rate(best[1])):
                best = (conf, rs)
        if not best:
            continue
        (m_o, h_o), (m_w, h_w) = interval([r["instantiations_per_s"] for r in ours[w]]), \
            interval([r["instantiations_per_s"] for r in best[1]])
        text = (f"- **{title}, {w[0]}, {top} threads:** `pool-adaptive` {_fmt(m_o)}/s, Wasmtime's fastest "
                f"configuration here (`{best[0]}`) {_fmt(m_w)}/s: {m_o / m_w:.2f}x")
        if h_o is not None and h_w is not None:
            if abs(m_o - m_w) <= h_o + h_w:
                text += " (the 95% intervals overlap: not told apart by this run)"
            elif m_o < m_w:
                text += f". **Here Wasmtime is faster**, by {100 * (m_w / m_o - 1):.0f}%"
            else:
                text += " (the 95% intervals do not overlap)"
        else:
            text += " (one run; times under emulation are not evidence)"
        out.append(text + ".")
    return out


def section(data):
    """The "Real Wasmtime" section, or nothing where no run wrote its JSON."""
    docs = {k: data.get(f"{k}-real-wasmtime.json") for k, _, _ in RUNS}
    if not any(docs.values()):
        return []
    any_doc = next(d for d in docs.values() if d)
    version = any_doc["repetitions"][0]["wasmtime"][0]["wasmtime_version"]
    out = ["## Real Wasmtime", "",
           f"Wasmtime {version} from crates.io, unmodified (`peers/wasmtime-bench`): the seed's benchmark "
           "(instantiate from an `InstancePre`, call the entry, drop the store, on N threads) under its pooling "
           "allocator in four configurations — the default (one `madvise` per range), "
           "`decommit_batch_size(32)` (its `process_madvise(PIDFD_SELF)` path), plus "
           "`linear_memory_keep_resident`/`table_keep_resident` of 1 MiB, plus `pagemap_scan` — beside the "
           "project's default strategy, `pool-adaptive`, on the same modules (echo with "
           f"{any_doc['dirty_pages']} dirty pages, the WASI programs), threads and time, in the same run "
           "(`peers/wasmtime-bench/side-by-side.py`). Wasmtime's system calls and the IPI rounds its threads "
           "sent are counted exactly by perf on the kernel's tracepoints; shootdowns received are the `TLB` "
           "row of `/proc/interrupts`. The rows named `pool-madvise-each` and `pool-resident-scan` elsewhere "
           "on this page are Wasmtime's policies reimplemented on the project's pool, not Wasmtime.", "",
           "### What each kernel makes of Wasmtime's batch", ""]
    out += reading_kernels(data) + ["", kernel_table(data), ""]
    for key, title, _ in RUNS:
        doc = docs[key]
        if not doc:
            continue
        reps = len(doc["repetitions"])
        out += [f"### {title}: Wasmtime beside `pool-adaptive`", ""]
        m = data.get(f"{key}-machine.json")
        if m:
            out += [f"CPU {m['cpu']}, {m['cores']} CPUs, {m['memory_gib']} GiB, {m['kernel']}.", ""]
        if key != "host":
            out += ["Under QEMU TCG: the counts are exact, the times are not evidence of speed.", ""]
        elif reps > 1:
            out += [f"{reps} runs, alternating Wasmtime and `pool-adaptive`; the interval is Student's t over "
                    "the runs' rates.", ""]
        out += reading_side_by_side(doc, title) + ["", side_by_side_table(doc), ""]
    return out


def losses(data):
    """Where real Wasmtime beats pool-adaptive beyond the intervals (host)."""
    doc = data.get("host-real-wasmtime.json")
    if not doc:
        return []
    return [line for line in reading_side_by_side(doc, "Development host") if "Wasmtime is faster" in line]
