"""llm_generate end to end on the default model: the chat answer makes sense,
batched prompts give the same greedy text as single ones, stop strings cut at
the right byte, bad input is a one-line error with a non-zero exit."""

import json
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = ROOT / "build" / "bin" / "llm_generate"
MODEL = ROOT / "models" / "SmolLM2-135M-Instruct"
ENGINE = ["--kv-cache-memory", "128MiB", "--temperature", "0", "--device", "cpu"]

pytestmark = pytest.mark.skipif(not (MODEL / ".complete").exists(), reason="default model absent: make model")


def run(*args, check=True):
    p = subprocess.run([str(BIN), "--model", str(MODEL), *args], capture_output=True, text=True, timeout=300)
    if check:
        assert p.returncode == 0, p.stderr
    return p


def test_chat_answer_mentions_paris():
    p = run("--chat", "--prompt", "What is the capital of France?", "--max-tokens", "24", *ENGINE)
    assert "Paris" in p.stdout
    assert "time to first token" in p.stderr and "tokens/s" in p.stderr


def test_prompts_file_matches_single_prompts(tmp_path):
    prompts = ["The capital of France is", "Once upon a time", "def add(a, b):"]
    f = tmp_path / "prompts.txt"
    f.write_text("\n".join(prompts) + "\n")
    p = run("--prompts-file", str(f), "--jsonl", "--max-tokens", "12", "--ignore-eos", *ENGINE)
    rows = [json.loads(line) for line in p.stdout.splitlines()]
    assert [r["prompt"] for r in rows] == prompts
    for r in rows:
        single = run("--prompt", r["prompt"], "--max-tokens", "12", "--ignore-eos", *ENGINE)
        assert single.stdout.rstrip("\n") == r["text"]
        assert r["generated_tokens"] == 12 and r["finish_reason"] == "length"


def test_stop_string_is_not_emitted():
    full = run("--prompt", "The capital of France is", "--max-tokens", "8", "--ignore-eos", *ENGINE).stdout
    assert "Paris" in full
    cut = run("--prompt", "The capital of France is", "--max-tokens", "8", "--ignore-eos", "--stop", "is.",
              "--stop", "aris", *ENGINE).stdout.rstrip("\n")
    assert cut == full[: full.index("aris")]


def test_seeded_sampling_is_reproducible():
    args = ("--prompt", "Tell me a story.", "--max-tokens", "16", "--temperature", "0.9", "--seed", "7",
            "--kv-cache-memory", "128MiB")
    assert run(*args).stdout == run(*args).stdout


@pytest.mark.parametrize("args,needle", [
    (["--prompt", "hi", "--top-p", "2"], "top_p"),
    (["--prompt", "hi", "--max-tokens", "abc"], "not a number"),
    (["--prompt", "hi", "--device", "tpu"], "unknown device"),
    (["--prompt", "hi", "--kv-cache-memory", "lots"], "byte count"),
])
def test_bad_flags_are_one_line_errors(args, needle):
    p = run(*args, check=False)
    assert p.returncode != 0
    assert needle in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1


def test_missing_model_dir():
    p = subprocess.run([str(BIN), "--model", "/nonexistent/model", "--prompt", "hi"], capture_output=True,
                       text=True, timeout=60)
    assert p.returncode != 0
    assert "/nonexistent/model" in p.stderr


def test_every_simd_version_gives_the_same_text():
    """The CPU's SIMD versions (LLM_CPU_SIMD) add in one order: the same greedy
    text, token for token, from AVX-512, AVX2 and plain C on this CPU; an
    unknown name is a one-line error."""
    import os

    args = ("--prompt", "The three primary colors are", "--max-tokens", "16", "--ignore-eos", *ENGINE)
    texts = {}
    for simd in ("", "avx2", "generic", "avx512"):
        p = subprocess.run([str(BIN), "--model", str(MODEL), *args], capture_output=True, text=True,
                           timeout=300, env=dict(os.environ, LLM_CPU_SIMD=simd))
        if simd and "no such SIMD version" in p.stderr:
            continue  # this CPU lacks it
        assert p.returncode == 0, p.stderr
        texts[simd or "default"] = p.stdout
    assert "generic" in texts and len(texts) >= 2, texts
    assert len(set(texts.values())) == 1, texts
    p = subprocess.run([str(BIN), "--model", str(MODEL), *args], capture_output=True, text=True, timeout=300,
                       env=dict(os.environ, LLM_CPU_SIMD="avx1024"))
    assert p.returncode != 0 and "LLM_CPU_SIMD=avx1024" in p.stderr and len(p.stderr.strip().splitlines()) == 1
