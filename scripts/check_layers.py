#!/usr/bin/env python3
"""Fails when a source file includes a header of a layer above its own.

Folders are layers (README "Layout"): common/ (0) includes nothing of ours;
kernels/ and tokenizer/ (1) see common/; engine/ (2) sees kernels/ and common/;
server/ and bench/ (3) see every layer below; tools/ (the mains) and tests/
see everything. Each `#include "..."` is resolved as the compiler resolves it
(the including file's folder first, then the folder's include path) and its
folder checked against the including file's allowed set.

    scripts/check_layers.py [ROOT]   # prints each upward include; exit 1 if any
"""
import os
import re
import sys

ROOT = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# folder -> the folders it may include from (its include path, in order)
ALLOWED = {
    "common": ["common"],
    "kernels": ["common", "kernels"],
    "tokenizer": ["common", "tokenizer"],
    "engine": ["common", "kernels", "engine"],
    "server": ["common", "kernels", "tokenizer", "engine", "server"],
    "bench": ["common", "kernels", "tokenizer", "engine", "bench"],
    "tools": ["common", "kernels", "tokenizer", "engine", "server", "bench"],
}
EVERY = ["common", "kernels", "tokenizer", "engine", "server", "bench", "tools", "tests"]
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"', re.M)
SOURCE = (".c", ".h", ".cu", ".cuh")


def resolve(name, here, search):
    """The path an include names, or None (a system or generated header)."""
    for d in [here] + [os.path.join(ROOT, s) for s in search]:
        p = os.path.normpath(os.path.join(d, name))
        if os.path.isfile(p):
            return p
    return None


def main():
    bad = 0
    checked = 0
    for layer, search in ALLOWED.items():
        for dirpath, _, files in os.walk(os.path.join(ROOT, layer)):
            for f in sorted(files):
                if not f.endswith(SOURCE):
                    continue
                path = os.path.join(dirpath, f)
                text = open(path, encoding="utf-8", errors="replace").read()
                for name in INCLUDE.findall(text):
                    checked += 1
                    # what the file would reach if every folder were visible
                    target = resolve(name, dirpath, EVERY)
                    if target is None:
                        continue
                    top = os.path.relpath(target, ROOT).split(os.sep)[0]
                    if top not in search:
                        rel = os.path.relpath(path, ROOT)
                        print(f"{rel}: includes \"{name}\" ({top}/), above its layer "
                              f"({layer}/ may include {', '.join(search)})")
                        bad += 1
    print(f"check_layers: {checked} includes checked, {bad} upward", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
