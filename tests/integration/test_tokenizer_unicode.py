"""The generated Unicode tables (tokenizer/unicode_tables.c) against the
reference: every code point Debian's unicode-data assigns (the big ranges,
CJK and Hangul, sampled), each in a few contexts that exercise \\p{L}, \\p{N},
\\s and the contractions, encoded by Llama-3's tokenizer (its regex alone) and
Qwen3's (NFC first) must give the reference's tokens.

Code points assigned only in Unicode 15.1 and 16.0 are left out: Debian's
package (15.0) does not know them, the reference's regex engine does. See
tokenizer/unicode.h.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

tokenizers = pytest.importorskip("tokenizers")

ROOT = Path(__file__).resolve().parents[2]
BIN = ROOT / "build" / "bin" / "llm_tokenize"
UCD = Path("/usr/share/unicode/UnicodeData.txt")
RANGE_STEP = 37  # sample of the First..Last ranges (CJK, Hangul, Tangut, ...)


def assigned_code_points():
    cps, first = [], None
    for line in UCD.read_text().splitlines():
        f = line.split(";")
        cp = int(f[0], 16)
        if f[1].endswith(", First>"):
            first = cp
        elif f[1].endswith(", Last>"):
            cps += range(first, cp + 1, RANGE_STEP)
        else:
            cps.append(cp)
    return [c for c in cps if c and not 0xD800 <= c < 0xE000]


@pytest.mark.parametrize("name", ["llama3", "qwen3"])
def test_every_code_point_tokenizes_like_the_reference(name):
    if not UCD.exists():
        pytest.skip("Debian's unicode-data is not installed")
    path = ROOT / ".." / "shared" / "tokenizers" / name / "tokenizer.json"
    if not path.exists():
        pytest.skip(f"{path} is missing")
    if not BIN.exists():
        pytest.skip("build/bin/llm_tokenize is not built (run make)")
    lines = [f"a{c}1 {c}{c}\n{c} '{c}x {c}" for c in map(chr, assigned_code_points())]
    ref = tokenizers.Tokenizer.from_file(str(path))
    want = [e.ids for e in ref.encode_batch(lines, add_special_tokens=False)]
    proc = subprocess.run([str(BIN), "--model", str(path), "--json", "--no-special"],
                          input="".join(json.dumps(s) + "\n" for s in lines).encode(),
                          capture_output=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    got = [json.loads(line) for line in proc.stdout.decode().split("\n")[:-1]]
    assert len(got) == len(lines)
    bad = [f"U+{ord(s[1]):04X}: want {w} got {g}" for s, w, g in zip(lines, want, got) if w != g]
    assert not bad, f"{len(bad)} of {len(lines)} code points differ:\n" + "\n".join(bad[:20])


def test_tables_are_what_the_generator_writes():
    if not UCD.exists():
        pytest.skip("Debian's unicode-data is not installed")
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "gen_unicode_tables.py")],
                          capture_output=True, timeout=120)
    assert proc.returncode == 0, proc.stderr.decode()
    assert proc.stdout.decode() == (ROOT / "tokenizer" / "unicode_tables.c").read_text(), \
        "tokenizer/unicode_tables.c is stale: rerun scripts/gen_unicode_tables.py"
