#!/usr/bin/env python3
"""Golden reference outputs from Hugging Face transformers (PyTorch, CPU, float32).

    make_golden.py [--model-dir models/SmolLM2-135M-Instruct] [--out tests/golden]

Runs LlamaForCausalLM from transformers on the same HF model directory the engine
loads (fp16 safetensors, upcast to float32) and writes, for a fixed set of prompts:

  golden.json           metadata (versions, model file hashes) and per prompt: text,
                        token ids, greedy continuation ids/text, logit statistics
  golden.txt            the same ids in a line format for C tests (no JSON needed)
  logits_<k>.f32        last-position logits of prompt k: vocab_size float32, raw
                        little-endian, no header
  logits_all_<k>.f32    logits at every position of one short prompt: n_tokens rows
                        of vocab_size float32 (row-major), raw little-endian

Conventions:
  * Prompt ids are `tokenizer(text).input_ids` (add_special_tokens=True, which for
    SmolLM2 adds nothing: no BOS/EOS). Special tokens written in the text
    (<|im_start|>, <|im_end|>) are recognised as single ids.
  * The chat prompt's text is tokenizer.apply_chat_template(messages, tokenize=False,
    add_generation_prompt=True); its ids equal apply_chat_template(tokenize=True).
  * Greedy continuation: exactly GREEDY_TOKENS new tokens by argmax with the KV
    cache; eos does NOT stop it (its first position is recorded in
    "greedy_first_eos", -1 if none). "greedy_text" is the decoded continuation
    (skip_special_tokens=False); "greedy_text_until_eos" stops before the first eos.
  * "greedy_margins": per greedy step, top-1 minus top-2 logit, so a comparison can
    tell near-ties (where fp16/accumulation-order differences may legitimately flip
    the argmax) from real disagreements.

Reproducible: fixed prompts, one CPU thread, deterministic algorithms; the date in
golden.json is kept from the previous golden.json when nothing else changed
(SOURCE_DATE_EPOCH overrides it). Running it twice gives identical files.

Environment: scripts/golden_env.sh builds .cache/venv-golden (Debian python3-torch
1.13 + scripts/requirements-golden.txt). Loads only from the local directory
(HF_HUB_OFFLINE=1).
"""

import argparse
import datetime
import hashlib
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import transformers  # noqa: E402
import tokenizers  # noqa: E402
from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
GREEDY_TOKENS = 64
FORMAT_VERSION = 1

CHAT_QUESTION = "What is the capital of France?"
CHAT_EXPECT = "Paris"

LONG_PROSE = (
    "The history of the lighthouse is, in many ways, the history of coastal trade itself. "
    "Long before electric lamps and rotating lenses, sailors relied on fires lit on hilltops "
    "to warn them of rocks and to guide them toward safe harbours. The most famous of the "
    "ancient lights stood on the island of Pharos, near Alexandria, where a tower more than a "
    "hundred metres tall carried a flame that could be seen from far out at sea. For centuries "
    "travellers described it as one of the wonders of the world, and its name survives in the "
    "word for lighthouse in several European languages.\n\n"
    "During the Middle Ages, many lights were kept by monks or by local guilds, who charged "
    "passing ships a small fee for the service. The fuel was wood, coal or tallow candles, and "
    "the light was weak and unreliable: a storm could extinguish it at exactly the moment it "
    "was most needed. Keepers lived hard, lonely lives, climbing the stairs several times each "
    "night to trim wicks, clean soot from the glass and carry fuel to the lantern room.\n\n"
    "Everything changed in the early nineteenth century, when the French physicist Augustin "
    "Fresnel designed a lens made of concentric rings of glass prisms. His lens gathered light "
    "that would otherwise have been wasted and bent it into a single powerful beam. A lamp that "
    "had once been visible for a few miles could now be seen from more than twenty, and within "
    "a few decades Fresnel lenses had been installed along coastlines all over the world. Later "
    "inventions brought clockwork mechanisms that turned the lens, giving each lighthouse its own "
    "pattern of flashes so that a navigator could identify it at night.\n\n"
    "Today most lighthouses are automated, and satellite navigation has made them far less "
    "important than they once were. Yet many are still maintained, partly as a backup for when "
    "electronic systems fail and partly because people have grown fond of them. Visitors climb "
    "their spiral staircases, look out over the water, and imagine the keepers who once spent "
    "long winter nights making sure that the light never went out. In summary, the lighthouse"
)

# (name, kind, text or question). Order is fixed: index k names the logits files.
PROMPTS = [
    ("short_en", "text", "The capital of France is"),
    ("story", "text", "Once upon a time, there was a little robot who"),
    ("digits", "text", "Count from 1 to 20: 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12,"),
    ("chat_capital", "chat", CHAT_QUESTION),
    ("long_prose", "text", LONG_PROSE),
    ("korean", "text", "대한민국의 수도는 서울입니다. 서울은 한강을 따라 위치한 도시로,"),
    ("code", "text",
     "def fibonacci(n):\n"
     "    \"\"\"Return the n-th Fibonacci number.\"\"\"\n"
     "    if n < 2:\n"
     "        return n\n"),
    ("mixed_unicode", "text",
     "Café déjà vu — naïve résumé…  Price: €12.50 (≈ $13).\n\n\tTabs,   spaces and emoji 🙂 here:"),
]
ALL_POSITIONS_PROMPT = 0  # index into PROMPTS whose logits are stored at every position


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def write_f32(path: Path, arr: np.ndarray) -> None:
    a = np.ascontiguousarray(arr, dtype="<f4")
    path.write_bytes(a.tobytes())
    print(f"  wrote {path.relative_to(REPO) if path.is_relative_to(REPO) else path}"
          f"  shape={list(arr.shape)} float32 LE  {path.stat().st_size} bytes")


def greedy(model, ids: list[int], n_new: int, eos_id: int):
    """Exactly n_new argmax tokens with the KV cache; eos does not stop it."""
    input_ids = torch.tensor([ids], dtype=torch.long)
    out = model(input_ids=input_ids, use_cache=True)
    past = out.past_key_values
    logits = out.logits[0, -1].float()
    tokens, margins = [], []
    for step in range(n_new):
        top2 = torch.topk(logits, 2)
        tok = int(torch.argmax(logits))  # first maximal index, like np.argmax
        tokens.append(tok)
        margins.append(round(float(top2.values[0] - top2.values[1]), 5))
        if step + 1 == n_new:
            break
        out = model(input_ids=torch.tensor([[tok]], dtype=torch.long),
                    past_key_values=past, use_cache=True)
        past = out.past_key_values
        logits = out.logits[0, -1].float()
    first_eos = tokens.index(eos_id) if eos_id in tokens else -1
    return tokens, margins, first_eos


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model-dir", default=str(REPO / "models" / "SmolLM2-135M-Instruct"))
    ap.add_argument("--out", default=str(REPO / "tests" / "golden"))
    args = ap.parse_args()
    model_dir = Path(args.model_dir).resolve()
    out_dir = Path(args.out).resolve()
    if not (model_dir / "config.json").is_file():
        print(f"make_golden: no model at {model_dir} (run `make model` first)", file=sys.stderr)
        return 1
    out_dir.mkdir(parents=True, exist_ok=True)

    torch.manual_seed(0)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)

    t_start = time.time()
    tok = AutoTokenizer.from_pretrained(str(model_dir), local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(
        str(model_dir), torch_dtype=torch.float32, local_files_only=True)
    model.eval()
    cfg = model.config
    vocab = cfg.vocab_size
    eos_id = tok.eos_token_id
    t_loaded = time.time()
    print(f"make_golden: {type(model).__name__} from {model_dir} ({cfg.num_hidden_layers} layers, "
          f"vocab {vocab}, attn={getattr(cfg, '_attn_implementation', '?')}), "
          f"tokenizer {type(tok).__name__}, loaded in {t_loaded - t_start:.1f}s")

    prompts_meta = []
    txt_lines = [
        "# Golden reference ids (generated by scripts/make_golden.py; see golden.json).",
        "# prompt <k> <name> | ids <n> ... | greedy <n> ... | logits <file> <n_floats>"
        " | all_logits <file> <rows> <cols>",
        f"vocab {vocab}",
        f"greedy_tokens {GREEDY_TOKENS}",
    ]
    with torch.no_grad():
        for k, (name, kind, text) in enumerate(PROMPTS):
            t0 = time.time()
            entry = {"index": k, "name": name, "kind": kind}
            if kind == "chat":
                messages = [{"role": "user", "content": text}]
                prompt = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
                ids_template = list(tok.apply_chat_template(messages, tokenize=True,
                                                            add_generation_prompt=True))
                entry["messages"] = messages
                entry["add_generation_prompt"] = True
            else:
                prompt = text
                ids_template = None
            ids = tok(prompt).input_ids
            ids_nospecial = tok(prompt, add_special_tokens=False).input_ids
            if ids != ids_nospecial:
                raise SystemExit(f"{name}: add_special_tokens changes the ids; update the conventions")
            if ids_template is not None and ids_template != ids:
                raise SystemExit(f"{name}: apply_chat_template(tokenize=True) != tokenizer(text)")

            out = model(input_ids=torch.tensor([ids], dtype=torch.long), use_cache=False)
            logits_all = out.logits[0].float().numpy()  # (T, V)
            assert logits_all.shape == (len(ids), vocab), logits_all.shape
            last = logits_all[-1]
            lfile = f"logits_{k}.f32"
            write_f32(out_dir / lfile, last)
            entry.update({
                "text": prompt,
                "n_tokens": len(ids),
                "ids": ids,
                "logits_file": lfile,
                "logits_shape": [vocab],
                "last_argmax": int(np.argmax(last)),
                "last_max_logit": float(last.max()),
                "last_min_logit": float(last.min()),
            })
            if k == ALL_POSITIONS_PROMPT:
                afile = f"logits_all_{k}.f32"
                write_f32(out_dir / afile, logits_all)
                entry["logits_all_file"] = afile
                entry["logits_all_shape"] = [len(ids), vocab]
                entry["argmax_per_position"] = [int(i) for i in logits_all.argmax(axis=-1)]

            g_ids, margins, first_eos = greedy(model, ids, GREEDY_TOKENS, eos_id)
            if g_ids[0] != entry["last_argmax"]:
                raise SystemExit(f"{name}: cached greedy step 0 disagrees with the full forward")
            g_text = tok.decode(g_ids, skip_special_tokens=False)
            g_until = tok.decode(g_ids[:first_eos] if first_eos >= 0 else g_ids,
                                 skip_special_tokens=False)
            entry.update({
                "greedy_ids": g_ids,
                "greedy_text": g_text,
                "greedy_text_until_eos": g_until,
                "greedy_first_eos": first_eos,
                "greedy_margins": margins,
            })
            if kind == "chat":
                entry["expect_substring"] = CHAT_EXPECT
                entry["answer_correct"] = CHAT_EXPECT in g_until
            prompts_meta.append(entry)

            txt_lines.append(f"prompt {k} {name}")
            txt_lines.append(f"ids {len(ids)} " + " ".join(map(str, ids)))
            txt_lines.append(f"greedy {len(g_ids)} " + " ".join(map(str, g_ids)))
            txt_lines.append(f"logits {lfile} {vocab}")
            if "logits_all_file" in entry:
                txt_lines.append(f"all_logits {entry['logits_all_file']} {len(ids)} {vocab}")
            print(f"[{k}] {name}: {len(ids)} prompt tokens, {time.time() - t0:.1f}s, "
                  f"first eos at {first_eos}, min margin {min(margins):.4f}\n"
                  f"    greedy: {g_until!r}")

    meta = {
        "format_version": FORMAT_VERSION,
        "generator": "scripts/make_golden.py",
        "library": {
            "transformers": transformers.__version__,
            "torch": torch.__version__,
            "numpy": np.__version__,
            "tokenizers": tokenizers.__version__,
            "python": sys.version.split()[0],
        },
        "device": "cpu",
        "dtype": "float32 (weights upcast from the directory's stored dtype)",
        "torch_threads": torch.get_num_threads(),
        "model": {
            "dir": os.path.relpath(model_dir, REPO) if model_dir.is_relative_to(REPO) else str(model_dir),
            "model_type": cfg.model_type,
            "vocab_size": vocab,
            "eos_token_id": eos_id,
            "bos_token_id": tok.bos_token_id,
            "stored_dtype": json.loads((model_dir / "config.json").read_text()).get("torch_dtype", ""),
            "sha256": {f: sha256_file(model_dir / f) for f in
                       ("model.safetensors", "config.json", "tokenizer.json", "tokenizer_config.json")
                       if (model_dir / f).is_file()},
        },
        "conventions": {
            "prompt_ids": "tokenizer(text).input_ids; add_special_tokens adds nothing for this "
                          "tokenizer (no BOS/EOS); special tokens in the text are single ids",
            "logits": "raw little-endian float32, no header; logits_<k>.f32 = last position "
                      "(vocab floats), logits_all_<k>.f32 = every position (n_tokens x vocab, row-major)",
            "greedy": f"exactly {GREEDY_TOKENS} argmax tokens with the KV cache, eos does not stop; "
                      "greedy_first_eos = index of the first eos in greedy_ids or -1; "
                      "greedy_margins = top1 - top2 logit per step",
            "decode": "tokenizer.decode(ids, skip_special_tokens=False)",
        },
        "greedy_tokens": GREEDY_TOKENS,
        "all_positions_prompt": ALL_POSITIONS_PROMPT,
        "prompts": prompts_meta,
    }

    # Keep the previous date when nothing else changed, so reruns are byte-identical.
    gpath = out_dir / "golden.json"
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    if "SOURCE_DATE_EPOCH" in os.environ:
        date = datetime.datetime.fromtimestamp(int(os.environ["SOURCE_DATE_EPOCH"]),
                                               datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    elif gpath.is_file():
        try:
            old = json.loads(gpath.read_text(encoding="utf-8"))
            old_date = old.pop("date", None)
            if old_date and old == meta:
                date = old_date
        except (ValueError, OSError):
            pass
    meta_out = {"date": date, **meta}
    gpath.write_text(json.dumps(meta_out, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    print(f"  wrote {gpath.relative_to(REPO) if gpath.is_relative_to(REPO) else gpath}"
          f"  {gpath.stat().st_size} bytes")
    tpath = out_dir / "golden.txt"
    tpath.write_text("\n".join(txt_lines) + "\n", encoding="utf-8")
    print(f"  wrote {tpath.relative_to(REPO) if tpath.is_relative_to(REPO) else tpath}"
          f"  {tpath.stat().st_size} bytes")

    chat = [p for p in prompts_meta if p["kind"] == "chat"]
    for p in chat:
        if not p["answer_correct"]:
            print(f"make_golden: WARNING: chat answer {p['greedy_text_until_eos']!r} "
                  f"lacks {p['expect_substring']!r}", file=sys.stderr)
    print(f"make_golden: done in {time.time() - t_start:.1f}s "
          f"(model load {t_loaded - t_start:.1f}s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
