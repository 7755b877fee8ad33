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
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "scripts"))
from figures import check_text  # noqa: E402


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


def check(manifest_path, data_dir):
    manifest = json.load(open(manifest_path))
    problems = []
    patches = sorted(glob.glob(os.path.join(HERE, "*.patch")) + glob.glob(os.path.join(HERE, "6.1", "*.patch")))
    for path in patches:
        name = os.path.relpath(path, HERE)
        text = patch_text(path)
        problems += check_text(name, text, manifest["patches"].get(name, {}), manifest.get("not_figures", {}),
                               data_dir, os.path.basename(manifest_path))
    for p in problems:
        print(f"check-figures: {p}")
    return 1 if problems else 0


if __name__ == "__main__":
    manifest = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "figures.json")
    data = sys.argv[2] if len(sys.argv) > 2 else os.path.join(HERE, "..", "docs", "results", "data")
    sys.exit(check(manifest, data))
