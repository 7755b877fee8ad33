#!/usr/bin/env python3
"""Every measured figure in the project's prose comes from docs/results/data.

Reads docs/prose-figures.json and checks every Markdown file of the
project (outside build directories) that it does not set aside with a
reason: outside the blocks results.py generates (results.readme_figures_from_data
holds those to the JSON), each figure-like token (a decimal, a number with
a thousands separator, a number with a time, rate or ratio unit) must be a
figure the manifest lists with the JSON query that gives it, or be listed
as not a measurement with the reason (a kernel version, a run's length set
by the Makefile, a threshold a checker applies).

Usage: scripts/check-prose-figures.py [TOP [MANIFEST [DATA_DIR]]]
Exit 0 when every file passes, 1 otherwise (one line per problem).
"""

import json
import os
import re
import sys

from figures import check_text
from results_prose import BLOCK

HERE = os.path.dirname(os.path.abspath(__file__))


def markdown_files(top):
    for root, dirs, files in os.walk(top):
        dirs[:] = sorted(d for d in dirs if not d.startswith((".", "build", "target", "__pycache__")))
        for f in sorted(files):
            if f.endswith(".md"):
                yield os.path.relpath(os.path.join(root, f), top)


def check(top, manifest_path, data_dir):
    manifest = json.load(open(manifest_path))
    name = os.path.basename(manifest_path)
    problems = []
    seen = set()
    for path in markdown_files(top):
        seen.add(path)
        if path in manifest["set_aside"]:
            continue
        if path not in manifest["files"]:
            problems.append(f"{path}: neither checked nor set aside in {name}")
            continue
        text = BLOCK.sub(lambda m: m.group(1) + m.group(4), open(os.path.join(top, path), encoding="utf-8").read())
        problems += check_text(path, text, manifest["files"][path], manifest["not_figures"], data_dir, name)
    for path in sorted(set(manifest["files"]) | set(manifest["set_aside"])):
        if path not in seen:
            problems.append(f"{path}: in {name} but not in the tree")
    for p in problems:
        print(f"check-prose-figures: {p}")
    return 1 if problems else 0


if __name__ == "__main__":
    top = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..")
    manifest = sys.argv[2] if len(sys.argv) > 2 else os.path.join(top, "docs", "prose-figures.json")
    data = sys.argv[3] if len(sys.argv) > 3 else os.path.join(top, "docs", "results", "data")
    sys.exit(check(top, manifest, data))
