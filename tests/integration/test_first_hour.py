"""The first hour of a new user (issue 15), llm_server side: a busy port is
an error, a --max-model-len past the model's is refused, an unknown flag
names the closest one, the waiting gauge counts the backlog, /docs and a valid
/openapi.json, /generate streams, /chat's full_text, the memory gauges."""

import json
import os
import subprocess
import threading
import time

import pytest

from server_util import ENGINE_ARGS, MODEL, SERVER_BIN, Server, free_port

pytestmark = pytest.mark.skipif(not (MODEL / ".complete").exists(), reason="default model absent: make model")


def run_server(*args, timeout=120):
    return subprocess.run([str(SERVER_BIN), "--model", str(MODEL), *ENGINE_ARGS, *map(str, args)],
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    log = tmp_path_factory.mktemp("first_hour") / "server.log"
    s = Server(log_path=str(log))
    yield s
    assert s.stop() == 0, s.log_text()


def test_second_server_on_a_busy_port_exits_non_zero(srv):
    t0 = time.monotonic()
    p = run_server("--port", srv.port, timeout=60)
    assert p.returncode == 1, p.stderr
    assert f"cannot listen on 127.0.0.1:{srv.port}" in p.stderr and "in use" in p.stderr
    assert "serving" not in p.stderr and time.monotonic() - t0 < 30  # before loading the model
    # the first server still has the port to itself and answers
    st, _, body = srv.request("GET", "/health")
    assert st == 200 and body["status"] == "ok"


def test_max_model_len_past_the_models_is_refused_unless_overridden(tmp_path):
    p = run_server("--port", free_port(), "--max-model-len", 100000)
    assert p.returncode == 1
    assert "--max-model-len 100000 is larger than this model's maximum context length 8192" in p.stderr
    assert "--allow-long-max-model-len" in p.stderr and "serving" not in p.stderr
    # the override is explicit, warns, and is what the server then reports
    with Server("--max-model-len", "9000", "--allow-long-max-model-len",
                log_path=str(tmp_path / "s.log")) as s:
        st, _, m = s.request("GET", "/v1/models")
        assert st == 200 and m["data"][0]["max_model_len"] == 9000
        assert "warning: --max-model-len 9000 exceeds the model's maximum context length 8192" in s.log_text()
        assert "maximum concurrency for 9000 tokens" in s.log_text()
    # a shorter one is used as given, in the log and in the API alike
    with Server("--max-model-len", "1024", log_path=str(tmp_path / "s2.log")) as s:
        assert s.request("GET", "/v1/models")[2]["data"][0]["max_model_len"] == 1024
        assert "maximum concurrency for 1024 tokens" in s.log_text()


@pytest.mark.parametrize("flag,near", [("--gpu-mem-util", "--gpu-memory-utilization"),
                                       ("--max-num-sequences", "--max-num-seqs"),
                                       ("--model-name", None), ("--prot", "--port")])
def test_unknown_flag_names_the_closest(flag, near):
    p = subprocess.run([str(SERVER_BIN), "--model", str(MODEL), flag, "1"], capture_output=True,
                       text=True, timeout=30)
    assert p.returncode == 2
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and f"unknown flag '{flag}'" in lines[0], p.stderr
    if near:
        assert f"did you mean {near}?" in lines[0]
    p = subprocess.run([str(SERVER_BIN), "--model", str(MODEL), "--port"], capture_output=True,
                       text=True, timeout=30)
    assert p.returncode == 2 and "--port needs a value" in p.stderr


def test_waiting_gauge_counts_requests_submitted_during_a_long_step(tmp_path):
    """A 1900-token prompt is one step of seconds; requests sent meanwhile
    wait, and /metrics says so while the step runs (they used to count
    nowhere until the step ended)."""
    with Server("--max-num-batched-tokens", "2048", log_path=str(tmp_path / "s.log")) as s:
        long_prompt = "one two three four five six seven eight nine ten " * 190
        n_short = 12
        results = []

        def send(prompt, max_tokens):
            results.append(s.request("POST", "/v1/completions",
                                     {"prompt": prompt, "max_tokens": max_tokens, "temperature": 0})[0])

        threads = [threading.Thread(target=send, args=(long_prompt, 1))]
        threads[0].start()
        time.sleep(0.3)  # the long prompt's step is running
        threads += [threading.Thread(target=send, args=(f"Count to {i}:", 4)) for i in range(n_short)]
        for t in threads[1:]:
            t.start()
        peak = 0
        end = time.time() + 60
        while time.time() < end and any(t.is_alive() for t in threads):
            m = s.metrics()
            if m["llm_requests_in_flight"] == n_short + 1:
                # every accepted request is counted as running or waiting
                assert m["vllm:num_requests_waiting"] + m["vllm:num_requests_running"] >= n_short, m
            peak = max(peak, m["vllm:num_requests_waiting"])
            time.sleep(0.05)
        for t in threads:
            t.join()
        assert results == [200] * (n_short + 1)
        assert peak >= n_short  # seen waiting while the long step ran


def test_docs_is_swagger_ui_over_a_valid_openapi_document(srv):
    from openapi_spec_validator import validate

    st, _, doc = srv.request("GET", "/openapi.json")
    assert st == 200
    validate(doc)  # raises on an invalid OpenAPI 3.1 document
    assert doc["components"]["schemas"]["SimpleRequest"]["properties"]["stream"]["type"] == "boolean"
    st, hdrs, page = srv.request("GET", "/docs")
    assert st == 200 and hdrs["Content-Type"].startswith("text/html")
    # make venv installs swagger-ui-py: the page is Swagger UI over /openapi.json
    assert "SwaggerUIBundle" in page and '"/openapi.json"' in page, page[:300]
    for asset, ctype in [("swagger-ui-bundle.js", "application/javascript"), ("swagger-ui.css", "text/css")]:
        st, hdrs, body = srv.request("GET", "/docs/" + asset)
        assert st == 200 and hdrs["Content-Type"].startswith(ctype) and len(body) > 10000
    assert srv.request("GET", "/docs/../server.h")[0] == 404
    assert srv.request("GET", "/docs/nothing.js")[0] == 404
    assert srv.request("POST", "/docs/swagger-ui.css", b"{}")[0] == 404


def test_docs_falls_back_to_the_plain_page_without_swagger_ui(tmp_path):
    p = run_server("--port", free_port(), "--docs-dir", tmp_path)
    assert p.returncode == 2 and f"--docs-dir {tmp_path}: no swagger-ui-bundle.js" in p.stderr
    with Server("--docs-dir", "none", log_path=str(tmp_path / "s.log")) as s:
        st, _, page = s.request("GET", "/docs")
        assert st == 200 and "/v1/chat/completions" in page and "SwaggerUIBundle" not in page
        assert s.request("GET", "/docs/swagger-ui.css")[0] == 404


def sse_payloads(url, path, body):
    import http.client

    host, port = url.removeprefix("http://").split(":")
    c = http.client.HTTPConnection(host, int(port), timeout=120)
    c.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
    r = c.getresponse()
    assert r.status == 200 and r.getheader("Content-Type") == "text/event-stream"
    out = [line[6:].decode().strip() for line in r.read().splitlines() if line.startswith(b"data: ")]
    c.close()
    return out


@pytest.mark.parametrize("path", ["/generate", "/chat"])
def test_simple_api_streams_the_same_text(srv, path):
    body = {"prompt": "What is the capital of France?", "max_tokens": 12, "temperature": 0}
    st, _, whole = srv.request("POST", path, body)
    assert st == 200
    events = sse_payloads(srv.url, path, dict(body, stream=True))
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert "".join(c["text"] for c in chunks) == whole["text"]
    assert all(c["finish_reason"] is None for c in chunks[:-1])
    assert chunks[-1]["finish_reason"] == whole["finish_reason"]
    for k in ["prompt_tokens", "completion_tokens", "total_tokens"]:  # cached_tokens may differ
        assert chunks[-1]["usage"][k] == whole["usage"][k]
    assert chunks[-1]["generated"] == whole["generated"] == whole["usage"]["completion_tokens"]


def test_chat_full_text_parts_prompt_and_answer(srv):
    st, _, r = srv.request("POST", "/chat", {"prompt": "What is the capital of France?",
                                             "max_tokens": 12, "temperature": 0})
    assert st == 200 and r["full_text"] == r["prompt"] + "\n" + r["text"]
    assert "Paris" in r["text"]
    st, _, r = srv.request("POST", "/generate", {"prompt": "The capital of France is", "max_tokens": 3,
                                                 "temperature": 0})
    assert st == 200 and r["full_text"] == r["prompt"] + r["text"]  # a continuation


def test_memory_gauges_say_use_and_reservation(srv):
    m = srv.metrics()
    rss = int(open(f"/proc/{srv.proc.pid}/statm").read().split()[1]) * 4096
    used, reserved = m["llm_device_memory_used_bytes"], m["llm_device_memory_reserved_bytes"]
    assert 0.5 * rss < used < 2 * rss  # CPU backend: the process's resident memory
    assert reserved >= 256 << 20  # weights + workspace + the 256 MiB KV pool
    assert m["llm_device_memory_total_bytes"] > reserved


def test_generation_config_sampling_defaults(tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    for f in MODEL.iterdir():
        (model / f.name).symlink_to(f)
    (model / "generation_config.json").unlink()
    (model / "generation_config.json").write_text(json.dumps(
        {"bos_token_id": 1, "eos_token_id": 2, "temperature": 0.0, "top_k": 1}))
    body = {"prompt": "Once upon a time", "max_tokens": 16}
    for mode, deterministic in [("auto", True), ("vllm", False)]:
        cmd = ["--generation-config", mode]
        with Server(*cmd, log_path=str(tmp_path / f"{mode}.log"), model=model) as s:
            texts = {s.request("POST", "/v1/completions", dict(body, seed=k))[2]["choices"][0]["text"]
                     for k in range(4)}
            greedy = s.request("POST", "/v1/completions", dict(body, temperature=0))[2]["choices"][0]["text"]
            if deterministic:  # the model's temperature 0 applies when the request sets none
                assert texts == {greedy}
                assert "sampling defaults from generation_config.json: temperature=0 top_k=1" in s.log_text()
            else:  # vLLM's temperature 1: four seeds, several texts
                assert len(texts) > 1


def test_cpu_default_token_budget_keeps_steps_short(srv, tmp_path):
    # the module's server runs the CPU defaults: 256 tokens a step, not 2048
    assert "engine: 256 tokens per step (the CPU backend's default" in srv.log_text()
    with Server("--max-num-batched-tokens", "2048", log_path=str(tmp_path / "s.log")) as s:
        assert "tokens per step" not in s.log_text()  # a chosen value stays
    # a 1000-token prompt runs in chunks: other streams wait one short step, not the whole prefill
    long_prompt = "one two three four five six seven eight nine ten " * 100
    t0 = time.monotonic()
    st, _, r = srv.request("POST", "/v1/completions", {"prompt": long_prompt, "max_tokens": 1})
    assert st == 200 and r["usage"]["prompt_tokens"] > 900, r
    assert time.monotonic() - t0 < 60


def test_systemd_unit_says_where_it_cannot_run():
    from server_util import ROOT

    unit = (ROOT / "scripts" / "llm-server.service").read_text()
    assert "ProtectHome=yes" in unit and "PrivateTmp=yes" in unit
    # the comment explains both before the settings, with the way out
    head = unit.split("[Unit]")[0]
    assert "a build under /home or /tmp" in head and "ProtectHome=read-only" in head


def test_every_tool_names_the_closest_flag():
    for tool in ["llm_generate", "llm_tokenize", "llm_quantize", "llm_server"]:
        exe = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
            os.path.abspath(__file__)))), "build", "bin", tool)
        p = subprocess.run([exe, "--modle", "x"], capture_output=True, text=True, timeout=30)
        assert p.returncode == 2, (tool, p.stderr)
        lines = p.stderr.strip().splitlines()
        assert len(lines) == 1 and "did you mean --model?" in lines[0], (tool, p.stderr)
        p = subprocess.run([exe, "--model"], capture_output=True, text=True, timeout=30)
        assert p.returncode == 2 and "--model needs a value" in p.stderr, (tool, p.stderr)
