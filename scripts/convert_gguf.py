#!/usr/bin/env python3
"""Convert a Llama-architecture GGUF into a Hugging Face model directory.

    convert_gguf.py GGUF OUTDIR

Writes config.json, model.safetensors (fp16, HF tensor names and [out, in]
shapes), tokenizer.json (byte-level BPE), tokenizer_config.json (with the chat
template) and generation_config.json. Every value comes from the GGUF metadata.
Each tensor is dequantized by its own GGUF type (Q4_1, Q8_0, F16, F32), and
llama.cpp's row permutation of the Q and K projections is undone.

The files are written into a temporary directory next to OUTDIR and renamed into
place, so OUTDIR is either absent, the previous result, or the new one. An
existing OUTDIR is replaced only if it holds nothing but files this script
writes (a previous conversion).

Progress lines go to stdout when it is a terminal; errors go to stderr, exit 1.
"""

import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
from gguf import GGUFReader
from safetensors.numpy import save_file
from tokenizers import Tokenizer

OUTPUT_FILES = ("config.json", "model.safetensors", "tokenizer.json",
                "tokenizer_config.json", "generation_config.json")
# get_model.sh marks a finished model with this file; a previous result may hold it.
COMPLETE_MARK = ".complete"

# tokenizer.ggml.token_type values (llama.cpp's llama_token_type)
TOKEN_NORMAL = 1
TOKEN_CONTROL = 3

# GGUF tensor name (after "blk.N.") -> HF name (after "model.layers.N.")
LAYER_TENSORS = {
    "attn_norm.weight": "input_layernorm.weight",
    "ffn_norm.weight": "post_attention_layernorm.weight",
    "attn_q.weight": "self_attn.q_proj.weight",
    "attn_k.weight": "self_attn.k_proj.weight",
    "attn_v.weight": "self_attn.v_proj.weight",
    "attn_output.weight": "self_attn.o_proj.weight",
    "ffn_gate.weight": "mlp.gate_proj.weight",
    "ffn_up.weight": "mlp.up_proj.weight",
    "ffn_down.weight": "mlp.down_proj.weight",
}
GLOBAL_TENSORS = {
    "token_embd.weight": "model.embed_tokens.weight",
    "output_norm.weight": "model.norm.weight",
    "output.weight": "lm_head.weight",  # absent when the embedding is tied
}


class ConvertError(Exception):
    pass


def log(msg):
    if sys.stdout.isatty():
        print(msg, flush=True)


# --- dequantization ------------------------------------------------------------
# Each takes the tensor's raw bytes (uint8, C order) and returns float32 values in
# file order. Block layouts are ggml's (ggml-common.h), little-endian.

Q4_1_BLOCK = np.dtype([("d", "<f2"), ("m", "<f2"), ("qs", "u1", 16)])  # 20 bytes, 32 weights
Q8_0_BLOCK = np.dtype([("d", "<f2"), ("qs", "i1", 32)])  # 34 bytes, 32 weights


def dequant_q4_1(raw):
    # w = d * q + m, q in 0..15; low nibbles are weights 0..15, high nibbles 16..31
    b = raw.view(Q4_1_BLOCK)
    q = np.concatenate([b["qs"] & 0x0F, b["qs"] >> 4], axis=1).astype(np.float32)
    d = b["d"].astype(np.float32)[:, None]
    m = b["m"].astype(np.float32)[:, None]
    return (d * q + m).reshape(-1)


def dequant_q8_0(raw):
    # w = d * q, q in -128..127
    b = raw.view(Q8_0_BLOCK)
    return (b["d"].astype(np.float32)[:, None] * b["qs"].astype(np.float32)).reshape(-1)


DEQUANT = {
    "F32": lambda raw: raw.view("<f4"),
    "F16": lambda raw: raw.view("<f2").astype(np.float32),
    "Q4_1": dequant_q4_1,
    "Q8_0": dequant_q8_0,
}


def dequantize(tensor):
    """GGUF tensor -> float32 array in HF shape (ggml dims reversed: ne[0] is innermost)."""
    kind = tensor.tensor_type.name
    if kind not in DEQUANT:
        raise ConvertError(f"tensor {tensor.name}: GGUF type {kind} is not supported "
                           f"(supported: {', '.join(DEQUANT)})")
    raw = np.ascontiguousarray(tensor.data).reshape(-1).view(np.uint8)
    if raw.size != tensor.n_bytes:
        raise ConvertError(f"tensor {tensor.name}: {raw.size} bytes, expected {tensor.n_bytes}")
    shape = tuple(int(n) for n in reversed(tensor.shape))
    return DEQUANT[kind](raw).reshape(shape)


# --- Q/K row permutation ---------------------------------------------------------
# llama.cpp's converter reorders the rows of each head of q_proj/k_proj from HF's
# "rotate_half" RoPE layout (pairs i, i + head_dim/2) to GPT-J's interleaved one
# (pairs 2i, 2i+1). n_head is num_attention_heads for q, num_key_value_heads for k.

def permute_qk(w, n_head):
    """HF layout -> llama.cpp layout (what llama.cpp's converter applied)."""
    rows = w.shape[0]
    return w.reshape(n_head, 2, rows // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def unpermute_qk(w, n_head):
    """llama.cpp layout -> HF layout; the inverse of permute_qk."""
    rows = w.shape[0]
    return w.reshape(n_head, rows // n_head // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


# --- metadata --------------------------------------------------------------------

_REQUIRED = object()


def meta(reader, key, default=_REQUIRED):
    field = reader.fields.get(key)
    if field is None:
        if default is _REQUIRED:
            raise ConvertError(f"GGUF metadata has no {key}")
        return default
    return field.contents()


def f32_value(x):
    # GGUF floats are float32: 1e-5 is stored as 9.99999974e-06; keep the short form
    return float(str(np.float32(x)))


def check(cond, msg):
    if not cond:
        raise ConvertError(msg)


def build_config(reader, tied):
    arch = meta(reader, "general.architecture")
    check(arch == "llama", f"general.architecture is {arch!r}, only 'llama' is supported")
    hidden = int(meta(reader, "llama.embedding_length"))
    n_head = int(meta(reader, "llama.attention.head_count"))
    n_kv = int(meta(reader, "llama.attention.head_count_kv", n_head))
    head_dim = int(meta(reader, "llama.attention.key_length", hidden // n_head))
    rope_dim = int(meta(reader, "llama.rope.dimension_count", head_dim))
    n_vocab = len(meta(reader, "tokenizer.ggml.tokens"))
    vocab = int(meta(reader, "llama.vocab_size", n_vocab))
    check(n_head % n_kv == 0, f"head_count {n_head} is not a multiple of head_count_kv {n_kv}")
    check(head_dim % 2 == 0, f"head_dim {head_dim} is odd")
    check(rope_dim == head_dim, f"rope.dimension_count {rope_dim} != head_dim {head_dim}: "
                                "partial RoPE is not supported")
    check(int(meta(reader, "llama.attention.value_length", head_dim)) == head_dim,
          "attention.value_length differs from key_length")
    check(vocab == n_vocab, f"llama.vocab_size {vocab} != {n_vocab} tokens")
    check(meta(reader, "llama.rope.scaling.type", "none") == "none", "RoPE scaling is not supported")
    check(meta(reader, "llama.expert_count", 0) == 0, "mixture-of-experts is not supported")
    bos = int(meta(reader, "tokenizer.ggml.bos_token_id"))
    eos = int(meta(reader, "tokenizer.ggml.eos_token_id"))
    config = {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_size": hidden,
        "intermediate_size": int(meta(reader, "llama.feed_forward_length")),
        "num_hidden_layers": int(meta(reader, "llama.block_count")),
        "num_attention_heads": n_head,
        "num_key_value_heads": n_kv,
        "head_dim": head_dim,
        "vocab_size": vocab,
        "max_position_embeddings": int(meta(reader, "llama.context_length")),
        "rms_norm_eps": f32_value(meta(reader, "llama.attention.layer_norm_rms_epsilon")),
        "rope_theta": f32_value(meta(reader, "llama.rope.freq_base", 10000.0)),
        "rope_scaling": None,
        "hidden_act": "silu",
        "attention_bias": False,
        "mlp_bias": False,
        "tie_word_embeddings": tied,
        "torch_dtype": "float16",
        "bos_token_id": bos,
        "eos_token_id": eos,
    }
    pad = meta(reader, "tokenizer.ggml.padding_token_id", None)
    if pad is not None:
        config["pad_token_id"] = int(pad)
    return config


def expected_shapes(config):
    h, i, v = config["hidden_size"], config["intermediate_size"], config["vocab_size"]
    q = config["num_attention_heads"] * config["head_dim"]
    kv = config["num_key_value_heads"] * config["head_dim"]
    layer = {
        "input_layernorm.weight": (h,),
        "post_attention_layernorm.weight": (h,),
        "self_attn.q_proj.weight": (q, h),
        "self_attn.k_proj.weight": (kv, h),
        "self_attn.v_proj.weight": (kv, h),
        "self_attn.o_proj.weight": (h, q),
        "mlp.gate_proj.weight": (i, h),
        "mlp.up_proj.weight": (i, h),
        "mlp.down_proj.weight": (h, i),
    }
    shapes = {"model.embed_tokens.weight": (v, h), "model.norm.weight": (h,)}
    if not config["tie_word_embeddings"]:
        shapes["lm_head.weight"] = (v, h)
    for n in range(config["num_hidden_layers"]):
        shapes.update({f"model.layers.{n}.{k}": s for k, s in layer.items()})
    return shapes


def hf_name(gguf_name):
    if gguf_name in GLOBAL_TENSORS:
        return GLOBAL_TENSORS[gguf_name]
    parts = gguf_name.split(".", 2)
    if len(parts) == 3 and parts[0] == "blk" and parts[1].isdigit() and parts[2] in LAYER_TENSORS:
        return f"model.layers.{parts[1]}.{LAYER_TENSORS[parts[2]]}"
    raise ConvertError(f"unknown GGUF tensor {gguf_name}")


# --- weights ---------------------------------------------------------------------

def convert_weights(reader, config):
    """-> {hf name: fp16 array}, checked against the shapes config implies."""
    shapes = expected_shapes(config)
    out = {}
    for t in reader.tensors:
        name = hf_name(t.name)
        check(name in shapes, f"GGUF tensor {t.name} ({name}) does not fit the config")
        check(name not in out, f"GGUF tensor {t.name} appears twice")
        w = dequantize(t)
        check(w.shape == shapes[name], f"{t.name}: shape {w.shape}, expected {shapes[name]}")
        if name.endswith("q_proj.weight"):
            w = unpermute_qk(w, config["num_attention_heads"])
        elif name.endswith("k_proj.weight"):
            w = unpermute_qk(w, config["num_key_value_heads"])
        w16 = np.ascontiguousarray(w, dtype=np.float16)
        check(np.isfinite(w16).all(), f"{t.name}: values do not fit in fp16")
        out[name] = w16
    missing = sorted(set(shapes) - set(out))
    check(not missing, f"GGUF lacks tensors: {', '.join(missing[:5])}")
    return out


# --- tokenizer -------------------------------------------------------------------

def added_token(i, content):
    return {"id": i, "content": content, "single_word": False, "lstrip": False,
            "rstrip": False, "normalized": False, "special": True}


def build_tokenizer(reader):
    """-> (tokenizer.json dict, [(id, text)] of the special tokens)."""
    model = meta(reader, "tokenizer.ggml.model")
    check(model == "gpt2", f"tokenizer.ggml.model is {model!r}, only byte-level BPE ('gpt2') "
                           "is supported")
    tokens = meta(reader, "tokenizer.ggml.tokens")
    types = meta(reader, "tokenizer.ggml.token_type")
    merges = meta(reader, "tokenizer.ggml.merges")
    check(len(types) == len(tokens), "token_type and tokens differ in length")
    odd = sorted({int(t) for t in types} - {TOKEN_NORMAL, TOKEN_CONTROL})
    check(not odd, f"token types {odd} are not supported (only normal and control)")
    vocab = {tok: i for i, tok in enumerate(tokens)}
    check(len(vocab) == len(tokens), "duplicate tokens in the vocabulary")
    bad = [m for m in merges if m.count(" ") != 1]
    check(not bad, f"merge {bad[:1]} is not of the form 'a b'")
    specials = [(i, tokens[i]) for i, t in enumerate(types) if t == TOKEN_CONTROL]
    byte_level = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True,
                  "use_regex": True}
    tok = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [added_token(i, s) for i, s in specials],
        "normalizer": None,
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Digits", "individual_digits": True}, byte_level]},
        "post_processor": dict(byte_level, add_prefix_space=True, trim_offsets=False),
        "decoder": dict(byte_level, add_prefix_space=True),
        "model": {
            "type": "BPE",
            "dropout": None,
            "unk_token": None,
            "continuing_subword_prefix": None,
            "end_of_word_suffix": None,
            "fuse_unk": False,
            "byte_fallback": False,
            "ignore_merges": False,
            "vocab": vocab,
            "merges": list(merges),
        },
    }
    return tok, specials


def build_tokenizer_config(reader, config, specials):
    tokens = meta(reader, "tokenizer.ggml.tokens")

    def token(key):
        i = meta(reader, key, None)
        return None if i is None else tokens[int(i)]

    decoder = {str(i): {k: v for k, v in added_token(i, s).items() if k != "id"}
               for i, s in specials}
    return {
        "add_bos_token": bool(meta(reader, "tokenizer.ggml.add_bos_token", False)),
        "add_eos_token": bool(meta(reader, "tokenizer.ggml.add_eos_token", False)),
        "added_tokens_decoder": decoder,
        "bos_token": token("tokenizer.ggml.bos_token_id"),
        "eos_token": token("tokenizer.ggml.eos_token_id"),
        "unk_token": token("tokenizer.ggml.unknown_token_id"),
        "pad_token": token("tokenizer.ggml.padding_token_id"),
        "chat_template": meta(reader, "tokenizer.chat_template"),
        "clean_up_tokenization_spaces": False,
        "model_max_length": config["max_position_embeddings"],
        "tokenizer_class": "GPT2Tokenizer",
        "vocab_size": config["vocab_size"],
    }


def build_generation_config(config):
    keys = ("bos_token_id", "eos_token_id", "pad_token_id")
    return {k: config[k] for k in keys if k in config}


def check_tokenizer(path, config, specials):
    tok = Tokenizer.from_file(str(path))
    check(tok.get_vocab_size(with_added_tokens=True) == config["vocab_size"],
          "tokenizer.json vocabulary size differs from the config")
    for i, s in specials:
        check(tok.token_to_id(s) == i, f"special token {s!r} does not map to id {i}")


# --- output ----------------------------------------------------------------------

def write_json(path, obj):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2, ensure_ascii=False)
        f.write("\n")


def check_replaceable(out):
    """An existing out may be replaced only if it holds nothing but files this script writes."""
    if out.exists():
        check(out.is_dir(), f"{out} exists and is not a directory")
        foreign = sorted(p.name for p in out.iterdir()
                         if p.name not in OUTPUT_FILES and p.name != COMPLETE_MARK)
        check(not foreign, f"refusing to replace {out}: it holds files this script did not "
                           f"write ({', '.join(foreign[:5])})")


def replace_dir(new, out):
    """Rename new to out, replacing a previous result."""
    check_replaceable(out)
    if out.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
        os.rename(out, old / out.name)
        os.rename(new, out)
        shutil.rmtree(old)
    else:
        os.rename(new, out)


def convert(gguf_path, out):
    check_replaceable(out)
    log(f"reading {gguf_path}")
    reader = GGUFReader(str(gguf_path))
    tied = all(t.name != "output.weight" for t in reader.tensors)
    config = build_config(reader, tied)
    tokenizer, specials = build_tokenizer(reader)

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:
        log(f"dequantizing {len(reader.tensors)} tensors to fp16")
        weights = convert_weights(reader, config)
        log("writing model.safetensors")
        save_file(weights, tmp / "model.safetensors", metadata={"format": "pt"})
        del weights
        write_json(tmp / "config.json", config)
        write_json(tmp / "tokenizer.json", tokenizer)
        write_json(tmp / "tokenizer_config.json",
                   build_tokenizer_config(reader, config, specials))
        write_json(tmp / "generation_config.json", build_generation_config(config))
        check_tokenizer(tmp / "tokenizer.json", config, specials)
        # mkdtemp makes the directory 0700 and safetensors its file 0600
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o777 & ~umask)
        for name in OUTPUT_FILES:
            os.chmod(tmp / name, 0o666 & ~umask)
        replace_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log(f"wrote {out}")


def main(argv):
    if len(argv) != 3:
        print(f"usage: {Path(argv[0]).name} GGUF OUTDIR", file=sys.stderr)
        return 2
    try:
        convert(Path(argv[1]), Path(argv[2]))
    except (ConvertError, OSError, ValueError) as e:
        print(f"convert_gguf.py: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
