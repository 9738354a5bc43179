#!/usr/bin/env python3
"""peer_gguf.py - writes a Llama-architecture Hugging Face model directory
(config.json, model.safetensors, tokenizer.json; fp16/bf16/f32) as a GGUF
file with F16 matrices, so that llama.cpp runs the same weights as this
engine (scripts/peer_llamacpp.py). Only what llama.cpp needs to load and run
a Llama model is written: the hyperparameters, the byte-level BPE vocabulary
and merges, and the tensors under llama.cpp's names, q_proj and k_proj rows
permuted from Hugging Face's rotate-half order to llama.cpp's interleaved
rope pairs.

Needs numpy and the gguf package (the copy inside llama.cpp's source tree
works: PYTHONPATH=<llama.cpp>/gguf-py).

Usage: peer_gguf.py MODEL_DIR OUT.gguf
"""
import json
import os
import struct
import sys

import numpy as np

import gguf

DTYPES = {"F16": np.float16, "F32": np.float32, "BF16": None}


def read_safetensors(path):
    """Every tensor of one safetensors file, as float32 or float16 arrays."""
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        base = 8 + n
        data = np.memmap(path, dtype=np.uint8, mode="r")
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        b0, b1 = t["data_offsets"]
        raw = data[base + b0:base + b1]
        if t["dtype"] == "BF16":  # bf16 -> f32: the bits are the top half
            a = (raw.view(np.uint16).astype(np.uint32) << 16).view(np.float32)
        elif t["dtype"] in DTYPES:
            a = raw.view(DTYPES[t["dtype"]])
        else:
            sys.exit(f"peer_gguf: {path}: tensor {name} is {t['dtype']}: only F16/BF16/F32")
        out[name] = a.reshape(t["shape"])
    return out


def load_weights(model_dir):
    single = os.path.join(model_dir, "model.safetensors")
    if os.path.exists(single):
        return read_safetensors(single)
    index = os.path.join(model_dir, "model.safetensors.index.json")
    files = sorted(set(json.load(open(index))["weight_map"].values()))
    w = {}
    for f in files:
        w.update(read_safetensors(os.path.join(model_dir, f)))
    return w


def permute(w, n_head):
    """Hugging Face's q/k rows (rotate-half pairs i, i + d/2) in llama.cpp's
    order (pairs 2i, 2i + 1), per head."""
    rows = w.shape[0]
    return w.reshape(n_head, 2, rows // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def add_vocab(wr, model_dir):
    tok = json.load(open(os.path.join(model_dir, "tokenizer.json"), encoding="utf-8"))
    model = tok["model"]
    if model.get("type") != "BPE":
        sys.exit("peer_gguf: only byte-level BPE tokenizers (Llama-3, SmolLM2, Qwen) are written")
    vocab = dict(model["vocab"])
    special = set()
    for a in tok.get("added_tokens", []):
        vocab[a["content"]] = a["id"]
        if a.get("special"):
            special.add(a["id"])
    n = max(vocab.values()) + 1
    tokens = [f"[PAD{i}]" for i in range(n)]
    types = [gguf.TokenType.UNUSED] * n
    for t, i in vocab.items():
        tokens[i] = t
        types[i] = gguf.TokenType.CONTROL if i in special else gguf.TokenType.NORMAL
    merges = [m if isinstance(m, str) else " ".join(m) for m in model.get("merges", [])]
    wr.add_tokenizer_model("gpt2")
    wr.add_tokenizer_pre("smollm")
    wr.add_token_list(tokens)
    wr.add_token_types(types)
    wr.add_token_merges(merges)
    return n


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    model_dir, out = sys.argv[1], sys.argv[2]
    cfg = json.load(open(os.path.join(model_dir, "config.json")))
    if cfg.get("model_type") not in ("llama", "mistral"):
        sys.exit(f"peer_gguf: model_type {cfg.get('model_type')}: only llama/mistral are written")
    nh, nkv = cfg["num_attention_heads"], cfg.get("num_key_value_heads", cfg["num_attention_heads"])
    dim, layers = cfg["hidden_size"], cfg["num_hidden_layers"]
    hd = cfg.get("head_dim") or dim // nh
    w = load_weights(model_dir)

    wr = gguf.GGUFWriter(out, "llama")
    wr.add_name(os.path.basename(os.path.normpath(model_dir)))
    wr.add_context_length(cfg.get("max_position_embeddings", 4096))
    wr.add_embedding_length(dim)
    wr.add_block_count(layers)
    wr.add_feed_forward_length(cfg["intermediate_size"])
    wr.add_head_count(nh)
    wr.add_head_count_kv(nkv)
    wr.add_key_length(hd)
    wr.add_value_length(hd)
    wr.add_rope_dimension_count(hd)
    wr.add_rope_freq_base(float(cfg.get("rope_theta", 10000.0)))
    wr.add_layer_norm_rms_eps(float(cfg.get("rms_norm_eps", 1e-5)))
    wr.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
    n_vocab = add_vocab(wr, model_dir)
    wr.add_vocab_size(n_vocab)
    if cfg.get("bos_token_id") is not None:
        wr.add_bos_token_id(cfg["bos_token_id"])
    eos = cfg.get("eos_token_id")
    if eos is not None:
        wr.add_eos_token_id(eos[0] if isinstance(eos, list) else eos)

    def mat(name):  # matrices F16, as llama.cpp's own converter writes them
        return np.ascontiguousarray(w[name].astype(np.float16))

    def vec(name):  # norms F32
        return np.ascontiguousarray(w[name].astype(np.float32))

    wr.add_tensor("token_embd.weight", mat("model.embed_tokens.weight"))
    wr.add_tensor("output_norm.weight", vec("model.norm.weight"))
    if "lm_head.weight" in w and not cfg.get("tie_word_embeddings", False):
        wr.add_tensor("output.weight", mat("lm_head.weight"))
    for i in range(layers):
        p = f"model.layers.{i}."
        wr.add_tensor(f"blk.{i}.attn_norm.weight", vec(p + "input_layernorm.weight"))
        wr.add_tensor(f"blk.{i}.attn_q.weight", permute(mat(p + "self_attn.q_proj.weight"), nh))
        wr.add_tensor(f"blk.{i}.attn_k.weight", permute(mat(p + "self_attn.k_proj.weight"), nkv))
        wr.add_tensor(f"blk.{i}.attn_v.weight", mat(p + "self_attn.v_proj.weight"))
        wr.add_tensor(f"blk.{i}.attn_output.weight", mat(p + "self_attn.o_proj.weight"))
        wr.add_tensor(f"blk.{i}.ffn_norm.weight", vec(p + "post_attention_layernorm.weight"))
        wr.add_tensor(f"blk.{i}.ffn_gate.weight", mat(p + "mlp.gate_proj.weight"))
        wr.add_tensor(f"blk.{i}.ffn_up.weight", mat(p + "mlp.up_proj.weight"))
        wr.add_tensor(f"blk.{i}.ffn_down.weight", mat(p + "mlp.down_proj.weight"))
    wr.write_header_to_file()
    wr.write_kv_data_to_file()
    wr.write_tensors_to_file()
    wr.close()
    print(f"peer_gguf: wrote {out} ({os.path.getsize(out) / 2**20:.1f} MiB)", file=sys.stderr)


if __name__ == "__main__":
    main()
