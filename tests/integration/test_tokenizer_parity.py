"""Token-for-token parity of build/bin/llm_tokenize with the `tokenizers`
package (the reference, pinned in scripts/requirements.txt) on real tokenizers:
the default model's (SmolLM2, when `make model` has run) and the three in
../shared/tokenizers. The corpus is tests/fixtures/tokenizer/corpus.json.

One llm_tokenize process handles the whole corpus per check (--json: one JSON
input and one JSON result per line).
"""

import json
import subprocess
from pathlib import Path

import pytest

tokenizers = pytest.importorskip("tokenizers")

ROOT = Path(__file__).resolve().parents[2]
BIN = ROOT / "build" / "bin" / "llm_tokenize"
CORPUS = json.loads((ROOT / "tests" / "fixtures" / "tokenizer" / "corpus.json").read_text())

# Relative to the repository root, as the tests run from there.
TOKENIZERS = {
    "smollm2": "models/SmolLM2-135M-Instruct/tokenizer.json",
    "llama3": "../shared/tokenizers/llama3/tokenizer.json",
    "qwen3": "../shared/tokenizers/qwen3/tokenizer.json",
    "llama2-spm": "../shared/tokenizers/llama2-spm/tokenizer.json",
}


def run_json(path, lines, *flags):
    """Runs llm_tokenize --json over lines; returns one parsed result per line."""
    if not BIN.exists():
        pytest.skip("build/bin/llm_tokenize is not built (run make)")
    proc = subprocess.run([str(BIN), "--model", path, "--json", *flags],
                          input="".join(line + "\n" for line in lines).encode(),
                          capture_output=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    # Strict UTF-8: a piece with a broken sequence fails here. Split on \n
    # only: decoded text may hold U+2028 and friends.
    out = proc.stdout.decode("utf-8").split("\n")
    assert out[-1] == ""
    assert len(out) - 1 == len(lines)
    return [json.loads(line) for line in out[:-1]]


@pytest.fixture(scope="module", params=list(TOKENIZERS))
def tok(request):
    path = TOKENIZERS[request.param]
    if not (ROOT / path).exists():
        pytest.skip(f"{path} is missing" + (" (run 'make model')" if "models/" in path else ""))
    ref = tokenizers.Tokenizer.from_file(str(ROOT / path))
    return request.param, path, ref


def report(name, what, mismatches):
    lines = [f"{name} {what}: {len(mismatches)}/{len(CORPUS)} corpus lines differ"]
    for text, want, got in mismatches[:5]:
        lines.append(f"  {text[:60]!r}\n    want {str(want)[:200]}\n    got  {str(got)[:200]}")
    return "\n".join(lines)


@pytest.mark.parametrize("special", [True, False], ids=["special", "no_special"])
def test_encode_matches_reference(tok, special):
    name, path, ref = tok
    got = run_json(path, [json.dumps(s) for s in CORPUS], *([] if special else ["--no-special"]))
    want = [e.ids for e in ref.encode_batch(CORPUS, add_special_tokens=special)]
    bad = [(s, w, g) for s, w, g in zip(CORPUS, want, got) if w != g]
    assert not bad, report(name, f"encode special={special}", bad)


@pytest.mark.parametrize("skip", [False, True], ids=["keep_special", "skip_special"])
def test_decode_matches_reference(tok, skip):
    name, path, ref = tok
    ids = [e.ids for e in ref.encode_batch(CORPUS, add_special_tokens=True)]
    flags = ["--decode"] + (["--skip-special"] if skip else [])
    got = run_json(path, [json.dumps(i) for i in ids], *flags)
    want = ref.decode_batch(ids, skip_special_tokens=skip)
    bad = [(s, w, g) for s, w, g in zip(CORPUS, want, got) if w != g]
    assert not bad, report(name, f"decode skip_special={skip}", bad)


@pytest.mark.parametrize("skip", [False, True], ids=["keep_special", "skip_special"])
def test_stream_matches_whole_decode(tok, skip):
    """Streamed pieces concatenate to the whole decode; none is broken UTF-8."""
    name, path, ref = tok
    ids = [e.ids for e in ref.encode_batch(CORPUS, add_special_tokens=True)]
    flags = ["--decode", "--stream"] + (["--skip-special"] if skip else [])
    pieces = run_json(path, [json.dumps(i) for i in ids], *flags)
    want = ref.decode_batch(ids, skip_special_tokens=skip)
    bad = [(s, w, p) for s, w, p in zip(CORPUS, want, pieces) if "".join(p) != w]
    assert not bad, report(name, f"stream skip_special={skip}", bad)
    assert all(p for line in pieces for p in line), "a stream emitted an empty piece"


def test_round_trip_where_reference_does(tok):
    name, path, ref = tok
    ids = [e.ids for e in ref.encode_batch(CORPUS, add_special_tokens=False)]
    got = run_json(path, [json.dumps(i) for i in ids], "--decode")
    trips = [s for s, i in zip(CORPUS, ids) if ref.decode(i, skip_special_tokens=False) == s]
    assert trips, "the reference round-trips nothing"
    bad = [(s, s, g) for s, i, g in zip(CORPUS, ids, got)
           if ref.decode(i, skip_special_tokens=False) == s and g != s]
    assert not bad, report(name, "decode(encode(x)) == x", bad)


def test_plain_mode_and_file_or_dir(tok):
    """Plain stdin/stdout mode; --model takes the directory or the file."""
    name, path, ref = tok
    text = "Hello <|im_start|> world 123\n日本語"
    for model in (path, str(Path(path).parent)):
        proc = subprocess.run([str(BIN), "--model", model], input=text.encode(),
                              capture_output=True, cwd=ROOT, timeout=60)
        assert proc.returncode == 0, proc.stderr.decode()
        assert [int(x) for x in proc.stdout.split()] == ref.encode(text).ids
    ids = " ".join(map(str, ref.encode(text).ids))
    proc = subprocess.run([str(BIN), "--model", path, "--decode"], input=ids.encode(),
                          capture_output=True, cwd=ROOT, timeout=60)
    assert proc.returncode == 0, proc.stderr.decode()
    assert proc.stdout.decode() == ref.decode(ref.encode(text).ids, skip_special_tokens=False)
