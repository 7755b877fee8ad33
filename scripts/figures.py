"""Figures in prose held to the recorded JSON: the shared half of
kernel-patch/check-figures.py (the series' text) and
scripts/check-prose-figures.py (the READMEs).

A manifest entry for one text lists its figures, each with where it is
("label": on the one line holding that label, optionally as its
"column"-th figure there; "context": inside that passage) and the JSON
query that gives it ("query": "file" and "path" in docs/results/data,
"agg" over several values, or "ratio" of two queries; "scale"; "format"),
and its "not_figures": tokens that look like figures but are not
measurements, each with the reason.
"""

import json
import os
import re
import statistics

TIME = r"(?: ?(?:ns|us|µs|ms|s|/s|k/s)|x|×|%|k)"
# A decimal, a number with a thousands separator, or a number with a time,
# rate or ratio unit (or "110k").
FIGURE = re.compile(r"(?<![\w.,-])(?:(?:\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+\.\d+)" + TIME + r"?|\d+" + TIME +
                    r")(?![\w.]\d|[\w])")
AGG = {"one": None, "median": statistics.median, "min": min, "max": max}


def walk(node, steps):
    """The values under node along steps: a key, an index, "*" for every
    element of a list, or a dict that keeps the list elements matching it."""
    nodes = [node]
    for step in steps:
        nxt = []
        for n in nodes:
            if step == "*":
                nxt.extend(n)
            elif isinstance(step, dict):
                nxt.extend(x for x in n if all(x.get(k) == v for k, v in step.items()))
            else:
                nxt.append(n[step])
        nodes = nxt
    return nodes


def value(query, data_dir):
    if "ratio" in query:
        a, b = (value(q, data_dir) for q in query["ratio"])
        return a / b
    with open(os.path.join(data_dir, query["file"])) as f:
        doc = json.load(f)
    vals = walk(doc, query["path"])
    agg = query.get("agg", "one")
    if agg == "one":
        if len(vals) != 1:
            raise ValueError(f"{query['file']} {query['path']}: {len(vals)} values, expected one")
        return vals[0]
    if not vals:
        raise ValueError(f"{query['file']} {query['path']}: no values")
    return AGG[agg](vals)


def check_text(name, text, entry, allowed, data_dir, manifest_name):
    """Problems with @text (called @name): each of @entry's figures must be
    where it says and equal its query's value; every other figure-like
    token must be in @entry's not_figures or in @allowed."""
    problems = []
    covered = set()
    for fig in entry.get("figures", []):
        shown = fig["text"]
        where = text
        if "label" in fig:
            lines = [ln for ln in text.split("\n") if fig["label"] in ln]
            if len(lines) != 1:
                problems.append(f"{name}: label {fig['label']!r} is on {len(lines)} lines, expected one")
                continue
            where = lines[0][lines[0].index(fig["label"]) + len(fig["label"]):]
            if "column" in fig:
                cols = [m.group(0) for m in FIGURE.finditer(where)]
                if fig["column"] >= len(cols) or cols[fig["column"]] != shown:
                    problems.append(f"{name}: {shown!r} is not figure {fig['column']} on the line of "
                                    f"{fig['label']!r} ({cols})")
                    continue
            elif not re.search(r"(?<![\w.,])" + re.escape(shown) + r"(?![\w,]|\.\d)", where):
                problems.append(f"{name}: {shown!r} not on the line of {fig['label']!r}")
                continue
        elif "context" in fig:
            ctx = " ".join(fig["context"].split())
            if shown not in ctx or ctx not in " ".join(text.split()):
                problems.append(f"{name}: {fig['context']!r} (with {shown!r}) is not in the text")
                continue
        elif shown not in where:
            problems.append(f"{name}: {shown!r} is not in the text")
            continue
        try:
            got = fig["format"].format(value(fig["query"], data_dir) * fig.get("scale", 1))
        except (KeyError, IndexError, TypeError, ValueError, OSError) as e:
            problems.append(f"{name}: {shown!r}: {e}")
            continue
        if got != shown:
            problems.append(f"{name}: the text says {shown!r}, the data gives {got!r} "
                            f"({fig['query'].get('file', 'ratio')})")
        covered.add(shown)
    ok = covered | set(entry.get("not_figures", {})) | set(allowed)
    for m in FIGURE.finditer(text):
        tok = m.group(0)
        if tok not in ok:
            line = text[:m.start()].count("\n") + 1
            problems.append(f"{name}: line {line} of the text: {tok!r} is neither a recorded figure "
                            f"nor listed as not one in {manifest_name}")
    return problems
