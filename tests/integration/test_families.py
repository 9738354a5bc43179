"""The family fixtures (tests/fixtures/families/, transformers' tiny models)
through the command-line tools: the KV cache dtype follows the checkpoint and
the start-up log says so, --kv-cache-dtype overrides it (and bench_engine's
memory plan names it), and llm_generate's raw logits of a sliding-window model
match transformers' at every position of a 61-token prompt."""

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = ROOT / "build" / "bin"
FAM = ROOT / "tests" / "fixtures" / "families"
ENGINE = ["--kv-cache-memory", "16MiB", "--device", "cpu"]


def generate(model, *args):
    p = subprocess.run([str(BIN / "llm_generate"), "--model", str(model), *args], capture_output=True,
                       text=True, timeout=120)
    return p


@pytest.mark.parametrize("fixture,flag,want", [
    ("mistral_window8/bf16", None, "bf16 K/V (auto: the model's dtype)"),
    ("mistral_window8/f16", None, "fp16 K/V (auto: the model's dtype)"),
    ("qwen2_window/bf16", "fp16", "fp16 K/V (--kv-cache-dtype)"),
    ("qwen2_window/f16", "bf16", "bf16 K/V (--kv-cache-dtype)"),
    ("qwen2_window/bf16", "fp8", "fp8 K/V (--kv-cache-dtype)"),
])
def test_kv_cache_dtype_in_startup_log(fixture, flag, want):
    extra = ["--kv-cache-dtype", flag] if flag else []
    p = generate(FAM / fixture, "--prompt", "Once upon a time", "--max-tokens", "4",
                 "--temperature", "0", *ENGINE, *extra)
    assert p.returncode == 0, p.stderr
    assert want in p.stderr, p.stderr


def test_kv_cache_dtype_rejects_other_types():
    p = generate(FAM / "llama_gqa/bf16", "--prompt", "x", "--kv-cache-dtype", "fp8_e5m2", *ENGINE)
    assert p.returncode != 0
    assert "--kv-cache-dtype must be auto, fp16, bf16 or fp8 (fp8_e4m3) (got 'fp8_e5m2')" in p.stderr


@pytest.mark.parametrize("flag,want,size", [(None, "bf16", 2), ("fp16", "fp16", 2), ("fp8", "fp8", 1)])
def test_bench_engine_memory_plan_names_kv_dtype(flag, want, size):
    extra = ["--kv-cache-dtype", flag] if flag else []
    p = subprocess.run([str(BIN / "bench_engine"), "memory", "--model", str(FAM / "qwen3_tied/bf16"),
                        "--device-memory", "1GiB", "--dry-run", *extra],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    line = next(x for x in p.stdout.splitlines() if x.startswith("KV per token"))
    # 2 layers x 2 kv heads x 32 x 2 (K, V) x 2 bytes (fp8: 1)
    assert line.startswith(f"KV per token {256 * size} bytes") and f"x {size} bytes, {want})" in line, line


def test_sliding_window_logits_match_transformers(tmp_path):
    golden = json.loads((FAM / "mistral_window8" / "golden.json").read_text())
    prompt = next(p for p in golden["prompts"] if p["n_tokens"] == 61)
    ids = tmp_path / "ids.txt"
    ids.write_text(" ".join(map(str, prompt["ids"])) + "\n")
    for dtype, rel in (("bf16", 2.5e-2), ("f16", 3e-3)):  # family_golden.c's bounds
        out = tmp_path / f"logits_{dtype}.f32"
        p = generate(FAM / "mistral_window8" / dtype, "--prompt-ids", str(ids), "--logits-out",
                     str(out), *ENGINE)
        assert p.returncode == 0, p.stderr
        got = np.fromfile(out, dtype="<f4").reshape(61, golden["vocab_size"])
        want = np.fromfile(FAM / "mistral_window8" / prompt["logits_file"],
                           dtype="<f2").astype(np.float32).reshape(got.shape)
        diff = np.abs(got - want).max(axis=1)
        assert (diff <= rel * np.abs(want).max()).all(), (dtype, diff.max(), diff.argmax())
        # past the window (position 8 on) too, not only before it
        assert (got.argmax(1)[8:] == want.argmax(1)[8:]).mean() >= 0.95
