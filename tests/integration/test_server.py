"""llm_server end to end on the default model (CPU): the OpenAI SDK against
completions and chat, streamed and not; the simple API; 256 concurrent
streams; a battery of bad requests; disconnects, shutdown, API key, queue
limit, request timeout; /metrics through promtool."""

import http.client
import json
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import openai
import pytest

from server_util import MODEL, MODEL_NAME, SERVER_BIN, Server

pytestmark = pytest.mark.skipif(not (MODEL / ".complete").exists(), reason="default model absent: make model")


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    log = tmp_path_factory.mktemp("server") / "server.log"
    s = Server("--max-num-seqs", "256", log_path=str(log))
    yield s
    assert s.stop() == 0, s.log_text()


@pytest.fixture(scope="module")
def client(srv):
    return openai.OpenAI(base_url=srv.url + "/v1", api_key="unused", max_retries=0, timeout=120)


def stream_raw(url, path, body, read_chunks=None):
    """POSTs body with stream=true; returns the list of parsed data payloads
    (the string "[DONE]" included). read_chunks: stop after that many."""
    host, port = url.removeprefix("http://").split(":")
    c = http.client.HTTPConnection(host, int(port), timeout=300)
    c.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
    r = c.getresponse()
    assert r.status == 200, r.read()
    assert r.getheader("Content-Type") == "text/event-stream"
    out, buf = [], b""
    while True:
        line = r.fp.readline()
        if not line:
            break
        line = line.strip()
        if not line.startswith(b"data: "):
            continue
        payload = line[6:].decode()
        out.append(payload if payload == "[DONE]" else json.loads(payload))
        if payload == "[DONE]" or (read_chunks and len(out) >= read_chunks):
            break
    c.close()
    return out


def wait_for(pred, timeout=30.0):
    end = time.time() + timeout
    while time.time() < end:
        if pred():
            return True
        time.sleep(0.05)
    return pred()


def idle(s):
    m = s.metrics()
    return m["vllm:num_requests_running"] == 0 and m["llm_kv_cache_pages_used"] == 0 and m["llm_requests_in_flight"] == 0


# --- the OpenAI SDK ---------------------------------------------------------


def test_sdk_chat_answers_and_usage(srv, client):
    r = client.chat.completions.create(
        model=MODEL_NAME, messages=[{"role": "user", "content": "What is the capital of France?"}], temperature=0, max_tokens=24
    )
    text = r.choices[0].message.content
    assert "Paris" in text
    assert r.object == "chat.completion" and r.model == MODEL_NAME and r.id.startswith("chatcmpl-")
    assert r.choices[0].finish_reason in ("stop", "length")
    # usage: prompt tokens are the rendered template's, as /tokenize counts them
    st, _, tok = srv.request("POST", "/tokenize", {"messages": [{"role": "user", "content": "What is the capital of France?"}]})
    assert st == 200
    assert r.usage.prompt_tokens == tok["count"]
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens
    assert 1 <= r.usage.completion_tokens <= 24


def test_sdk_completion_length_and_usage(srv, client):
    r = client.completions.create(model=MODEL_NAME, prompt="The capital of France is", max_tokens=7, temperature=0, extra_body={"ignore_eos": True})
    assert r.object == "text_completion" and r.choices[0].finish_reason == "length"
    assert r.usage.completion_tokens == 7
    st, _, tok = srv.request("POST", "/tokenize", {"prompt": "The capital of France is"})
    assert r.usage.prompt_tokens == tok["count"]
    assert "Paris" in r.choices[0].text


def test_completions_default_max_tokens_is_16(client):
    r = client.completions.create(model=MODEL_NAME, prompt="Once upon a time", temperature=0, extra_body={"ignore_eos": True})
    assert r.usage.completion_tokens == 16


@pytest.mark.parametrize("kind", ["chat", "completions"])
def test_streamed_text_equals_unstreamed_for_a_seed(client, kind):
    args = dict(model=MODEL_NAME, max_tokens=20, temperature=0.9, top_p=0.95, seed=1234)
    if kind == "chat":
        args["messages"] = [{"role": "user", "content": "Tell me about the sea."}]
        full = client.chat.completions.create(**args)
        text = full.choices[0].message.content
        chunks = list(client.chat.completions.create(**args, stream=True, stream_options={"include_usage": True}))
        streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        finish = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
        assert chunks[0].choices[0].delta.role == "assistant"
    else:
        args["prompt"] = "The sea is"
        full = client.completions.create(**args)
        text = full.choices[0].text
        chunks = list(client.completions.create(**args, stream=True, stream_options={"include_usage": True}))
        streamed = "".join(c.choices[0].text for c in chunks if c.choices)
        finish = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert streamed == text
    assert finish == [full.choices[0].finish_reason]
    usage = chunks[-1].usage
    assert not chunks[-1].choices and usage.completion_tokens == full.usage.completion_tokens
    assert usage.prompt_tokens == full.usage.prompt_tokens
    # a different seed gives a different sample (20 tokens at temperature 0.9)
    other = dict(args, seed=99)
    t2 = client.chat.completions.create(**other).choices[0].message.content if kind == "chat" else client.completions.create(**other).choices[0].text
    assert t2 != text


def test_stop_strings_and_stop_reason(client):
    base = client.completions.create(model=MODEL_NAME, prompt="1, 2, 3, 4,", max_tokens=16, temperature=0, extra_body={"ignore_eos": True})
    text = base.choices[0].text
    assert " 6" in text, text
    r = client.completions.create(model=MODEL_NAME, prompt="1, 2, 3, 4,", max_tokens=16, temperature=0, stop=[" 6", "zzz"])
    assert r.choices[0].text == text[: text.index(" 6")]
    assert r.choices[0].finish_reason == "stop"
    assert r.model_extra is not None or True
    raw = r.choices[0].model_dump()
    assert raw["stop_reason"] == " 6"


def test_stop_token_ids(srv, client):
    base = client.completions.create(model=MODEL_NAME, prompt="1, 2, 3, 4,", max_tokens=8, temperature=0, extra_body={"ignore_eos": True})
    st, _, tok = srv.request("POST", "/tokenize", {"prompt": base.choices[0].text, "add_special_tokens": False})
    third = tok["tokens"][2]
    r = client.completions.create(model=MODEL_NAME, prompt="1, 2, 3, 4,", max_tokens=8, temperature=0, extra_body={"stop_token_ids": [third]})
    assert r.choices[0].finish_reason == "stop"
    assert r.usage.completion_tokens == 3


def test_logprobs_completions_and_chat(client):
    r = client.completions.create(model=MODEL_NAME, prompt="The capital of France is", max_tokens=4, temperature=0, logprobs=3, extra_body={"ignore_eos": True})
    lp = r.choices[0].logprobs
    assert len(lp.tokens) == 4 and len(lp.token_logprobs) == 4 and len(lp.top_logprobs) == 4
    assert "".join(lp.tokens) == r.choices[0].text
    for tok, p, top in zip(lp.tokens, lp.token_logprobs, lp.top_logprobs):
        assert p <= 0 and len(top) == 3
        assert max(top.values()) >= p - 1e-6  # greedy: the chosen token is the top one
        assert abs(top[tok] - p) < 1e-6
    c = client.chat.completions.create(
        model=MODEL_NAME, messages=[{"role": "user", "content": "Hi"}], max_tokens=3, temperature=0, logprobs=True, top_logprobs=2
    )
    content = c.choices[0].logprobs.content
    assert len(content) == c.usage.completion_tokens
    assert all(len(e.top_logprobs) == 2 and e.logprob <= 0 and bytes(e.bytes).decode("utf-8", "replace") == e.token for e in content)


def test_echo_and_token_id_prompt(srv, client):
    st, _, tok = srv.request("POST", "/tokenize", {"prompt": "The capital of France is"})
    by_ids = client.completions.create(model=MODEL_NAME, prompt=tok["tokens"], max_tokens=5, temperature=0)
    by_text = client.completions.create(model=MODEL_NAME, prompt="The capital of France is", max_tokens=5, temperature=0)
    assert by_ids.choices[0].text == by_text.choices[0].text
    echo = client.completions.create(model=MODEL_NAME, prompt="The capital of France is", max_tokens=5, temperature=0, echo=True)
    assert echo.choices[0].text == "The capital of France is" + by_text.choices[0].text


def test_sampling_parameters_pass_through(client):
    common = dict(model=MODEL_NAME, prompt="Write a list of fruits:", max_tokens=24, temperature=0)
    plain = client.completions.create(**common).choices[0].text
    penalized = client.completions.create(**common, frequency_penalty=2.0, presence_penalty=2.0).choices[0].text
    assert penalized != plain
    r = client.completions.create(**common, extra_body={"min_tokens": 24, "top_k": 5, "min_p": 0.1, "repetition_penalty": 1.3})
    assert r.usage.completion_tokens == 24


# --- the simple API and the small endpoints ----------------------------------


def test_generate_and_chat_simple_api(srv):
    st, _, g = srv.request("POST", "/generate", {"prompt": "The capital of France is", "max_tokens": 5, "temperature": 0})
    assert st == 200
    assert set(g) >= {"text", "prompt", "model", "generated", "full_text", "usage"}
    assert g["prompt"] == "The capital of France is" and g["full_text"] == g["prompt"] + g["text"]
    assert g["model"] == MODEL_NAME and g["generated"] == g["usage"]["completion_tokens"] <= 5
    assert "Paris" in g["text"]
    st, _, c = srv.request("POST", "/chat", {"prompt": "What is the capital of France?", "max_tokens": 24, "temperature": 0, "top_p": 1, "top_k": 1, "stop": ["\n\n"]})
    assert st == 200 and "Paris" in c["text"]
    st, _, c2 = srv.request("POST", "/chat", {"prompt": "What is the capital of France?", "max_tokens": 24, "temperature": 0})
    assert c2["text"].startswith(c["text"])


def test_small_endpoints(srv):
    st, _, root = srv.request("GET", "/")
    assert st == 200 and root["model"] == MODEL_NAME and root["server"] == "llm"
    st, _, h = srv.request("GET", "/health")
    assert st == 200 and h["status"] == "ok"
    st, _, m = srv.request("GET", "/v1/models")
    assert st == 200 and m["data"][0]["id"] == MODEL_NAME and m["data"][0]["max_model_len"] == 8192
    st, _, v = srv.request("GET", "/version")
    assert st == 200 and v["version"]
    st, _, t = srv.request("POST", "/tokenize", {"prompt": "hello world", "add_special_tokens": False})
    assert st == 200 and t["count"] == len(t["tokens"]) == 2 and t["max_model_len"] == 8192
    st, _, d = srv.request("POST", "/detokenize", {"tokens": t["tokens"]})
    assert st == 200 and d["prompt"] == "hello world"
    st, hdrs, docs = srv.request("GET", "/docs")
    # Swagger UI over /openapi.json, or the plain list that links to it (test_first_hour.py)
    assert st == 200 and "text/html" in hdrs["Content-Type"] and "/openapi.json" in docs


def test_openapi_describes_every_endpoint(srv):
    st, _, doc = srv.request("GET", "/openapi.json")
    assert st == 200 and doc["openapi"].startswith("3.")
    paths = {"/v1/completions": "post", "/v1/chat/completions": "post", "/v1/models": "get", "/generate": "post", "/chat": "post",
             "/tokenize": "post", "/detokenize": "post", "/health": "get", "/metrics": "get", "/version": "get", "/": "get",
             "/openapi.json": "get", "/docs": "get"}
    for p, m in paths.items():
        assert m in doc["paths"][p], p
    # every $ref resolves
    refs = []

    def walk(o):
        if isinstance(o, dict):
            for k, v in o.items():
                if k == "$ref":
                    refs.append(v)
                walk(v)
        elif isinstance(o, list):
            for v in o:
                walk(v)

    walk(doc)
    for r in refs:
        node = doc
        for part in r.removeprefix("#/").split("/"):
            node = node[part]


# --- bad requests ----------------------------------------------------------


def assert_error(st, body, status, param=None):
    assert st == status, body
    assert isinstance(body, dict) and set(body["error"]) == {"message", "type", "param", "code"}, body
    assert body["error"]["message"]
    if param:
        assert body["error"]["param"] == param, body


BAD = [
    ("/v1/completions", b'{"prompt": "hi", ', 400, None),
    ("/v1/completions", b"[1, 2]", 400, None),
    ("/v1/completions", b"", 400, None),
    ("/v1/completions", b'{"prompt": "\xff\xfe"}', 400, None),
    ("/v1/completions", {"prompt": "hi", "max_tokens": "10"}, 400, "max_tokens"),
    ("/v1/completions", {"prompt": "hi", "max_tokens": -1}, 400, "max_tokens"),
    ("/v1/completions", {"prompt": "hi", "max_tokens": 1e30}, 400, "max_tokens"),
    ("/v1/completions", {"prompt": "hi", "max_tokens": 2.5}, 400, "max_tokens"),
    ("/v1/completions", {"prompt": "hi", "temperature": 5}, 400, "temperature"),
    ("/v1/completions", {"prompt": "hi", "temperature": "hot"}, 400, "temperature"),
    ("/v1/completions", {"prompt": "hi", "top_p": 0}, 400, "top_p"),
    ("/v1/completions", {"prompt": "hi", "top_k": -5}, 400, "top_k"),
    ("/v1/completions", {"prompt": "hi", "presence_penalty": 9}, 400, "presence_penalty"),
    ("/v1/completions", {"prompt": "hi", "stop": 5}, 400, "stop"),
    ("/v1/completions", {"prompt": "hi", "stop": ["a"] * 9}, 400, "stop"),
    ("/v1/completions", {"prompt": "hi", "stop_token_ids": [-1]}, 400, "stop_token_ids"),
    ("/v1/completions", {"prompt": "hi", "seed": "x"}, 400, "seed"),
    ("/v1/completions", {"prompt": "hi", "n": 2}, 400, "n"),
    ("/v1/completions", {"prompt": "hi", "logprobs": 50}, 400, "logprobs"),
    ("/v1/completions", {"prompt": "hi", "stream": "yes"}, 400, "stream"),
    ("/v1/completions", {"prompt": "hi", "stream_options": {"include_usage": True}}, 400, "stream_options"),
    ("/v1/completions", {"prompt": "hi", "ignore_eos": 1}, 400, "ignore_eos"),
    ("/v1/completions", {"prompt": "hi", "min_tokens": 20, "max_tokens": 10}, 400, "min_tokens"),
    ("/v1/completions", {"prompt": 42}, 400, "prompt"),
    ("/v1/completions", {"prompt": [1, -3]}, 400, "prompt"),
    ("/v1/completions", {"prompt": [1, 99999999]}, 400, "prompt"),
    ("/v1/completions", {"prompt": ["a", "b"]}, 400, "prompt"),
    ("/v1/completions", {"prompt": ""}, 400, "prompt"),
    ("/v1/completions", {}, 400, "prompt"),
    ("/v1/completions", {"prompt": "hi", "model": "gpt-4"}, 404, "model"),
    ("/v1/completions", {"prompt": "hi", "model": 7}, 400, "model"),
    ("/v1/completions", {"prompt": "hi " * 9000}, 400, "prompt"),
    ("/v1/completions", {"prompt": "hi", "max_tokens": 9000}, 400, "prompt"),
    ("/v1/chat/completions", {"messages": "hi"}, 400, "messages"),
    ("/v1/chat/completions", {"messages": []}, 400, "messages"),
    ("/v1/chat/completions", {"messages": [{"content": "hi"}]}, 400, "messages"),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": 5}]}, 400, "messages"),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": [{"type": "image_url"}]}]}, 400, "messages"),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}], "top_logprobs": 2}, 400, "top_logprobs"),
    ("/v1/chat/completions", {"messages": [{"role": "user", "content": "hi"}], "tools": 3}, 400, "tools"),
    ("/generate", {"prompt": 5}, 400, "prompt"),
    ("/generate", {"prompt": "hi", "top_k": "x"}, 400, "top_k"),
    ("/chat", {"max_tokens": 3}, 400, "prompt"),
    ("/tokenize", {"prompt": 3}, 400, "prompt"),
    ("/detokenize", {"tokens": ["a"]}, 400, "tokens"),
]


def test_bad_requests_get_openai_errors_and_change_nothing(srv, client):
    before = client.completions.create(model=MODEL_NAME, prompt="Hello", max_tokens=6, temperature=0).choices[0].text
    alone = stream_completion(srv.url, "Once upon a time", 40)
    with ThreadPoolExecutor(max_workers=1) as ex:  # a stream runs while the bad requests arrive
        during = ex.submit(stream_completion, srv.url, "Once upon a time", 40)
        for path, body, status, param in BAD:
            st, _, resp = srv.request("POST", path, body)
            assert_error(st, resp, status, param)
        assert during.result() == alone
    st, _, resp = srv.request("POST", "/v1/completions", {"prompt": "hi " * 9000})
    assert "maximum context length is 8192 tokens" in resp["error"]["message"]
    assert resp["error"]["code"] == "context_length_exceeded"
    st, _, resp = srv.request("GET", "/no/such/path")
    assert_error(st, resp, 404)
    st, hdrs, resp = srv.request("GET", "/v1/completions")
    assert_error(st, resp, 405)
    assert hdrs["Allow"] == "POST"
    st, _, resp = srv.request("DELETE", "/health")
    assert_error(st, resp, 405)
    st, _, resp = srv.request("POST", "/v1/completions", b'{"prompt": "' + b"a" * (9 << 20) + b'"}')
    assert_error(st, resp, 413)
    after = client.completions.create(model=MODEL_NAME, prompt="Hello", max_tokens=6, temperature=0).choices[0].text
    assert after == before
    m = srv.metrics()
    assert m['llm_http_errors_total{status="400",type="invalid_request_error"}'] >= len([b for b in BAD if b[2] == 400])
    assert wait_for(lambda: idle(srv))


def test_slow_partial_body_and_dropped_body_do_not_block_others(srv, client):
    host, port = srv.url.removeprefix("http://").split(":")
    slow = socket.create_connection((host, int(port)))
    slow.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n{\"prompt\":")
    dropped = socket.create_connection((host, int(port)))
    dropped.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"pro")
    dropped.close()
    half = socket.create_connection((host, int(port)))
    half.sendall(b"POST /v1/chat/compl")  # not even a full request line
    t0 = time.time()
    r = client.completions.create(model=MODEL_NAME, prompt="Hello", max_tokens=4, temperature=0)
    assert r.usage.completion_tokens >= 1 and time.time() - t0 < 30
    slow.sendall(b' "hi", "max_tokens": 2}' + b" " * (200 - len(b'{"prompt": "hi", "max_tokens": 2}')))
    resp = slow.recv(65536).decode()
    assert resp.startswith("HTTP/1.1 200"), resp
    slow.close()
    half.close()
    assert wait_for(lambda: idle(srv))


# --- concurrency -------------------------------------------------------------

PROMPTS = [
    "The capital of France is", "Once upon a time", "def fibonacci(n):", "The quick brown fox",
    "In 1492, Columbus", "Water boils at", "My favourite food is", "The sun rises in the",
    "import numpy as np\n", "Dear Sir or Madam,", "The largest planet is", "To be or not to be,",
    "Roses are red,", "The theory of relativity", "Cats and dogs are", "A recipe for pancakes:",
]
LENGTHS = [4, 8, 12, 16, 20, 24, 28, 32]


def stream_completion(url, prompt, max_tokens):
    chunks = stream_raw(url, "/v1/completions", {"prompt": prompt, "max_tokens": max_tokens, "temperature": 0, "ignore_eos": True,
                                                  "stream": True, "stream_options": {"include_usage": True}})
    assert chunks[-1] == "[DONE]", chunks[-3:]
    text = "".join(c["choices"][0]["text"] for c in chunks[:-1] if c["choices"])
    finish = [c["choices"][0]["finish_reason"] for c in chunks[:-1] if c["choices"] and c["choices"][0]["finish_reason"]]
    return text, finish, chunks[-2]["usage"]


def test_256_concurrent_streams_match_one_at_a_time(srv):
    jobs = [(PROMPTS[i % 16], LENGTHS[(i // 16) % 8]) for i in range(256)]
    alone = {}
    for p in PROMPTS:  # one at a time, each prompt at the longest length (greedy prefixes)
        alone[p] = stream_completion(srv.url, p, max(LENGTHS))
    peak = {"running": 0}
    stop = threading.Event()

    def watch():
        while not stop.is_set():
            peak["running"] = max(peak["running"], srv.metrics()["vllm:num_requests_running"])
            time.sleep(0.2)

    w = threading.Thread(target=watch)
    w.start()
    with ThreadPoolExecutor(max_workers=256) as ex:
        results = list(ex.map(lambda j: stream_completion(srv.url, *j), jobs))
    stop.set()
    w.join()
    for (p, n), (text, finish, usage) in zip(jobs, results):
        assert finish == ["length"]
        assert usage["completion_tokens"] == n
        # greedy: the n tokens are the start of the longest continuation run alone
        assert alone[p][0].startswith(text), (p, n, text, alone[p][0])
    assert peak["running"] >= 32, peak  # they really ran together
    assert wait_for(lambda: idle(srv))


def test_disconnect_mid_stream_frees_pages(srv):
    aborted = srv.metrics().get('vllm:request_success_total{finished_reason="abort",model_name="%s"}' % MODEL_NAME, 0)
    chunks = stream_raw(srv.url, "/v1/completions", {"prompt": "Tell me a long story.", "max_tokens": 4000, "ignore_eos": True, "stream": True}, read_chunks=3)
    assert len(chunks) == 3
    assert wait_for(lambda: idle(srv), timeout=15), srv.metrics()
    m = srv.metrics()
    assert m['vllm:request_success_total{finished_reason="abort",model_name="%s"}' % MODEL_NAME] == aborted + 1
    assert m["vllm:kv_cache_usage_perc"] == 0
    # the same for a request that is not streamed: the client gives up waiting
    host, port = srv.url.removeprefix("http://").split(":")
    body = json.dumps({"prompt": "Tell me a long story.", "max_tokens": 4000, "ignore_eos": True}).encode()
    c = socket.create_connection((host, int(port)))
    c.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
    assert wait_for(lambda: srv.metrics()["vllm:num_requests_running"] == 1, timeout=15)
    c.close()
    assert wait_for(lambda: idle(srv), timeout=15), srv.metrics()
    assert srv.metrics()['vllm:request_success_total{finished_reason="abort",model_name="%s"}' % MODEL_NAME] == aborted + 2


def test_metrics_names_and_promtool(srv):
    srv.request("POST", "/v1/completions", {"prompt": "Hi", "max_tokens": 3, "temperature": 0})
    st, hdrs, text = srv.request("GET", "/metrics")
    assert st == 200 and hdrs["Content-Type"].startswith("text/plain; version=0.0.4")
    for name in ["vllm:num_requests_running", "vllm:num_requests_waiting", "vllm:kv_cache_usage_perc", "vllm:prompt_tokens_total",
                 "vllm:generation_tokens_total", "vllm:num_preemptions_total", "vllm:prefix_cache_queries_total",
                 "vllm:prefix_cache_hits_total", "vllm:request_success_total", "vllm:time_to_first_token_seconds",
                 "vllm:inter_token_latency_seconds", "vllm:e2e_request_latency_seconds", "vllm:request_queue_time_seconds",
                 "llm_device_memory_used_bytes", "llm_device_memory_total_bytes", "llm_http_errors_total"]:
        assert f"# TYPE {name} " in text, name
    m = srv.metrics()
    assert m["vllm:generation_tokens_total"] > 0 and m["vllm:time_to_first_token_seconds_count"] > 0
    assert m["llm_device_memory_total_bytes"] > m["llm_device_memory_used_bytes"] > 0
    assert 0 < m["llm_device_sampled_tokens_total"] <= m["vllm:generation_tokens_total"]
    promtool = shutil.which("promtool")
    assert promtool, "promtool missing: run 'make deps' (Debian package prometheus)"
    p = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True)
    # The exposition must parse (exit 1 is a parse error). promtool's style lint
    # (exit 3) objects to the colon in vLLM's own names, which dashboards need;
    # that must be its only complaint.
    assert p.returncode in (0, 3), p.stdout + p.stderr
    problems = [line for line in (p.stdout + p.stderr).splitlines() if line.strip()]
    assert all(re.fullmatch(r"vllm:\w+ metric names should not contain ':'", line) for line in problems), problems


# --- server flags ----------------------------------------------------------------


def test_api_key(tmp_path):
    with Server("--api-key", "sekrit", log_path=str(tmp_path / "log")) as s:
        for path in ["/v1/models"]:
            st, _, body = s.request("GET", path)
            assert_error(st, body, 401)
            st, _, body = s.request("GET", path, headers={"Authorization": "Bearer wrong"})
            assert_error(st, body, 401)
            st, _, body = s.request("GET", path, headers={"Authorization": "Bearer sekrit"})
            assert st == 200
        for path in ["/generate", "/chat", "/tokenize", "/v1/completions"]:
            st, _, body = s.request("POST", path, {"prompt": "hi", "max_tokens": 1})
            assert_error(st, body, 401)
        for path in ["/health", "/metrics"]:
            assert s.request("GET", path)[0] == 200
        good = openai.OpenAI(base_url=s.url + "/v1", api_key="sekrit", max_retries=0)
        assert good.completions.create(model=MODEL_NAME, prompt="Hi", max_tokens=2).usage.completion_tokens >= 1
        bad = openai.OpenAI(base_url=s.url + "/v1", api_key="nope", max_retries=0)
        with pytest.raises(openai.AuthenticationError):
            bad.completions.create(model=MODEL_NAME, prompt="Hi", max_tokens=2)


def test_max_queue_503_with_retry_after(tmp_path):
    # one sequence runs at a time and one may wait: of five more, one queues
    with Server("--max-queue", "1", "--max-num-seqs", "1", log_path=str(tmp_path / "log")) as s:
        body = {"prompt": "Count to a hundred:", "max_tokens": 48, "ignore_eos": True}
        with ThreadPoolExecutor(max_workers=6) as ex:
            first = ex.submit(s.request, "POST", "/v1/completions", body)
            assert wait_for(lambda: s.metrics()["vllm:num_requests_running"] == 1)
            results = list(ex.map(lambda _: s.request("POST", "/v1/completions", body), range(5)))
            results.append(first.result())
        codes = sorted(r[0] for r in results)
        assert codes == [200, 200, 503, 503, 503, 503], codes
        for st, hdrs, b in results:
            if st == 503:
                assert_error(st, b, 503)
                assert hdrs["Retry-After"]
            else:
                assert b["usage"]["completion_tokens"] == 48


def test_request_timeout_aborts(tmp_path):
    with Server("--request-timeout", "1", log_path=str(tmp_path / "log")) as s:
        t0 = time.time()
        st, _, b = s.request("POST", "/v1/completions", {"prompt": "Tell me a story", "max_tokens": 5000, "ignore_eos": True})
        assert st == 200 and b["choices"][0]["finish_reason"] == "abort"
        assert time.time() - t0 < 10
        assert wait_for(lambda: idle(s))


def test_health_is_503_while_loading(tmp_path):
    s = Server(wait=False)  # polled from the start: it answers before the model is loaded
    seen = []
    end = time.time() + 60
    while time.time() < end:
        try:
            st, _, body = s.request("GET", "/health", timeout=2)
        except OSError:  # not listening yet
            time.sleep(0.002)
            continue
        seen.append((st, body["status"]))
        if st == 200:
            break
        time.sleep(0.002)
    assert s.stop() == 0
    assert (503, "loading") in seen and seen[-1] == (200, "ok"), seen


def test_graceful_shutdown_finishes_in_flight_requests(tmp_path):
    s = Server("--shutdown-grace", "300", log_path=str(tmp_path / "log"))  # ample on a slow (sanitizer) build
    with ThreadPoolExecutor(max_workers=8) as ex:
        futs = [ex.submit(stream_completion, s.url, PROMPTS[i], 24) for i in range(8)]
        assert wait_for(lambda: s.metrics()["vllm:num_requests_running"] == 8, timeout=30)
        s.proc.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        with pytest.raises(ConnectionRefusedError):  # no longer accepting
            socket.create_connection(("127.0.0.1", s.port), timeout=2)
        results = [f.result() for f in futs]
    assert all(finish == ["length"] and usage["completion_tokens"] == 24 for _, finish, usage in results)
    assert s.stop() == 0


def test_shutdown_grace_expiry_aborts_visibly(tmp_path):
    s = Server("--shutdown-grace", "0.5", log_path=str(tmp_path / "log"))
    with ThreadPoolExecutor(max_workers=4) as ex:
        futs = [ex.submit(stream_completion, s.url, PROMPTS[i], 5000) for i in range(4)]
        assert wait_for(lambda: s.metrics()["vllm:num_requests_running"] == 4, timeout=30)
        s.proc.send_signal(signal.SIGTERM)
        results = [f.result() for f in futs]
    assert all(finish == ["abort"] for _, finish, _ in results)  # ended with [DONE], not cut off
    assert s.stop() == 0
    assert "aborting 4 request(s)" in s.log_text()


def test_daemon_files_run_the_server_with_valid_flags():
    import plistlib
    from server_util import ROOT

    help_text = subprocess.run([str(SERVER_BIN), "--help"], capture_output=True, text=True).stdout
    unit = (ROOT / "scripts" / "llm-server.service").read_text()
    sections = re.findall(r"(?m)^\[(\w+)\]", unit)
    assert sections == ["Unit", "Service", "Install"]
    exec_start = re.search(r"(?m)^ExecStart=(.*)$", unit).group(1).split()
    plist = plistlib.loads((ROOT / "scripts" / "com.llm.server.plist").read_bytes())
    for argv in (exec_start, plist["ProgramArguments"]):
        assert argv[0].endswith("/build/bin/llm_server")
        for flag in [a for a in argv[1:] if a.startswith("--")]:
            assert f"  {flag} " in help_text, flag
    assert plist["Label"] == "com.llm.server" and plist["KeepAlive"]["SuccessfulExit"] is False
