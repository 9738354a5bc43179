#!/usr/bin/env python3
"""Reference chat-template renderer: Python's jinja2, set up exactly as Hugging Face
transformers' apply_chat_template sets it up (ImmutableSandboxedEnvironment with
trim_blocks, lstrip_blocks, loopcontrols and the {% generation %} tag; tojson as
json.dumps(ensure_ascii=False, indent, separators, sort_keys); raise_exception and
strftime_now globals; the tokenizer's special tokens, messages, tools, documents=None
and add_generation_prompt as variables).

Render a conversation (a JSON array of messages on stdin) with a model's template:

    scripts/render_chat_template.py --model models/SmolLM2-135M-Instruct < chat.json

Regenerate the expected outputs of the C renderer's tests (every template of
tests/fixtures/chat_templates/templates.json over its conversations):

    scripts/render_chat_template.py --update-fixture
"""

import argparse
import json
import os
import sys
from datetime import datetime

import jinja2
import jinja2.ext
from jinja2 import nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment

FIXTURE_DIR = "tests/fixtures/chat_templates"
SPECIAL_TOKEN_KEYS = ("bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token",
                      "mask_token")


class GenerationTag(jinja2.ext.Extension):
    """transformers' {% generation %}...{% endgeneration %} (its AssistantTracker): the body renders
    as is; transformers only records where it lands."""

    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
        return nodes.CallBlock(self.call_method("_render"), [], [], body).set_lineno(lineno)

    def _render(self, caller):
        return caller()


def make_environment():
    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators,
                          sort_keys=sort_keys)

    def strftime_now(format):
        return datetime.now().strftime(format)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[GenerationTag, jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


def _token_text(value):
    if isinstance(value, dict):  # a serialized AddedToken
        value = value.get("content")
    return value if isinstance(value, str) else None


def load_model_template(model_dir):
    """(template source, special tokens) of a model directory, as the C loader reads them:
    chat_template.jinja, else "chat_template" of tokenizer_config.json (a string, or the
    "default" of a list of named templates)."""
    config = {}
    config_path = os.path.join(model_dir, "tokenizer_config.json")
    if os.path.exists(config_path):
        with open(config_path, encoding="utf-8") as f:
            config = json.load(f)
    jinja_path = os.path.join(model_dir, "chat_template.jinja")
    if os.path.exists(jinja_path):
        with open(jinja_path, encoding="utf-8", newline="") as f:
            source = f.read()
    else:
        source = config.get("chat_template")
        if isinstance(source, list):
            source = next((t["template"] for t in source if t.get("name") == "default"), None)
        if not isinstance(source, str):
            raise ValueError(f"{model_dir}: the model has no chat template")
    special = {}
    for key in SPECIAL_TOKEN_KEYS:
        text = _token_text(config.get(key))
        if text is not None:
            special[key] = text
    if isinstance(config.get("additional_special_tokens"), list):
        special["additional_special_tokens"] = [
            t for t in map(_token_text, config["additional_special_tokens"]) if t is not None]
    return source, special


def render(source, messages, tools=None, add_generation_prompt=False, special_tokens=None,
           variables=None, env=None):
    """Renders like transformers: render(messages=, tools=, documents=None,
    add_generation_prompt=, **special_tokens, **variables)."""
    env = env or make_environment()
    kwargs = {**(special_tokens or {}), **(variables or {})}
    return env.from_string(source).render(messages=messages, tools=tools, documents=None,
                                          add_generation_prompt=add_generation_prompt, **kwargs)


def template_source(entry, root="."):
    """(source, special tokens) of a templates.json entry."""
    if "model" in entry:
        return load_model_template(os.path.join(root, entry["model"]))
    special = {k: entry[k] for k in ("bos_token", "eos_token") if k in entry}
    if "source" in entry:
        return entry["source"], special
    with open(os.path.join(root, entry["file"]), encoding="utf-8", newline="") as f:
        return f.read(), special


def fixture_cases(root="."):
    """Every (template, conversation, add_generation_prompt) case of the fixture, rendered
    with jinja2: the expected bytes, or the error jinja2 raised ("raised" holds the message
    of a raise_exception, which the C renderer must pass through)."""
    with open(os.path.join(root, FIXTURE_DIR, "templates.json"), encoding="utf-8") as f:
        templates = json.load(f)
    with open(os.path.join(root, FIXTURE_DIR, "conversations.json"), encoding="utf-8") as f:
        conversations = json.load(f)
    env = make_environment()
    cases = []
    for entry in templates:
        source, special = template_source(entry, root)
        for conv_name in entry.get("conversations", list(conversations)):
            conv = conversations[conv_name]
            for agp in entry.get("generation_prompt", [False, True]):
                case = {"template": entry["name"], "conversation": conv_name,
                        "add_generation_prompt": agp}
                try:
                    case["output"] = render(source, conv["messages"], conv.get("tools"), agp,
                                            special, conv.get("vars"), env)
                except jinja2.exceptions.TemplateError as e:
                    case["error"] = f"{type(e).__name__}: {e}"
                    if type(e) is jinja2.exceptions.TemplateError:
                        case["raised"] = str(e)
                except Exception as e:  # TypeError, ZeroDivisionError...: jinja2 lets them through
                    case["error"] = f"{type(e).__name__}: {e}"
                cases.append(case)
    return cases


def fixture_text(cases):
    return json.dumps(cases, ensure_ascii=False, indent=1) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", help="model directory (chat_template.jinja / tokenizer_config.json)")
    ap.add_argument("--template", help="template file instead of the model's")
    ap.add_argument("--tools", help="JSON file with the tool list")
    ap.add_argument("--var", action="append", default=[], metavar="NAME=JSON",
                    help="extra template variable, e.g. enable_thinking=false")
    ap.add_argument("--no-generation-prompt", action="store_true")
    ap.add_argument("--update-fixture", action="store_true",
                    help=f"rewrite {FIXTURE_DIR}/expected.json")
    args = ap.parse_args()
    if args.update_fixture:
        path = os.path.join(FIXTURE_DIR, "expected.json")
        cases = fixture_cases()
        with open(path, "w", encoding="utf-8") as f:
            f.write(fixture_text(cases))
        print(f"{path}: {len(cases)} cases")
        return 0
    if not args.model and not args.template:
        ap.error("--model or --template is required")
    source, special = load_model_template(args.model) if args.model else ("", {})
    if args.template:
        with open(args.template, encoding="utf-8", newline="") as f:
            source = f.read()
    tools = None
    if args.tools:
        with open(args.tools, encoding="utf-8") as f:
            tools = json.load(f)
    variables = {}
    for v in args.var:
        name, _, value = v.partition("=")
        variables[name] = json.loads(value)
    messages = json.load(sys.stdin)
    sys.stdout.write(render(source, messages, tools, not args.no_generation_prompt, special,
                            variables))
    return 0


if __name__ == "__main__":
    sys.exit(main())
