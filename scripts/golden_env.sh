#!/bin/sh
# Builds .cache/venv-golden, the environment of scripts/make_golden.py:
# Debian's python3-torch (CPU, 1.13) + transformers 4.40 from PyPI, pinned in
# scripts/requirements-golden.txt. Usage (from the repository root):
#
#   scripts/golden_env.sh                      # needs root for apt-get, or torch already there
#   .cache/venv-golden/bin/python scripts/make_golden.py
set -eu
cd "$(dirname "$0")/.."
VENV=.cache/venv-golden
PY=/usr/bin/python3

if ! $PY -c 'import torch' 2>/dev/null; then
    if [ "$(id -u)" = 0 ]; then
        apt-get install -y python3-torch || { apt-get update && apt-get install -y python3-torch; }
    else
        echo "golden_env: $PY has no torch; run: sudo apt-get install -y python3-torch" >&2
        exit 1
    fi
fi
[ -x $VENV/bin/python ] || $PY -m venv --system-site-packages $VENV
$VENV/bin/pip install -q -r scripts/requirements-golden.txt
$VENV/bin/python -c 'import torch, transformers, tokenizers, numpy; print("golden_env: torch", torch.__version__, "transformers", transformers.__version__, "tokenizers", tokenizers.__version__, "numpy", numpy.__version__)'
