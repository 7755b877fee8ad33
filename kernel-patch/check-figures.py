#!/usr/bin/env python3
"""Every measured figure in the series' text comes from docs/results/data.

Reads kernel-patch/figures.json and checks each patch of both series (the
cover letters and the commit messages; not the diffs):

 1. every figure listed for a patch appears in it (on the line of its
    "label", as its "column"-th figure there if one is given, or inside
    its "context", whitespace aside), and equals the
    value its query computes from the JSON it names, formatted as listed;
 2. every figure-like token in the patch's text (a decimal, a number with
    a thousands separator, a number with a time, rate or ratio unit, or
    one like "110k") is either such a figure or listed under "not_figures"
    with the reason it is not a measurement (a test's size, a constant, a
    quoted report with its source).

Usage: kernel-patch/check-figures.py [MANIFEST [DATA_DIR]]
Exit 0 when both hold for every patch, 1 otherwise (one line per problem).
"""

import glob
import json
import os
import re
import statistics
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
TIME = r"(?: ?(?:ns|us|µs|ms|s|/s|k/s)|x|×|%|k)"
FIGURE = re.compile(r"(?<![\w.,-])(?:(?:\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+\.\d+)" + TIME + r"?|\d+" + TIME +
                    r")(?![\w.]\d|[\w])")
AGG = {"one": None, "median": statistics.median, "min": min, "max": max}


def patch_text(path):
    """The prose of a patch: its message after the mail headers, up to the
    diffstat (or, in a cover letter, the shortlog); Link: tags dropped."""
    lines = open(path, encoding="utf-8").read().split("\n")
    start = lines.index("") + 1 if "" in lines else 0
    out = []
    for line in lines[start:]:
        if line == "---" or re.match(r"^\S.* \(\d+\):$", line):
            break
        if line.startswith("Link: ") or line.startswith("Signed-off-by: "):
            continue
        out.append(line)
    return "\n".join(out)


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


def check(manifest_path, data_dir):
    manifest = json.load(open(manifest_path))
    problems = []
    patches = sorted(glob.glob(os.path.join(HERE, "*.patch")) + glob.glob(os.path.join(HERE, "6.1", "*.patch")))
    for path in patches:
        name = os.path.relpath(path, HERE)
        text = patch_text(path)
        entry = manifest["patches"].get(name, {})
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
        allowed = set(covered) | set(entry.get("not_figures", {})) | set(manifest.get("not_figures", {}))
        for m in FIGURE.finditer(text):
            tok = m.group(0)
            if tok not in allowed:
                line = text[:m.start()].count("\n") + 1
                problems.append(f"{name}: line {line} of the text: {tok!r} is neither a recorded figure "
                                f"nor listed as not one in {os.path.basename(manifest_path)}")
    for p in problems:
        print(f"check-figures: {p}")
    return 1 if problems else 0


if __name__ == "__main__":
    manifest = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "figures.json")
    data = sys.argv[2] if len(sys.argv) > 2 else os.path.join(HERE, "..", "docs", "results", "data")
    sys.exit(check(manifest, data))
