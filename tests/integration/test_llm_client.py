"""llm_client: every mode and the bench load generator.

Against tests/integration/fake_openai_server.py: each failure (connect, timeout,
HTTP 4xx/5xx/429, dropped stream, malformed SSE) is recorded by type, only
connection errors, 5xx and 429 are retried (Retry-After honoured), nothing runs
past --timeout, only completed requests enter the figures, and every result
file is there and well formed with vLLM's keys.

Against the real llm_server on the default model (skipped when the model or
the binary is absent): every mode on /v1/chat/completions, /v1/completions and
/generate, and the client's token counts and TTFT agree with the server's own
/metrics for the same run: generated tokens exactly; mean TTFT: the client's
is at least the server's (it also counts the HTTP exchange) and within
50 ms + 20% of it.
"""

import csv
import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fake_openai_server  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
BIN_DIR = Path(os.environ.get("LLM_BIN_DIR", ROOT / "build" / "bin"))
CLIENT = BIN_DIR / "llm_client"
SERVER = BIN_DIR / "llm_server"
MODEL = ROOT / "models" / "SmolLM2-135M-Instruct"
APIS = ["openai-chat", "openai-completions", "generate"]

VLLM_KEYS = ["duration", "completed", "total_input_tokens", "total_output_tokens",
             "request_throughput", "request_goodput", "output_throughput",
             "total_token_throughput", "max_concurrent_requests", "max_output_tokens_per_s",
             "failed", "input_lens", "output_lens",
             "ttfts", "itls", "errors"] + [
    f"{s}_{m}_ms" for m in ["ttft", "tpot", "itl", "e2el"]
    for s in ["mean", "median", "std", "p50", "p90", "p95", "p99"]]


def client(*args, timeout=60, stdin=None, check=True):
    p = subprocess.run([str(CLIENT), *map(str, args)], capture_output=True, text=True,
                       timeout=timeout, input=stdin)
    if check:
        assert p.returncode == 0, p.stderr
    return p


@pytest.fixture(scope="module")
def fake():
    if not CLIENT.exists():
        pytest.skip(f"{CLIENT} not built")
    srv, port = fake_openai_server.start()
    yield f"http://127.0.0.1:{port}"
    srv.shutdown()


def stats(base):
    with urllib.request.urlopen(base + "/stats") as r:
        return json.load(r)


def bench(base, out, *args, status=0):
    p = client("bench", "--base-url", base, "--out", out, "--quiet", *args, check=False)
    assert p.returncode == status, p.stderr  # 3: some requests failed
    return p, json.loads((Path(out) / "result.json").read_text()), [
        json.loads(line) for line in (Path(out) / "raw.jsonl").read_text().splitlines()]


# --- the simple modes against the fake server ---------------------------------------------

@pytest.mark.parametrize("api", APIS)
def test_single_every_api(fake, api):
    p = client("--single", "--prompt", "hi there", "--base-url", fake + "/normal", "--api", api,
               "--max-tokens", 5)
    lines = p.stdout.splitlines()
    assert lines[0].strip() == "tok0 tok1 tok2 tok3 tok4"
    assert re.match(r"latency: [\d.]+ s(, ttft: [\d.]+ ms)?, tokens: 5 \(usage\)", lines[1])
    assert ("ttft" in lines[1]) == (api != "generate")  # /generate does not stream
    body = stats(fake)["last"]["normal"]
    assert body["max_tokens"] == 5
    if api != "generate":
        assert body["stream"] and body["stream_options"] == {"include_usage": True}
        assert body["model"] == "fake-model"  # from /v1/models


def test_tokens_counted_from_chunks_without_usage(fake):
    p = client("--single", "--prompt", "x", "--base-url", fake + "/no_usage", "--max-tokens", 3)
    assert "tokens: 3 (chunks)" in p.stdout


def test_events_split_across_writes(fake):
    p = client("--single", "--prompt", "x", "--base-url", fake + "/split", "--max-tokens", 4,
               "--api", "openai-completions")
    assert p.stdout.startswith("tok0 tok1 tok2 tok3")


def test_single_from_file_line(fake, tmp_path):
    f = tmp_path / "p.txt"
    f.write_text("first prompt\n\nsecond prompt here\n")
    client("--single", "--input", f, "--line", 2, "--base-url", fake + "/id=line",
           "--api", "openai-completions")
    assert stats(fake)["last"]["id=line"]["prompt"] == "second prompt here"


def test_batch_csv(fake, tmp_path):
    prompts = tmp_path / "p.json"
    prompts.write_text(json.dumps(["a b", {"prompt": "c d e", "max_tokens": 2}, "f, \"g\""]))
    out = tmp_path / "r.csv"
    # the first request gets a 400 (not retried), the others succeed
    p = client("--batch", "--input", prompts, "--output", out, "--concurrent", 1,
               "--base-url", fake + "/fail=1,status=400,id=batch", "--max-tokens", 3, check=False)
    assert p.returncode == 3  # some requests failed
    rows = list(csv.DictReader(out.open()))
    assert list(rows[0]) == ["prompt", "response", "latency", "tokens_generated", "timestamp",
                             "error", "ttft"]
    assert [r["prompt"] for r in rows] == ["a b", "c d e", "f, \"g\""]
    assert rows[0]["error"].startswith("http_4xx") and rows[0]["tokens_generated"] == ""
    assert rows[1]["response"] == "tok0 tok1 " and rows[1]["tokens_generated"] == "2"
    assert rows[2]["tokens_generated"] == "3" and not rows[2]["error"]
    for r in rows[1:]:
        assert 0 < float(r["ttft"]) <= float(r["latency"])
        assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", r["timestamp"])
    assert stats(fake)["requests"]["fail=1,status=400,id=batch"] == 3


def test_benchmark_mode(fake):
    p = client("--benchmark", "--requests", 8, "--concurrent", 4, "--base-url", fake + "/normal",
               "--max-tokens", 4)
    assert "requests: 8 (8 ok, 0 failed), error rate 0.0%" in p.stdout
    assert re.search(r"output tokens/s: [\d.]+ \(32 tokens, from usage\)", p.stdout)
    assert re.search(r"mean latency: [\d.]+ s", p.stdout) and "requests/s:" in p.stdout


@pytest.mark.parametrize("api", ["openai-chat", "openai-completions"])
def test_interactive_keeps_the_conversation(fake, api):
    spec = f"id=chat-{api}"
    p = client("--interactive", "--base-url", f"{fake}/{spec}", "--api", api, "--max-tokens", 2,
               stdin="hello\nand again\n/exit\n")
    assert p.stdout.count("tok0 tok1") == 2
    body = stats(fake)["last"][spec]
    if api == "openai-chat":
        assert [m["role"] for m in body["messages"]] == ["user", "assistant", "user"]
        assert body["messages"][1]["content"] == "tok0 tok1 "
    else:
        assert body["prompt"] == "User: hello\nAssistant:tok0 tok1 \nUser: and again\nAssistant:"


# --- failures ------------------------------------------------------------------------------------

FAILURES = {  # spec: (error type, attempts with --retries 2)
    "status=500": ("http_5xx", 3),
    "status=503": ("http_5xx", 3),
    "status=400": ("http_4xx", 1),
    "status=404": ("http_4xx", 1),
    "status=429,retry_after=0.2": ("http_429", 3),
    "hangup": ("connect", 3),
    "drop=2": ("dropped", 1),
    "malformed": ("malformed_sse", 1),
    "nosse": ("malformed_sse", 1),
    "stall=1": ("timeout", 1),
}


def test_each_failure_recorded_by_type(fake, tmp_path):
    cfg = tmp_path / "w.yaml"
    targets = "".join(f"  - name: t{i}\n    base_url: {fake}/{spec},id=fail\n"
                      for i, spec in enumerate(FAILURES))
    cfg.write_text("targets:\n" + targets + "  - name: closed\n    base_url: http://127.0.0.1:1\n"
                   "workloads:\n  - name: w\n    requests: 2\n    concurrency: 2\n"
                   "    input_len: 4\n    output_len: 4\n")
    t0 = time.monotonic()
    p = client("bench", "--config", cfg, "--out", tmp_path / "out", "--retries", 2, "--timeout", 1,
               "--quiet", timeout=60, check=False)
    assert p.returncode == 1 and f"all {2 * (len(FAILURES) + 1)} requests failed" in p.stderr
    assert time.monotonic() - t0 < 20
    raw = [json.loads(line) for line in (tmp_path / "out" / "raw.jsonl").read_text().splitlines()]
    counts = stats(fake)["requests"]
    for i, (spec, (etype, attempts)) in enumerate(list(FAILURES.items()) + [
            ("closed", ("connect", 3))]):
        name = f"t{i}" if spec != "closed" else "closed"
        recs = [r for r in raw if r["target"] == name]
        assert len(recs) == 2, name
        for r in recs:
            assert r["status"] == "error" and r["error_type"] == etype, (spec, r)
            assert r["attempts"] == attempts, (spec, r)
            assert r["error"]
        res = json.loads((tmp_path / "out" / f"result-{name}_w_c_2.json").read_text())
        assert res["completed"] == 0 and res["failed"] == 2
        assert res["errors_by_type"] == {etype: 2}
        assert res["retries"] == 2 * (attempts - 1)
        # nothing measured: no tokens, no latencies, even from partial streams
        assert res["total_output_tokens"] == 0 and res["count_ttft"] == 0
        assert res["count_itl"] == 0 and res["count_e2el"] == 0 and res["mean_ttft_ms"] == 0
        assert res["output_throughput"] == 0
        if spec != "closed":
            assert counts[f"{spec},id=fail"] == 2 * attempts, spec


@pytest.mark.parametrize("spec,api,etype,msg", [
    ("badjson", "generate", "malformed_json", "body is not a completion"),
    ("streamerr", "openai-completions", "stream_error", "engine died"),
    ("key=s3cret", "openai-chat", "http_4xx", "HTTP 401: bad api key"),
])
def test_more_failures(fake, spec, api, etype, msg):
    p = client("--single", "--prompt", "x", "--base-url", f"{fake}/{spec}", "--api", api,
               check=False)
    assert p.returncode == 1 and f"({etype}, 1 attempt): {msg}" in p.stderr


def test_api_key(fake, tmp_path):
    client("--single", "--prompt", "x", "--base-url", fake + "/key=s3cret", "--api-key", "s3cret")
    p = subprocess.run([str(CLIENT), "--single", "--prompt", "x", "--base-url",
                        fake + "/key=env"], capture_output=True, text=True, timeout=30,
                       env=dict(os.environ, OPENAI_API_KEY="env"))
    assert p.returncode == 0, p.stderr


def test_retry_after_is_honoured(fake, tmp_path):
    t0 = time.monotonic()
    p = client("--single", "--prompt", "x", "--base-url", fake + "/status=429,retry_after=0.5",
               "--retries", 2, check=False)
    assert p.returncode == 1 and "http_429, 3 attempts" in p.stderr
    assert time.monotonic() - t0 >= 1.0


def test_retry_then_success_counts_only_the_success(fake, tmp_path):
    _, res, raw = bench(fake + "/fail=2,status=503,id=rs", tmp_path, "--requests", 1,
                        "--retries", 3, "--api", "openai-chat", "--output-len", 4)
    assert res["completed"] == 1 and res["failed"] == 0 and res["retries"] == 2
    assert raw[0]["attempts"] == 3 and raw[0]["status"] == "ok"
    # latencies are the successful attempt's; the queue-inclusive one counts the backoff
    assert raw[0]["e2el_ms"] < 200 and raw[0]["queued_e2el_ms"] >= 250 + 500


@pytest.mark.parametrize("spec", ["delay=30", "stall=2"])
def test_never_past_timeout(fake, tmp_path, spec):
    t0 = time.monotonic()
    p = client("--single", "--prompt", "x", "--base-url", f"{fake}/{spec},id=to",
               "--timeout", 1, "--retries", 3, check=False)
    wall = time.monotonic() - t0
    assert p.returncode == 1 and "timeout, 1 attempt" in p.stderr
    assert 1.0 <= wall < 2.2, wall  # a resent timeout would take 2.25 s at least
    # batch: the timeouts run side by side
    f = tmp_path / "p.txt"
    f.write_text("a\nb\nc\nd\n")
    t0 = time.monotonic()
    p = client("--batch", "--input", f, "--output", tmp_path / "o.csv", "--concurrent", 4,
               "--base-url", f"{fake}/{spec},id=to2", "--timeout", 1, check=False)
    assert p.returncode == 1  # every request failed
    assert time.monotonic() - t0 < 3.5  # one after the other: 4 s at least
    rows = list(csv.DictReader((tmp_path / "o.csv").open()))
    assert all(r["error"].startswith("timeout") for r in rows)


def test_mixed_failures_metrics_from_completed_only(fake, tmp_path):
    # 3 of 8 fail with 400; every figure counts the 5 that completed
    _, res, raw = bench(fake + "/fail=3,status=400,id=mixed", tmp_path, "--requests", 8,
                        "--concurrent", 1, "--api", "openai-chat", "--output-len", 4, status=3)
    assert res["completed"] == 5 and res["failed"] == 3
    assert res["errors_by_type"] == {"http_4xx": 3}
    assert res["total_output_tokens"] == 20 and res["count_ttft"] == 5
    assert res["count_itl"] == 5 * 3 and res["count_tpot"] == 5
    assert res["output_lens"] == [0, 0, 0, 4, 4, 4, 4, 4]
    ok = [r for r in raw if r["status"] == "ok"]
    assert res["mean_ttft_ms"] == pytest.approx(sum(r["ttft_ms"] for r in ok) / 5)


# --- bench: files, schedule, sweeps, config ---------------------------------------------------

def test_bench_files_well_formed(fake, tmp_path):
    p, res, raw = bench(fake + "/normal", tmp_path, "--requests", 12, "--concurrent", 3,
                        "--api", "openai-completions", "--input-len", 16, "--output-len", 6,
                        "--goodput", "ttft:5000", "e2el:10000")
    for k in VLLM_KEYS:
        assert k in res, k
    assert res["completed"] == 12 and res["total_output_tokens"] == 72
    assert res["total_input_tokens"] == 12 * 16 and res["prompt_token_ids"]
    assert res["max_concurrent_requests"] == 3 and res["tokens_source"] == "usage"
    assert res["request_goodput"] == pytest.approx(res["request_throughput"])
    assert res["request_throughput"] == pytest.approx(12 / res["duration"])
    assert res["count_itl"] == 12 * 5 and len(res["itls"]) == 12
    d = sorted(r["ttft_ms"] for r in raw)
    assert res["median_ttft_ms"] == pytest.approx((d[5] + d[6]) / 2)
    assert res["p90_ttft_ms"] == pytest.approx(d[9] + 0.9 * (d[10] - d[9]))  # numpy linear
    assert len(raw) == 12 and [r["index"] for r in raw] == list(range(12))
    for r in raw:
        assert 0 <= r["send_ns"] <= r["first_ns"] <= r["last_ns"] <= r["end_ns"]
        assert len(r["chunk_gaps_ns"]) == 5 and r["output_tokens"] == 6
        assert r["status"] == "ok" and r["error_type"] is None
    rows = list(csv.DictReader((tmp_path / "summary.csv").open()))
    assert len(rows) == 1 and rows[0]["completed"] == "12" and "p99_e2el_ms" in rows[0]
    md = (tmp_path / "report.md").read_text()
    assert "## Definitions" in md and "TTFT" in md and "| c=3 | 12 | 0 |" in md
    html = (tmp_path / "report.html").read_text()
    svgs = re.findall(r'<img src="([^"]+\.svg)"', html)
    assert {"TTFT_cdf.svg", "E2EL_cdf.svg", "ITL_cdf.svg", "TPOT_cdf.svg"} <= set(svgs)
    for s in svgs:
        assert ET.parse(tmp_path / s).getroot().tag.endswith("svg")
    assert "Serving Benchmark Result" not in p.stdout  # --quiet


def test_goodput_slo(fake, tmp_path):
    _, res, _ = bench(fake + "/normal", tmp_path, "--requests", 4, "--output-len", 3,
                      "--goodput", "e2el:0.001")
    assert res["request_goodput"] == 0


def test_open_loop_schedule_seeded(fake, tmp_path):
    runs = []
    for i in range(2):
        _, res, raw = bench(fake + "/normal", tmp_path / str(i), "--requests", 20,
                            "--request-rate", 40, "--seed", 7, "--output-len", 2,
                            "--input-len", 4)
        runs.append([r["scheduled_ns"] for r in raw])
        assert res["request_rate"] == 40 and res["completed"] == 20
        # each sent at its scheduled time, never early; late only by the poll's
        # millisecond (and, on a loaded machine, the OS scheduler)
        late = sorted(r["send_ns"] - r["scheduled_ns"] for r in raw)
        assert late[0] >= 0 and late[len(late) // 2] < 5e6 and late[-1] < 200e6, late
    assert runs[0] == runs[1]  # same seed, same arrivals
    gaps = [b - a for a, b in zip(runs[0], runs[0][1:])]
    assert len(set(gaps)) > 10  # Poisson, not a fixed interval
    assert 0.2 / 40 < sum(gaps) / len(gaps) / 1e9 < 5 / 40
    assert "count_queued_e2el" in json.loads((tmp_path / "0" / "result.json").read_text())


def test_token_id_prompts_fall_back_to_text(fake, tmp_path):
    _, res, _ = bench(fake + "/noids", tmp_path, "--requests", 2, "--api",
                      "openai-completions", "--input-len", 5, "--output-len", 2)
    assert not res["prompt_token_ids"] and res["completed"] == 2
    prompt = stats(fake)["last"]["noids"]["prompt"]
    assert isinstance(prompt, str) and len(prompt.split()) == 5


def test_sweep_concurrency(fake, tmp_path):
    client("bench", "--base-url", fake + "/normal", "--out", tmp_path, "--quiet",
           "--requests", 8, "--sweep-concurrency", "1,2,4", "--output-len", 3)
    rows = list(csv.DictReader((tmp_path / "summary.csv").open()))
    assert [r["concurrency"] for r in rows] == ["1", "2", "4"]
    assert [r["max_concurrent_requests"] for r in rows] == ["1", "2", "4"]
    for c in [1, 2, 4]:
        res = json.loads((tmp_path / f"result-c_{c}.json").read_text())
        assert res["max_concurrency"] == c and res["completed"] == 8
    for s in ["throughput_sweep.svg", "p99_e2el_sweep.svg", "p99_ttft_sweep.svg"]:
        root = ET.parse(tmp_path / s).getroot()
        assert len([e for e in root.iter() if e.tag.endswith("polyline")]) == 1


def test_config_targets_by_workloads(fake, tmp_path):
    prompts = tmp_path / "p.txt"
    prompts.write_text("one\ntwo\n")
    cfg = tmp_path / "w.yaml"
    cfg.write_text(f"""targets:
  - name: a
    base_url: {fake}/normal
  - name: b
    base_url: {fake}/chunk_delay=0.01
workloads:
  - name: closed
    requests: 4
    concurrency: [1, 2]
    input_len: 8
    output_len: 3
  - name: open
    duration: 0.5
    rps: 20
    prompts: {prompts}
    max_tokens: 2
""")
    client("bench", "--config", cfg, "--out", tmp_path / "o", "--quiet")
    rows = list(csv.DictReader((tmp_path / "o" / "summary.csv").open()))
    assert [(r["target"], r["workload"], r["mode"]) for r in rows] == [
        ("a", "closed", "closed"), ("a", "closed", "closed"), ("a", "open", "open"),
        ("b", "closed", "closed"), ("b", "closed", "closed"), ("b", "open", "open")]
    for r in rows:
        assert int(r["failed"]) == 0
        if r["workload"] == "open":  # 0.5 s at 20/s
            assert 2 <= int(r["completed"]) <= 25
            assert int(r["total_output_tokens"]) == 2 * int(r["completed"])
    b = [r for r in rows if r["target"] == "b" and r["workload"] == "closed"]
    assert float(b[0]["mean_itl_ms"]) > 9  # the slower target's chunk delay
    # closed-loop points against concurrency, open-loop ones against rate: per target x workload
    root = ET.parse(tmp_path / "o" / "throughput_sweep.svg").getroot()
    assert len([e for e in root.iter() if e.tag.endswith("polyline")]) == 2
    root = ET.parse(tmp_path / "o" / "throughput_rate_sweep.svg").getroot()
    assert len([e for e in root.iter() if e.tag.endswith("polyline")]) == 2


def test_bad_config_named(fake, tmp_path):
    cfg = tmp_path / "w.yaml"
    cfg.write_text("targets:\n  - name: a\nworkloads:\n  - requests: 1\n")
    p = client("bench", "--config", cfg, check=False)
    assert p.returncode == 1 and "targets[0] has no base_url" in p.stderr


def test_ctrl_c_keeps_what_ran(fake, tmp_path):
    proc = subprocess.Popen([str(CLIENT), "bench", "--base-url", fake + "/chunk_delay=0.05",
                             "--requests", "1000", "--concurrent", "4", "--output-len", "8",
                             "--sweep-concurrency", "4,8", "--out", str(tmp_path), "--quiet"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(1.5)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=10)
    assert proc.returncode == 0 and "interrupted" in err
    rows = list(csv.DictReader((tmp_path / "summary.csv").open()))
    assert len(rows) == 1 and 4 <= int(rows[0]["completed"]) < 1000  # in flight ones finished
    assert int(rows[0]["failed"]) == 0


def test_quiet_in_pipes(fake, tmp_path):
    p, _, _ = bench(fake + "/normal", tmp_path, "--requests", 3, "--output-len", 2)
    assert "\r" not in p.stderr and "\033" not in p.stderr


# --- the real server ---------------------------------------------------------------------------

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server():
    if not CLIENT.exists() or not SERVER.exists():
        pytest.skip("llm_client or llm_server not built")
    if not (MODEL / "model.safetensors").exists():
        pytest.skip("default model absent: make model")
    port = free_port()
    # one OpenMP thread: on a busy machine (CI, parallel builds) spinning OpenMP workers
    # slow a 2-thread server by 10-30x, which would only test the machine's load
    env = dict(os.environ, OMP_NUM_THREADS="1")
    log = tempfile.TemporaryFile()  # the access log: a pipe nobody reads would fill up
    proc = subprocess.Popen([str(SERVER), "--model", str(MODEL), "--port", str(port), "--kv-cache-memory", "256MiB", "--device", "cpu"],
                            stdout=subprocess.DEVNULL, stderr=log, env=env)
    base = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            with urllib.request.urlopen(base + "/health", timeout=1) as r:
                if r.status == 200:
                    break
        except OSError:
            time.sleep(0.1)
        if proc.poll() is not None:
            log.seek(0)
            raise AssertionError(log.read().decode())
    yield base
    proc.terminate()
    proc.wait(timeout=30)


def metrics(base):
    with urllib.request.urlopen(base + "/metrics") as r:
        text = r.read().decode()
    out = {}
    for line in text.splitlines():
        m = re.match(r"^(vllm:[a-z0-9_]+)(\{[^}]*\})? ([0-9.e+-]+)$", line)
        if m and "le=" not in (m.group(2) or ""):
            out[m.group(1)] = out.get(m.group(1), 0) + float(m.group(3))
    return out


@pytest.mark.parametrize("api", APIS)
def test_real_modes(server, tmp_path, api):
    common = ["--base-url", server, "--api", api, "--max-tokens", 6, "--temperature", 0]
    p = client("--single", "--prompt", "What is the capital of France?", *common)
    assert re.search(r"latency: [\d.]+ s.*tokens: [1-6] \(usage\)", p.stdout)
    f = tmp_path / "p.txt"
    f.write_text("Name a color.\nName a fruit.\n")
    client("--batch", "--input", f, "--output", tmp_path / "o.csv", "--concurrent", 2, *common)
    rows = list(csv.DictReader((tmp_path / "o.csv").open()))
    assert len(rows) == 2 and all(not r["error"] and int(r["tokens_generated"]) >= 1 for r in rows)
    p = client("--benchmark", "--requests", 2, "--concurrent", 2, *common)
    assert "(2 ok, 0 failed)" in p.stdout
    p = client("--interactive", *common, stdin="Hello!\nWhat did I just say?\n")
    assert p.stdout.strip()


@pytest.mark.parametrize("api", APIS)
def test_real_bench(server, tmp_path, api):
    before = metrics(server)
    _, res, raw = bench(server, tmp_path, "--api", api, "--requests", 3, "--concurrent", 2,
                        "--input-len", 8, "--output-len", 4, "--ignore-eos")
    d = delta(before, metrics(server))
    assert res["completed"] == 3 and res["failed"] == 0
    assert res["total_output_tokens"] == 12 and res["tokens_source"] == "usage"
    assert res["prompt_token_ids"] == (api == "openai-completions")
    probe = api == "openai-completions"  # one request of 4 ids and 1 token, in no result
    assert d["vllm:generation_tokens_total"] == 12 + probe
    if probe:
        assert res["total_input_tokens"] == 24  # the ids as sent
        assert d["vllm:prompt_tokens_total"] == 24 + 4
    assert (res["count_ttft"] == 3) == (api != "generate")


def delta(before, after):
    return {k: after.get(k, 0) - before.get(k, 0) for k in after}


@pytest.mark.parametrize("api", APIS)
def test_real_metrics_agree(server, tmp_path, api):
    prompts = tmp_path / "p.txt"
    prompts.write_text("Tell me about cats.\nTell me about dogs.\nWhy is the sky blue?\n")
    before = metrics(server)
    _, res, raw = bench(server, tmp_path / "o", "--api", api, "--prompts", prompts,
                        "--requests", 4, "--concurrent", 2, "--max-tokens", 8, "--ignore-eos")
    d = delta(before, metrics(server))
    assert res["completed"] == 4
    assert d["vllm:generation_tokens_total"] == res["total_output_tokens"] == 32
    assert d["vllm:prompt_tokens_total"] == res["total_input_tokens"]
    assert d["vllm:time_to_first_token_seconds_count"] == 4
    # the client also counts the HTTP exchange: never less, and at most 50 ms + 20% more
    if api != "generate":  # not streamed: no TTFT on the client's side
        server_ttft = d["vllm:time_to_first_token_seconds_sum"] / 4 * 1e3
        client_ttft = res["mean_ttft_ms"]
        assert server_ttft - 1 <= client_ttft <= server_ttft * 1.2 + 50, (client_ttft, server_ttft)
    assert d["vllm:e2e_request_latency_seconds_count"] == 4
    server_e2e = d["vllm:e2e_request_latency_seconds_sum"] / 4 * 1e3
    assert server_e2e - 1 <= res["mean_e2el_ms"] <= server_e2e * 1.2 + 50


def test_real_open_loop_and_sweep(server, tmp_path):
    # open loop (Poisson at 20/s) and a concurrency sweep against the real server:
    # every request completes and the tokens agree with the server's counters
    before = metrics(server)
    _, res, raw = bench(server, tmp_path / "open", "--api", "openai-chat", "--request-rate", 20, "--requests", 6,
                        "--input-len", 8, "--output-len", 3, "--ignore-eos", "--seed", 3)
    d = delta(before, metrics(server))
    assert res["completed"] == 6 and res["failed"] == 0 and res["total_output_tokens"] == 18
    assert d["vllm:generation_tokens_total"] == 18
    out = tmp_path / "sweep"
    client("bench", "--base-url", server, "--api", "openai-chat", "--sweep-concurrency", "1,3", "--requests", 3,
           "--input-len", 8, "--output-len", 2, "--ignore-eos", "--out", out, "--quiet", timeout=120)
    points = sorted(json.loads(p.read_text())["completed"] for p in out.glob("result*.json"))
    assert points == [3, 3]
    assert (out / "throughput_sweep.svg").exists()
