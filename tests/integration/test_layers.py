"""scripts/check_layers.py: the repository has no upward include, and the
checker does find one (kernels/ reaching engine/, tokenizer/ reaching
server/) in a copy of a layout that has them."""
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CHECK = os.path.join(ROOT, "scripts", "check_layers.py")


def run(root):
    return subprocess.run([sys.executable, CHECK, root], capture_output=True, text=True)


def test_repository_has_no_upward_include():
    r = run(ROOT)
    assert r.returncode == 0, r.stdout
    assert "0 upward" in r.stderr


def write(root, rel, text):
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)


def test_upward_includes_are_reported(tmp_path):
    write(tmp_path, "common/util.h", "")
    write(tmp_path, "engine/engine.h", '#include "util.h"\n')
    write(tmp_path, "server/server.h", "")
    write(tmp_path, "kernels/cpu/cpu_backend.c", '#include "util.h"\n#include "engine.h"\n')
    write(tmp_path, "tokenizer/stop.c", '#include "server.h"\n#include <stdio.h>\n')
    write(tmp_path, "tools/llm_x.c", '#include "server.h"\n#include "engine.h"\n')
    r = run(str(tmp_path))
    assert r.returncode == 1
    lines = sorted(r.stdout.splitlines())
    assert len(lines) == 2, r.stdout
    assert lines[0].startswith('kernels/cpu/cpu_backend.c: includes "engine.h" (engine/)')
    assert lines[1].startswith('tokenizer/stop.c: includes "server.h" (server/)')
