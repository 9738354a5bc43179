"""Parity with the `tokenizers` package on tokenizer.json variants that the
real tokenizers do not exercise: every Split behaviour and invert, string
Split patterns, Metaspace pre-tokenizers and decoders, unk/fuse_unk without
byte fallback, "a b" merges, ByteLevel with add_prefix_space, Digits groups,
templates inside a Sequence, added-token options (lstrip, rstrip,
single_word, normalized), continuing_subword_prefix / end_of_word_suffix,
and the load errors for what is not supported.

Each variant is written to a temporary directory; both implementations load
the same file.
"""

import copy
import json
import subprocess
from pathlib import Path

import pytest

tokenizers = pytest.importorskip("tokenizers")

ROOT = Path(__file__).resolve().parents[2]
BIN = ROOT / "build" / "bin" / "llm_tokenize"
CORPUS = json.loads((ROOT / "tests" / "fixtures" / "tokenizer" / "corpus.json").read_text())
# Lines for the added-token options below.
CORPUS += ["Hello\u0120zz\u0120SP <mask> x<mask>y <think>  a  </think>b </think> c <mask>",
           "  <|im_start|>  x  <|im_end|>  <|im_end|>x", "<tool_call>A\u030a</tool_call>"]
SHARED = ROOT / ".." / "shared" / "tokenizers"

def load(name):
    path = SHARED / name / "tokenizer.json"
    if not path.exists():
        pytest.skip(f"{path} is missing")
    return json.loads(path.read_text())


def metaspace(scheme, split):
    return {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": scheme, "split": split}


def spm_variants():
    base = load("llama2-spm")
    regex = load("llama3")["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"]
    out = {}

    v = copy.deepcopy(base)  # transformers' legacy=False Llama conversion
    v["normalizer"] = None
    v["pre_tokenizer"] = metaspace("first", False)
    out["spm_metaspace_first"] = v

    v = copy.deepcopy(base)
    v["normalizer"] = None
    v["pre_tokenizer"] = metaspace("always", True)
    v["decoder"] = {"type": "Sequence", "decoders": [metaspace("always", True),
                                                     {"type": "ByteFallback"}]}
    out["spm_metaspace_always_split"] = v

    v = copy.deepcopy(base)
    v["normalizer"] = {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}
    v["pre_tokenizer"] = metaspace("never", True)
    v["decoder"] = {"type": "Sequence", "decoders": [
        {"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "},
        {"type": "ByteFallback"}, {"type": "Strip", "content": " ", "start": 2, "stop": 0}]}
    out["spm_metaspace_never_strip_each"] = v

    for fuse in (True, False):
        v = copy.deepcopy(base)
        v["model"]["byte_fallback"] = False
        v["model"]["fuse_unk"] = fuse
        out[f"spm_unk_fuse_{fuse}"] = v

    behaviors = ["Removed", "Isolated", "MergedWithPrevious", "MergedWithNext", "Contiguous"]
    for behavior in behaviors:
        for invert in (False, True):
            v = copy.deepcopy(base)
            v["pre_tokenizer"] = {"type": "Split", "pattern": {"Regex": regex},
                                  "behavior": behavior, "invert": invert}
            out[f"spm_split_{behavior}_{invert}"] = v
    for behavior in behaviors:
        v = copy.deepcopy(base)
        v["normalizer"] = None
        v["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"String": "  "}, "behavior": behavior,
             "invert": False},
            {"type": "Digits", "individual_digits": False},
            metaspace("first", True)]}
        out[f"spm_string_split_{behavior}"] = v
    return out


def bytelevel_variants():
    base = load("qwen3")
    out = {}

    v = copy.deepcopy(base)
    v["model"]["merges"] = [" ".join(m) for m in v["model"]["merges"]]
    v["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [
        {"type": "Digits", "individual_digits": False},
        {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True,
         "use_regex": True}]}
    v["post_processor"] = {"type": "Sequence", "processors": [
        {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": False,
         "use_regex": True},
        {"type": "TemplateProcessing",
         "single": [{"SpecialToken": {"id": "<|im_start|>", "type_id": 0}},
                    {"Sequence": {"id": "A", "type_id": 0}},
                    {"SpecialToken": {"id": "<|im_end|>", "type_id": 0}}],
         "pair": [{"Sequence": {"id": "A", "type_id": 0}},
                  {"Sequence": {"id": "B", "type_id": 1}}],
         "special_tokens": {
             "<|im_start|>": {"id": "<|im_start|>", "ids": [151644], "tokens": ["<|im_start|>"]},
             "<|im_end|>": {"id": "<|im_end|>", "ids": [151645], "tokens": ["<|im_end|>"]}}}]}
    out["bl_string_merges_prefix_space_template"] = v

    v = copy.deepcopy(base)
    options = {"<think>": dict(lstrip=True, rstrip=True), "</think>": dict(single_word=True),
               "<tool_call>": dict(normalized=True), "<|im_start|>": dict(lstrip=True),
               "<|im_end|>": dict(rstrip=True, single_word=True)}
    for t in v["added_tokens"]:
        t.update(options.get(t["content"], {}))
    v["added_tokens"].append({"id": 151669, "content": "<mask>", "single_word": True,
                              "lstrip": True, "rstrip": False, "normalized": True,
                              "special": False})
    # Tokens the vocabulary already has keep their vocabulary ids, whatever "id" says.
    for i, (content, special) in enumerate([("\u0120zz", False), ("\u0120SP", True)]):
        v["added_tokens"].append({"id": 151670 + i, "content": content, "single_word": False,
                                  "lstrip": False, "rstrip": False, "normalized": False,
                                  "special": special})
    out["bl_added_token_options"] = v
    return out


def trained_variants():
    """Small BPE models trained on the corpus, with subword prefix and word suffix."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    out = {}
    bl = Tokenizer(models.BPE(continuing_subword_prefix="##", end_of_word_suffix="</w>"))
    bl.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bl.decoder = decoders.ByteLevel()
    bl.train_from_iterator(CORPUS, trainers.BpeTrainer(
        vocab_size=600, continuing_subword_prefix="##", end_of_word_suffix="</w>",
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False))
    out["trained_bytelevel_affixes"] = json.loads(bl.to_str())

    ch = Tokenizer(models.BPE(unk_token="<unk>", continuing_subword_prefix="##"))
    ch.pre_tokenizer = pre_tokenizers.Metaspace()
    ch.decoder = decoders.Metaspace()
    ch.train_from_iterator(CORPUS[:40], trainers.BpeTrainer(
        vocab_size=300, special_tokens=["<unk>"], continuing_subword_prefix="##",
        show_progress=False))
    out["trained_char_unk_prefix"] = json.loads(ch.to_str())
    return out


VARIANT_SETS = {"spm": spm_variants, "bytelevel": bytelevel_variants, "trained": trained_variants}


@pytest.fixture(scope="module", params=list(VARIANT_SETS))
def variants(request, tmp_path_factory):
    made = VARIANT_SETS[request.param]()
    root = tmp_path_factory.mktemp(request.param)
    paths = {}
    for name, tj in made.items():
        p = root / name / "tokenizer.json"
        p.parent.mkdir()
        p.write_text(json.dumps(tj, ensure_ascii=False))
        paths[name] = p
    return paths


def run_json(path, lines, *flags):
    if not BIN.exists():
        pytest.skip("build/bin/llm_tokenize is not built (run make)")
    proc = subprocess.run([str(BIN), "--model", str(path), "--json", *flags],
                          input="".join(line + "\n" for line in lines).encode(),
                          capture_output=True, cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    out = proc.stdout.decode("utf-8").split("\n")
    assert len(out) - 1 == len(lines)
    return [json.loads(line) for line in out[:-1]]


def test_variants_match_reference(variants):
    failures = []
    for name, path in variants.items():
        ref = tokenizers.Tokenizer.from_file(str(path))
        want = [e.ids for e in ref.encode_batch(CORPUS, add_special_tokens=True)]
        got = run_json(path, [json.dumps(s) for s in CORPUS])
        failures += [f"{name} encode {s[:50]!r}: want {w[:20]} got {g[:20]}"
                     for s, w, g in zip(CORPUS, want, got) if w != g]
        want_text = ref.decode_batch(want, skip_special_tokens=False)
        got_text = run_json(path, [json.dumps(i) for i in want], "--decode")
        failures += [f"{name} decode {s[:50]!r}: want {w[:60]!r} got {g[:60]!r}"
                     for s, w, g in zip(CORPUS, want_text, got_text) if w != g]
        pieces = run_json(path, [json.dumps(i) for i in want], "--decode", "--stream")
        failures += [f"{name} stream {s[:50]!r}: want {w[:60]!r} got {p[:8]!r}"
                     for s, w, p in zip(CORPUS, want_text, pieces) if "".join(p) != w]
    assert not failures, f"{len(failures)} mismatches:\n" + "\n".join(failures[:15])


@pytest.mark.parametrize("mutate,message", [
    (lambda v: v["pre_tokenizer"]["pretokenizers"][0]["pattern"].update(Regex=r"\w+|\s+"),
     r"Split regex \w+|\s+ is none of the known"),
    (lambda v: v.update(normalizer={"type": "Lowercase"}), 'normalizer type "Lowercase"'),
    (lambda v: v["model"].update(type="Unigram"), 'model type "Unigram"'),
    (lambda v: v["model"]["merges"].append(["Ġzzzq", "zzzq"]), "not in the vocab"),
    (lambda v: v.update(decoder={"type": "WordPiece"}), 'decoder type "WordPiece"'),
])
def test_unsupported_parts_are_clear_errors(tmp_path, mutate, message):
    v = load("qwen3")
    mutate(v)
    path = tmp_path / "tokenizer.json"
    path.write_text(json.dumps(v))
    if not BIN.exists():
        pytest.skip("build/bin/llm_tokenize is not built (run make)")
    proc = subprocess.run([str(BIN), "--model", str(path)], input=b"hi", capture_output=True,
                          timeout=60)
    assert proc.returncode != 0
    assert message in proc.stderr.decode(), proc.stderr.decode()
