"""The C chat-template renderer against Python's jinja2 (pinned in
scripts/requirements.txt), configured as transformers configures it.

tests/fixtures/chat_templates/expected.json holds, for every template of
templates.json over its conversations (conversations.json), with and without the
generation prompt, the bytes jinja2 renders or the error it raises. Here jinja2
re-renders every case, so the fixture is provably jinja2's output; the C unit test
chat_template_matches_jinja2_fixture renders the same cases and compares bytes.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

jinja2 = pytest.importorskip("jinja2")

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "tests" / "fixtures" / "chat_templates"
UNIT_TESTS = ROOT / "build" / "bin" / "unit_tests"
SMOLLM2 = ROOT / "models" / "SmolLM2-135M-Instruct"

sys.path.insert(0, str(ROOT / "scripts"))
import render_chat_template as ref  # noqa: E402

# features_strings.jinja checks that an unknown escape such as \d stays as written.
pytestmark = pytest.mark.filterwarnings("ignore:invalid escape sequence:DeprecationWarning")


def test_jinja2_is_the_pinned_version():
    assert jinja2.__version__ == "3.1.6"


def model_dirs_present():
    templates = json.loads((FIXTURE / "templates.json").read_text(encoding="utf-8"))
    return all((ROOT / t["model"]).is_dir() for t in templates if "model" in t)


def test_fixture_is_what_jinja2_renders():
    if not model_dirs_present():
        pytest.skip("../shared/tokenizers is missing: the Llama-3 and Qwen3 cases cannot be re-rendered")
    want = ref.fixture_text(ref.fixture_cases(str(ROOT)))
    got = (FIXTURE / "expected.json").read_text(encoding="utf-8")
    assert got == want, ("tests/fixtures/chat_templates/expected.json is stale: run "
                         "scripts/render_chat_template.py --update-fixture")


def test_fixture_covers_templates_and_features():
    cases = json.loads((FIXTURE / "expected.json").read_text(encoding="utf-8"))
    rendered = {c["template"] for c in cases if "output" in c}
    for name in ("smollm2", "llama2", "llama3", "qwen3", "tools_macros"):
        assert name in rendered
    # Tool lists, tool calls and tool responses go through Qwen3's template.
    qwen = {c["conversation"] for c in cases if c["template"] == "qwen3" and "output" in c}
    assert {"tools", "tool_calls", "tool_calls_string_args", "multi_step_tools", "reasoning"} <= qwen
    # raise_exception's message must come through the C renderer.
    assert any(c.get("raised", "").startswith("Conversation roles must alternate") for c in cases
               if c["template"] == "llama2")


def test_c_renderer_matches_fixture():
    if not UNIT_TESTS.exists():
        pytest.skip("build/bin/unit_tests is not built (run make)")
    proc = subprocess.run([str(UNIT_TESTS), "chat_template_"], cwd=ROOT, capture_output=True,
                          timeout=300)
    out = proc.stdout.decode(errors="replace") + proc.stderr.decode(errors="replace")
    assert proc.returncode == 0, out
    assert "ok   chat_template_matches_jinja2_fixture" in out, out


def test_smollm2_model_template_is_the_fixture_template():
    """The converted default model's own template renders like the fixture's copy."""
    if not (SMOLLM2 / "tokenizer_config.json").exists():
        pytest.skip("no converted SmolLM2 model (make model)")
    model_source, special = ref.load_model_template(str(SMOLLM2))
    copy = (FIXTURE / "templates" / "smollm2.jinja").read_text(encoding="utf-8")
    convs = json.loads((FIXTURE / "conversations.json").read_text(encoding="utf-8"))
    for name in ("single_user", "system_multi_turn", "tricky_text"):
        for agp in (False, True):
            msgs = convs[name]["messages"]
            assert ref.render(model_source, msgs, None, agp, special) == \
                ref.render(copy, msgs, None, agp, special)


def test_reference_cli(tmp_path):
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({
        "bos_token": {"__type": "AddedToken", "content": "<s>"},
        "chat_template": [{"name": "default", "template": "{{ bos_token }}{% for m in messages %}"
                                                          "{{ m.role }}:{{ m.content }};{% endfor %}"
                                                          "{% if add_generation_prompt %}A:{% endif %}"
                                                          "{{ x | default('') }}"}]}))
    msgs = json.dumps([{"role": "user", "content": "hé"}])
    run = lambda *a: subprocess.run([sys.executable, str(ROOT / "scripts" / "render_chat_template.py"),
                                     "--model", str(tmp_path), *a], input=msgs.encode(),
                                    capture_output=True, check=True).stdout.decode()
    assert run() == "<s>user:hé;A:"
    assert run("--no-generation-prompt", "--var", "x=[1]") == "<s>user:hé;[1]"
