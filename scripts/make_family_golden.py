#!/usr/bin/env python3
"""Golden references for every supported model family, from transformers itself.

    make_family_golden.py --tokenizers DIR [--out tests/fixtures/families]

DIR holds real tokenizers (llama2-spm/, llama3/, qwen3/, each a tokenizer.json).
For each configuration in CONFIGS this builds a tiny random model with
transformers' own classes (LlamaForCausalLM, MistralForCausalLM,
Qwen2ForCausalLM, Qwen3ForCausalLM), saves it as a Hugging Face directory in
bf16 (and for some in fp16) safetensors, and records, for PROMPT_LENGTHS
prompts, the float32 logits of every position and a greedy continuation.

Everything is small so that it can be committed:
  * the tokenizer is the real one cut to VOCAB tokens: the byte tokens (and, for
    SentencePiece-style ones, the prompts' characters), then merges in their
    rank order while both parts are kept; the special tokens the model needs
    get the ids after. The cut tokenizer is a valid BPE (tokenizers loads it);
    text tokenizes into more, shorter tokens.
  * hidden size 64, 2 layers; vocab = the cut tokenizer's size.
  * weights are drawn in float32, rounded to bf16, and values below 2^-14 in
    magnitude flushed to 0, so the same numbers are exact in fp16 too: the bf16
    and fp16 directories hold the same weights and share one set of logits.
  * logits are stored as float16 (rows of `vocab`, little-endian):
    logits_<k>.f16 for prompt k.

Output, per configuration NAME: tests/fixtures/families/NAME/{bf16,f16}/ (model
directories the engine loads) and NAME/golden.json (config, versions, prompts:
ids, logits file, greedy ids and top-1 minus top-2 margins per step).

The reference runs in float32 on the CPU with eager attention (the masks of
transformers' masking_utils: a sliding-window layer lets query i see keys j
with i - w < j <= i). The greedy continuation goes through generate() with the
KV cache (transformers' sliding-window cache for those layers), and its first
token must equal the full forward pass's argmax.

Environment: a transformers release that knows Qwen3 and writes rope
parameters (5.x), on PyPI's torch (CPU is enough), e.g.
    python3 -m venv .cache/venv-hf && .cache/venv-hf/bin/pip install torch transformers
Runs once (about a minute); CI only reads the committed fixtures.
"""

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402
import tokenizers  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
from transformers import (  # noqa: E402
    LlamaConfig, MistralConfig, PreTrainedTokenizerFast, Qwen2Config, Qwen3Config,
    AutoModelForCausalLM)

REPO = Path(__file__).resolve().parent.parent
VOCAB = 384  # tokens kept from each real tokenizer (special tokens come on top)
PROMPT_LENGTHS = [5, 61, 180]
GREEDY_TOKENS = 24

TEXT = (
    "The history of the lighthouse is, in many ways, the history of coastal trade itself. "
    "Long before electric lamps and rotating lenses, sailors relied on fires lit on hilltops "
    "to warn them of rocks and to guide them toward safe harbours. The most famous of the "
    "ancient lights stood on the island of Pharos, near Alexandria, where a tower more than a "
    "hundred metres tall carried a flame that could be seen from far out at sea. For centuries "
    "travellers described it as one of the wonders of the world, and its name survives in the "
    "word for lighthouse in several European languages. During the Middle Ages, many lights "
    "were kept by monks or by local guilds, who charged passing ships a small fee. "
    "Count: 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20. "
    "def f(n):\n    return n * (n + 1) // 2\n" * 4
)
TEXTS = ["Once upon a time, there was", TEXT, TEXT[::-1].replace("\n", " ") + TEXT]

COMMON = dict(hidden_size=64, num_hidden_layers=2, intermediate_size=64, rms_norm_eps=1e-5,
              max_position_embeddings=1024, attention_dropout=0.0)

# name, class, tokenizer, special tokens (bos, eos), config keys, dtypes saved
CONFIGS = [
    ("llama_gqa", LlamaConfig, "llama2-spm", ("<s>", "</s>"),
     dict(num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=False,
          rope_theta=10000.0), ["bf16", "f16"]),
    ("llama_mha_tied", LlamaConfig, "llama3", ("<|begin_of_text|>", "<|end_of_text|>"),
     dict(num_attention_heads=4, num_key_value_heads=4, tie_word_embeddings=True,
          rope_theta=500000.0), ["bf16"]),
    ("llama3_scaling", LlamaConfig, "llama3", ("<|begin_of_text|>", "<|end_of_text|>"),
     dict(num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=False,
          rope_parameters=dict(rope_type="llama3", rope_theta=10000.0, factor=8.0,
                               low_freq_factor=1.0, high_freq_factor=4.0,
                               original_max_position_embeddings=64)), ["bf16"]),
    ("mistral_window8", MistralConfig, "llama2-spm", ("<s>", "</s>"),
     dict(num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=False,
          rope_theta=10000.0, sliding_window=8), ["bf16", "f16"]),
    ("qwen2_bias", Qwen2Config, "qwen3", (None, "<|endoftext|>"),
     dict(num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=True,
          rope_theta=1000000.0, use_sliding_window=False, sliding_window=8,
          max_window_layers=1), ["bf16"]),
    ("qwen2_window", Qwen2Config, "qwen3", (None, "<|endoftext|>"),
     dict(num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=False,
          rope_theta=1000000.0, use_sliding_window=True, sliding_window=12,
          max_window_layers=1), ["bf16", "f16"]),
    ("qwen3_tied", Qwen3Config, "qwen3", (None, "<|endoftext|>"),
     dict(num_attention_heads=4, num_key_value_heads=2, head_dim=32, tie_word_embeddings=True,
          rope_theta=1000000.0, use_sliding_window=False), ["bf16"]),
    ("qwen3_untied_window", Qwen3Config, "qwen3", (None, "<|endoftext|>"),
     dict(num_attention_heads=4, num_key_value_heads=1, head_dim=24, tie_word_embeddings=False,
          rope_theta=1000000.0, use_sliding_window=True, sliding_window=16,
          max_window_layers=1), ["bf16"]),
]


def cut_tokenizer(src: Path, keep_special: list[str]) -> dict:
    """The tokenizer.json of src cut to VOCAB tokens (see the module doc)."""
    j = json.loads((src / "tokenizer.json").read_text(encoding="utf-8"))
    m = j["model"]
    assert m["type"] == "BPE"
    vocab = m["vocab"]
    merges = [tuple(x.split(" ", 1)) if isinstance(x, str) else tuple(x) for x in m["merges"]]
    added = {a["content"]: a for a in j["added_tokens"]}
    kept = set()
    if m.get("byte_fallback"):  # SentencePiece style: <0xNN> tokens and the prompts' characters
        kept |= {t for t in vocab if t.startswith("<0x") and len(t) == 6}
        kept |= {c for text in TEXTS for c in text.replace(" ", "\u2581") if c in vocab}
        kept |= {"\u2581"} & set(vocab)
        kept |= {t for t in added if t in vocab}
    else:  # byte level: the 256 byte characters have the first ids
        inv = {v: k for k, v in vocab.items()}
        kept |= {inv[i] for i in range(256)}
        assert all(len(t) == 1 for t in kept)
    new_merges = []
    for a, b in merges:
        if len(kept) >= VOCAB:
            break
        if a in kept and b in kept and a + b in vocab:
            new_merges.append((a, b))
            kept.add(a + b)
    order = sorted(kept, key=lambda t: vocab[t])
    new_vocab = {t: i for i, t in enumerate(order)}
    new_added = []
    for a in j["added_tokens"]:
        if a["content"] in new_vocab:
            new_added.append(dict(a, id=new_vocab[a["content"]]))
    for name in keep_special:
        if name and name not in new_vocab:
            new_vocab[name] = len(new_vocab)
            new_added.append(dict(added[name], id=new_vocab[name]))
    m["vocab"] = new_vocab
    m["merges"] = [f"{a} {b}" if isinstance(m["merges"][0], str) else [a, b]
                   for a, b in new_merges]
    j["added_tokens"] = sorted(new_added, key=lambda a: a["id"])
    pp = j.get("post_processor")  # TemplateProcessing: the special tokens' ids
    if pp and pp.get("type") == "TemplateProcessing":
        for name, st in pp["special_tokens"].items():
            st["ids"] = [new_vocab[t] for t in st["tokens"]]
    return j


def tokenizer_config(bos, eos, n: int) -> dict:
    return {"bos_token": bos, "eos_token": eos, "add_bos_token": bos is not None,
            "model_max_length": 1024, "tokenizer_class": "PreTrainedTokenizerFast",
            "clean_up_tokenization_spaces": False, "vocab_size": n}


def randomize(model: torch.nn.Module, seed: int) -> None:
    """Weights that make every part matter: unit-gain matrices, norms near 1,
    sizeable biases; rounded so that bf16 and fp16 hold the same values."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                v = 1.0 + 0.2 * torch.randn(p.shape, generator=g)
            elif name.endswith(".bias"):
                v = 0.5 * torch.randn(p.shape, generator=g)
            elif "embed_tokens" in name:
                v = torch.randn(p.shape, generator=g)
            else:  # Linear [out, in]
                v = torch.randn(p.shape, generator=g) * (1.5 / p.shape[1] ** 0.5)
            v = v.to(torch.bfloat16).float()
            v[v.abs() < 2.0 ** -14] = 0.0
            assert torch.equal(v.half().float(), v), name
            p.copy_(v)


def run_config(name, cls, tok_name, special, keys, dtypes, tok_root: Path, out_root: Path,
               seed: int) -> dict:
    bos, eos = special
    tj = cut_tokenizer(tok_root / tok_name, [t for t in special if t])
    tok = PreTrainedTokenizerFast(tokenizer_object=tokenizers.Tokenizer.from_str(json.dumps(tj)),
                                  bos_token=bos, eos_token=eos)
    vocab = len(tj["model"]["vocab"])
    ids_of = tj["model"]["vocab"]
    cfg = cls(vocab_size=vocab, bos_token_id=ids_of.get(bos) if bos else None,
              eos_token_id=ids_of[eos], **COMMON, **keys)
    cfg._attn_implementation = "eager"
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(cfg, dtype=torch.float32, attn_implementation="eager")
    randomize(model, seed)
    model.eval()

    out = out_root / name
    if out.exists():
        shutil.rmtree(out)
    for dt in dtypes:
        d = out / dt
        copy = AutoModelForCausalLM.from_config(cfg, dtype=torch.float32,
                                                attn_implementation="eager")
        copy.load_state_dict(model.state_dict())
        copy = copy.to(torch.bfloat16 if dt == "bf16" else torch.float16)
        copy.config.dtype = torch.bfloat16 if dt == "bf16" else torch.float16
        copy.save_pretrained(d)
        (d / "tokenizer.json").write_text(json.dumps(tj, ensure_ascii=False), encoding="utf-8")
        (d / "tokenizer_config.json").write_text(
            json.dumps(tokenizer_config(bos, eos, vocab), indent=1) + "\n")

    prompts = []
    with torch.no_grad():
        for k, (text, n) in enumerate(zip(TEXTS, PROMPT_LENGTHS)):
            ids = tok(text).input_ids[:n]
            assert len(ids) == n, (name, len(ids), n)
            logits = model(input_ids=torch.tensor([ids])).logits[0].float().numpy()
            lfile = f"logits_{k}.f16"
            logits.astype("<f2").tofile(out / lfile)
            gen = model.generate(torch.tensor([ids]), max_new_tokens=GREEDY_TOKENS,
                                 do_sample=False, output_logits=True,
                                 return_dict_in_generate=True, pad_token_id=cfg.eos_token_id,
                                 eos_token_id=None)
            g_ids = [int(t) for t in gen.sequences[0, n:]]
            margins = []
            for step in gen.logits:
                top2 = torch.topk(step[0].float(), 2).values
                margins.append(round(float(top2[0] - top2[1]), 5))
            assert g_ids[0] == int(np.argmax(logits[-1])), f"{name}: cached step 0 != forward"
            prompts.append({"n_tokens": n, "ids": ids, "logits_file": lfile,
                            "logits_shape": [n, vocab],
                            "max_abs_logit": float(np.abs(logits).max()),
                            "argmax": [int(i) for i in logits.argmax(-1)],
                            "greedy_ids": g_ids, "greedy_margins": margins,
                            "text_prefix": tok.decode(ids[:8])})
    meta = {
        "generator": "scripts/make_family_golden.py",
        "library": {"transformers": transformers.__version__, "torch": torch.__version__,
                    "tokenizers": tokenizers.__version__},
        "name": name, "architecture": cls.__name__.replace("Config", "ForCausalLM"),
        "tokenizer": f"{tok_name} cut to {vocab} tokens", "vocab_size": vocab,
        "dtypes": dtypes, "seed": seed,
        "layer_types": list(getattr(model.config, "layer_types", None) or []),
        "sliding_window": getattr(model.config, "sliding_window", None),
        "reference": "float32 CPU eager attention; logits stored as float16",
        "greedy_tokens": GREEDY_TOKENS, "prompts": prompts,
    }
    (out / "golden.json").write_text(json.dumps(meta, indent=1) + "\n")
    print(f"{name}: vocab {vocab}, {cls.__name__}, windows {meta['layer_types']} "
          f"{meta['sliding_window']}, max|logit| "
          f"{max(p['max_abs_logit'] for p in prompts):.2f}, "
          f"min margin {min(min(p['greedy_margins']) for p in prompts):.4f}")
    return meta


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tokenizers", required=True, type=Path)
    ap.add_argument("--out", default=REPO / "tests" / "fixtures" / "families", type=Path)
    ap.add_argument("--only", nargs="*", help="configuration names (default: all)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    args.out.mkdir(parents=True, exist_ok=True)
    for i, c in enumerate(CONFIGS):
        if args.only and c[0] not in args.only:
            continue
        run_config(*c, tok_root=args.tokenizers, out_root=args.out, seed=1000 + i)
    return 0


if __name__ == "__main__":
    sys.exit(main())
