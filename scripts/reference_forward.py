#!/usr/bin/env python3
"""Plain numpy (float32) Llama forward pass, the oracle for a converted model.

    reference_forward.py MODEL_DIR PROMPT [--max-tokens N]

Loads config.json and model.safetensors, tokenizes PROMPT with tokenizer.json
(special tokens such as <|im_start|> are recognised; nothing is added), greedily
decodes up to N tokens, stopping at eos, and prints the continuation.

Written to be checked line by line against transformers' LlamaForCausalLM
(RMSNorm, RoPE in the "rotate_half" layout, GQA, SiLU MLP, tied lm_head), not to
be fast.
"""

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file
from tokenizers import Tokenizer


def rmsnorm(x, w, eps):
    # x (T, dim), w (dim,)
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * w


def rope(x, pos, theta):
    # x (T, n_head, head_dim), pos (T,); rotates the pairs (i, i + head_dim/2)
    half = x.shape[-1] // 2
    inv_freq = (1.0 / theta ** (np.arange(0, 2 * half, 2) / (2 * half))).astype(np.float32)
    angle = pos[:, None].astype(np.float32) * inv_freq[None, :]  # (T, half)
    cos, sin = np.cos(angle)[:, None, :], np.sin(angle)[:, None, :]
    x1, x2 = x[..., :half], x[..., half:]
    return np.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1)


def softmax(x):
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def silu(x):
    return x / (1.0 + np.exp(-x))


class Llama:
    def __init__(self, model_dir):
        model_dir = Path(model_dir)
        cfg = json.loads((model_dir / "config.json").read_text())
        if cfg.get("rope_scaling"):
            raise ValueError("rope_scaling is not supported by the reference")
        self.dim = cfg["hidden_size"]
        self.n_head = cfg["num_attention_heads"]
        self.n_kv = cfg["num_key_value_heads"]
        self.head_dim = cfg.get("head_dim", self.dim // self.n_head)
        self.eps = cfg["rms_norm_eps"]
        self.theta = cfg["rope_theta"]
        eos = cfg["eos_token_id"]
        self.eos = set(eos if isinstance(eos, list) else [eos])

        w = {k: v.astype(np.float32) for k, v in load_file(model_dir / "model.safetensors").items()}
        self.embed = w["model.embed_tokens.weight"]  # (vocab, dim)
        self.lm_head = self.embed if cfg["tie_word_embeddings"] else w["lm_head.weight"]
        self.norm = w["model.norm.weight"]  # (dim,)
        self.layers = []
        for n in range(cfg["num_hidden_layers"]):
            p = f"model.layers.{n}."
            self.layers.append({k: w[p + name + ".weight"] for k, name in (
                ("ln1", "input_layernorm"),           # (dim,)
                ("ln2", "post_attention_layernorm"),  # (dim,)
                ("wq", "self_attn.q_proj"),           # (n_head * head_dim, dim)
                ("wk", "self_attn.k_proj"),           # (n_kv * head_dim, dim)
                ("wv", "self_attn.v_proj"),           # (n_kv * head_dim, dim)
                ("wo", "self_attn.o_proj"),           # (dim, n_head * head_dim)
                ("w_gate", "mlp.gate_proj"),          # (hidden, dim)
                ("w_up", "mlp.up_proj"),              # (hidden, dim)
                ("w_down", "mlp.down_proj"),          # (dim, hidden)
            )})
        self.cache = []  # per layer: (K (S, n_kv, head_dim), V (S, n_kv, head_dim))

    def attention(self, layer, i, h, pos):
        T, hd = h.shape[0], self.head_dim
        q = rope((h @ layer["wq"].T).reshape(T, self.n_head, hd), pos, self.theta)
        k = rope((h @ layer["wk"].T).reshape(T, self.n_kv, hd), pos, self.theta)
        v = (h @ layer["wv"].T).reshape(T, self.n_kv, hd)
        if i < len(self.cache):
            k = np.concatenate([self.cache[i][0], k])
            v = np.concatenate([self.cache[i][1], v])
            self.cache[i] = (k, v)
        else:
            self.cache.append((k, v))
        S = k.shape[0]
        # GQA: kv head j serves query heads j*group .. j*group + group-1
        group = self.n_head // self.n_kv
        k = np.repeat(k, group, axis=1).transpose(1, 2, 0)  # (n_head, hd, S)
        v = np.repeat(v, group, axis=1).transpose(1, 0, 2)  # (n_head, S, hd)
        scores = (q.transpose(1, 0, 2) @ k) / math.sqrt(hd)  # (n_head, T, S)
        causal = np.arange(S)[None, :] > pos[:, None]       # key after query
        scores = np.where(causal[None], -np.inf, scores)
        out = (softmax(scores) @ v).transpose(1, 0, 2).reshape(T, self.n_head * hd)
        return out @ layer["wo"].T

    def forward(self, tokens):
        """Appends tokens (T,) after the cached ones; returns the last position's logits."""
        start = self.cache[0][0].shape[0] if self.cache else 0
        pos = np.arange(start, start + len(tokens))
        x = self.embed[tokens]  # (T, dim)
        for i, layer in enumerate(self.layers):
            x = x + self.attention(layer, i, rmsnorm(x, layer["ln1"], self.eps), pos)
            h = rmsnorm(x, layer["ln2"], self.eps)
            x = x + (silu(h @ layer["w_gate"].T) * (h @ layer["w_up"].T)) @ layer["w_down"].T
        assert x.dtype == np.float32  # a stray float64 scalar would promote everything
        return rmsnorm(x[-1:], self.norm, self.eps)[0] @ self.lm_head.T  # (vocab,)

    def generate(self, tokens, max_tokens):
        """Greedy decoding; returns the new token ids (eos not included)."""
        self.cache = []
        out = []
        logits = self.forward(np.asarray(tokens))
        while len(out) < max_tokens:
            nxt = int(np.argmax(logits))
            if nxt in self.eos:
                break
            out.append(nxt)
            logits = self.forward(np.asarray([nxt]))
        return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model_dir")
    ap.add_argument("prompt")
    ap.add_argument("--max-tokens", type=int, default=64)
    args = ap.parse_args()
    tok = Tokenizer.from_file(str(Path(args.model_dir) / "tokenizer.json"))
    model = Llama(args.model_dir)
    ids = model.generate(tok.encode(args.prompt).ids, args.max_tokens)
    print(tok.decode(ids))
    return 0


if __name__ == "__main__":
    sys.exit(main())
