#!/usr/bin/env python3
"""Lists the functions longer than a limit (default 120 lines) in the C and
CUDA sources of the library, the tools and the tests; exits 1 when any is.

A function is a line at column 0 that ends with "{" and is not a type, an
initializer or a preprocessor line, up to the next "}" at column 0. Generated
tables (tokenizer/unicode_tables.c) are not code and are skipped.

    scripts/check_function_length.py [--limit N] [ROOT]
"""
import os
import re
import sys

DIRS = ["common", "kernels", "tokenizer", "engine", "server", "bench", "tools", "tests"]
SKIP = {os.path.join("tokenizer", "unicode_tables.c")}
NOT_FUNCTION = re.compile(r"^(typedef|struct|union|enum|static const|const|#)|=\s*\{$")


def functions(path):
    lines = open(path, encoding="utf-8", errors="replace").read().split("\n")
    start = name = None
    for i, line in enumerate(lines):
        if start is None:
            if line[:1].isalpha() and line.rstrip().endswith("{") and "(" in line \
                    and not NOT_FUNCTION.search(line):
                start = i
                m = re.search(r"([A-Za-z_]\w*)\s*\(", line)
                name = m.group(1) if m else "?"
            elif line[:1].isalpha() and "(" in line and not line.rstrip().endswith(";") \
                    and not NOT_FUNCTION.search(line):
                # a signature over several lines: its "{" ends a later line
                for j in range(i + 1, min(i + 6, len(lines))):
                    if lines[j].rstrip().endswith("{") and not lines[j][:1].isalpha():
                        start = i
                        m = re.search(r"([A-Za-z_]\w*)\s*\(", line)
                        name = m.group(1) if m else "?"
                        break
                    if lines[j].rstrip().endswith(";"):
                        break
        elif line.startswith("}"):
            yield name, start + 1, i - start + 1
            start = None


def main():
    args = sys.argv[1:]
    limit = 120
    if args[:1] == ["--limit"]:
        limit = int(args[1])
        args = args[2:]
    root = args[0] if args else os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    long = []
    for d in DIRS:
        for dirpath, _, files in os.walk(os.path.join(root, d)):
            for f in sorted(files):
                rel = os.path.relpath(os.path.join(dirpath, f), root)
                if not f.endswith((".c", ".cu", ".cpp")) or rel in SKIP:
                    continue
                for name, line, n in functions(os.path.join(dirpath, f)):
                    if n > limit:
                        long.append((n, rel, line, name))
    for n, rel, line, name in sorted(long, reverse=True):
        print(f"{rel}:{line}: {name}() is {n} lines (limit {limit})")
    print(f"check_function_length: {len(long)} functions over {limit} lines", file=sys.stderr)
    return 1 if long else 0


if __name__ == "__main__":
    sys.exit(main())
