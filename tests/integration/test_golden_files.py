"""The committed golden references in tests/golden (scripts/make_golden.py).

Cheap checks that need no torch: the files are there and consistent with one
another (sizes, argmax of the stored logits = first greedy token, golden.txt =
golden.json), and, when the default model directory exists, that they still
belong to it: same model.safetensors, the `tokenizers` package encodes the
prompts to the recorded ids, the chat template renders the recorded text, and the
numpy reference forward pass (scripts/reference_forward.py) reproduces the
recorded last-position logits.
"""

import hashlib
import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "golden"
SCRIPTS = ROOT / "scripts"

with open(GOLDEN / "golden.json", encoding="utf-8") as _f:
    META = json.load(_f)
PROMPTS = META["prompts"]
VOCAB = META["model"]["vocab_size"]
MODEL = ROOT / META["model"]["dir"]
EOS = META["model"]["eos_token_id"]
NAMES = [p["name"] for p in PROMPTS]

needs_model = pytest.mark.skipif(not (MODEL / ".complete").exists(),
                                 reason=f"no {META['model']['dir']}/.complete: run 'make model'")


def by_kind(kind):
    return [p for p in PROMPTS if p["kind"] == kind]


def load_f32(name, shape):
    path = GOLDEN / name
    n = math.prod(shape)
    assert path.stat().st_size == 4 * n, f"{name}: {path.stat().st_size} bytes, want {4 * n}"
    return np.fromfile(path, dtype="<f4").reshape(shape)


def test_metadata():
    assert META["format_version"] == 1
    for lib in ("transformers", "torch", "numpy", "tokenizers"):
        assert META["library"][lib]
    assert len(META["model"]["sha256"]["model.safetensors"]) == 64
    assert VOCAB == 49152
    assert META["greedy_tokens"] == 64
    assert [p["index"] for p in PROMPTS] == list(range(len(PROMPTS)))
    assert len(set(NAMES)) == len(NAMES)
    assert 6 <= len(PROMPTS) <= 10


def test_prompt_coverage():
    assert len(by_kind("chat")) == 1
    assert max(p["n_tokens"] for p in PROMPTS) >= 300
    texts = [p["text"] for p in PROMPTS]
    assert any(any("\uac00" <= c <= "\ud7a3" for c in t) for t in texts), "no Korean prompt"
    assert any("def " in t for t in texts), "no code prompt"
    assert sum(p.get("logits_all_file") is not None for p in PROMPTS) == 1


@pytest.mark.parametrize("p", PROMPTS, ids=NAMES)
def test_prompt_entry(p):
    ids, greedy = p["ids"], p["greedy_ids"]
    assert len(ids) == p["n_tokens"] > 0
    assert all(0 <= i < VOCAB for i in ids + greedy)
    assert len(greedy) == META["greedy_tokens"] == len(p["greedy_margins"])
    assert all(m >= 0 for m in p["greedy_margins"])
    first_eos = greedy.index(EOS) if EOS in greedy else -1
    assert p["greedy_first_eos"] == first_eos

    last = load_f32(p["logits_file"], p["logits_shape"])
    assert p["logits_shape"] == [VOCAB]
    assert np.isfinite(last).all()
    # The stored logits are those of the full forward; greedy step 0 came from the
    # same forward, so the argmax must match (np.argmax and torch.argmax both take
    # the first maximum).
    assert int(np.argmax(last)) == p["last_argmax"] == greedy[0]
    assert float(last.max()) == p["last_max_logit"]
    assert float(last.min()) == p["last_min_logit"]
    top2 = np.sort(last)[-2:]
    assert abs(float(top2[1] - top2[0]) - p["greedy_margins"][0]) < 1e-4
    assert last.std() > 0.5, "degenerate logits"


def test_all_positions():
    (p,) = [p for p in PROMPTS if p.get("logits_all_file")]
    assert p["index"] == META["all_positions_prompt"]
    rows, cols = p["logits_all_shape"]
    assert (rows, cols) == (p["n_tokens"], VOCAB)
    full = load_f32(p["logits_all_file"], (rows, cols))
    assert np.isfinite(full).all()
    # Last row is the last-position file, bit for bit (same forward pass).
    assert np.array_equal(full[-1], load_f32(p["logits_file"], [VOCAB]))
    assert [int(i) for i in full.argmax(axis=-1)] == p["argmax_per_position"]
    # Rows differ (a position-independent output would mean a broken forward).
    assert not np.allclose(full[0], full[-1])


def test_chat_answer():
    (p,) = by_kind("chat")
    assert p["messages"] == [{"role": "user", "content": "What is the capital of France?"}]
    assert p["text"].endswith("<|im_start|>assistant\n")
    assert p["answer_correct"] is True
    assert p["expect_substring"] == "Paris"
    assert "Paris" in p["greedy_text_until_eos"]
    # The answer ends with eos (<|im_end|>) well within the 64 tokens.
    assert 0 < p["greedy_first_eos"] < 32


def test_golden_txt_matches_json():
    lines = [ln.split() for ln in (GOLDEN / "golden.txt").read_text(encoding="utf-8").splitlines()
             if ln and not ln.startswith("#")]
    assert lines[0] == ["vocab", str(VOCAB)]
    assert lines[1] == ["greedy_tokens", str(META["greedy_tokens"])]
    entries, cur = [], None
    for f in lines[2:]:
        if f[0] == "prompt":
            cur = {"index": int(f[1]), "name": f[2]}
            entries.append(cur)
        elif f[0] in ("ids", "greedy"):
            vals = [int(x) for x in f[2:]]
            assert int(f[1]) == len(vals)
            cur[f[0]] = vals
        elif f[0] == "logits":
            cur["logits"] = (f[1], int(f[2]))
        elif f[0] == "all_logits":
            cur["all_logits"] = (f[1], int(f[2]), int(f[3]))
        else:
            raise AssertionError(f"unknown golden.txt line {f}")
    assert len(entries) == len(PROMPTS)
    for e, p in zip(entries, PROMPTS):
        assert (e["index"], e["name"]) == (p["index"], p["name"])
        assert e["ids"] == p["ids"] and e["greedy"] == p["greedy_ids"]
        assert e["logits"] == (p["logits_file"], VOCAB)
        if p.get("logits_all_file"):
            assert e["all_logits"] == (p["logits_all_file"], *p["logits_all_shape"])
        else:
            assert "all_logits" not in e


def test_total_size():
    total = sum(f.stat().st_size for f in GOLDEN.iterdir() if f.is_file())
    assert total < 3_500_000, f"tests/golden is {total} bytes"


# --- against the model directory -------------------------------------------------

@pytest.fixture(scope="module")
def tokenizer():
    from tokenizers import Tokenizer
    return Tokenizer.from_file(str(MODEL / "tokenizer.json"))


@needs_model
def test_model_files_unchanged():
    for name, want in META["model"]["sha256"].items():
        h = hashlib.sha256()
        with open(MODEL / name, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        assert h.hexdigest() == want, (
            f"{MODEL.name}/{name} differs from the one the goldens were made from: "
            "regenerate them with scripts/make_golden.py (see its docstring)")


@needs_model
@pytest.mark.parametrize("p", PROMPTS, ids=NAMES)
def test_tokenizers_ids(tokenizer, p):
    # transformers' tokenizer(text) with add_special_tokens=True adds nothing for
    # SmolLM2; the `tokenizers` package must produce the same ids either way.
    assert tokenizer.encode(p["text"]).ids == p["ids"]
    assert tokenizer.encode(p["text"], add_special_tokens=False).ids == p["ids"]
    assert tokenizer.decode(p["ids"], skip_special_tokens=False) == p["text"]
    assert tokenizer.decode(p["greedy_ids"], skip_special_tokens=False) == p["greedy_text"]


@needs_model
def test_chat_template_text():
    import jinja2
    cfg = json.loads((MODEL / "tokenizer_config.json").read_text())
    (p,) = by_kind("chat")
    env = jinja2.Environment(trim_blocks=True, lstrip_blocks=True)  # as transformers renders
    text = env.from_string(cfg["chat_template"]).render(
        messages=p["messages"], add_generation_prompt=p["add_generation_prompt"])
    assert text == p["text"]


@needs_model
def test_numpy_reference_matches():
    """scripts/reference_forward.py (numpy, float32) reproduces transformers' logits."""
    sys.path.insert(0, str(SCRIPTS))
    try:
        from reference_forward import Llama
    finally:
        sys.path.remove(str(SCRIPTS))
    model = Llama(MODEL)
    for p in PROMPTS:
        if p["n_tokens"] > 64:  # keep it cheap
            continue
        if p["kind"] != "chat" and p.get("logits_all_file") is None:
            continue
        model.cache = []
        got = model.forward(np.asarray(p["ids"]))
        want = load_f32(p["logits_file"], [VOCAB])
        err = float(np.abs(got - want).max())
        assert err < 2e-3, f"{p['name']}: max |numpy - transformers| = {err}"
        assert int(np.argmax(got)) == p["last_argmax"]
