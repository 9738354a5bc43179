"""The pieces of a fleet on loopback for tests/deploy: nginx running
deploy/nginx/llm-fleet.conf in front of llm_server replicas, Prometheus
running deploy/prometheus's rules over them, and a streaming load generator
that records what each request saw."""

import http.client
import json
import os
import pwd
import grp
import re
import shutil
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "integration"))
from server_util import free_port  # noqa: E402

DEPLOY = ROOT / "deploy"


def find_tool(name):
    """The tool's path (also in /usr/sbin, not on a user's PATH), or None."""
    return shutil.which(name) or next(
        (str(p) for p in (Path("/usr/sbin") / name, Path("/usr/bin") / name) if p.exists()), None
    )


def require_tools(pytest, *names):
    """Skips (or fails under LLM_DEPLOY_REQUIRE=1, as make test-deploy sets)
    when a tool is missing; returns their paths."""
    paths = [find_tool(n) for n in names]
    missing = [n for n, p in zip(names, paths) if not p]
    if missing:
        msg = f"{', '.join(missing)} not installed: run 'make deps' (Debian packages nginx-light, prometheus)"
        if os.environ.get("LLM_DEPLOY_REQUIRE") == "1":
            pytest.fail(msg)
        pytest.skip(msg)
    return paths


def fleet_conf(ports, listen_port, affinity=False):
    """deploy/nginx's file with the test's replica ports and listen port."""
    src = (DEPLOY / "nginx" / ("llm-fleet-affinity.conf" if affinity else "llm-fleet.conf")).read_text()
    lines = src.splitlines(keepends=True)
    servers = [i for i, line in enumerate(lines) if re.match(r"\s+server 127\.0\.0\.1:\d+ ", line)]
    assert len(servers) == 3, "deploy/nginx conf: expected 3 server lines"
    template = lines[servers[0]]
    new = [re.sub(r"127\.0\.0\.1:\d+", f"127.0.0.1:{p}", template) for p in ports]
    lines[servers[0] : servers[-1] + 1] = new
    out = "".join(lines)
    out, n = re.subn(r"listen 127\.0\.0\.1:\d+;", f"listen 127.0.0.1:{listen_port};", out)
    assert n == 1
    return out


class Nginx:
    """nginx in the foreground with its files in DIR; the access log has one
    JSON line per request: client id, status, upstreams tried and their
    statuses (several when nginx retried)."""

    def __init__(self, binary, tmp, ports, affinity=False):
        self.dir = Path(tmp) / "nginx"
        self.dir.mkdir()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        (self.dir / "llm-fleet.conf").write_text(fleet_conf(ports, self.port, affinity))
        user = pwd.getpwuid(os.getuid()).pw_name
        group = grp.getgrgid(os.getgid()).gr_name
        d = self.dir
        (d / "nginx.conf").write_text(f"""
user {user} {group};
worker_processes 1;
daemon off;
pid {d}/nginx.pid;
error_log {d}/error.log info;
events {{ worker_connections 1024; }}
http {{
    log_format fleet escape=json '{{"client":"$http_x_client_id","status":$status,'
        '"upstream":"$upstream_addr","upstream_status":"$upstream_status",'
        '"bytes":$body_bytes_sent}}';
    access_log {d}/access.log fleet;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    include {d}/llm-fleet.conf;
}}
""")
        subprocess.run([binary, "-t", "-c", str(d / "nginx.conf")], check=True, capture_output=True)
        self.log = open(d / "stderr.log", "w")
        self.proc = subprocess.Popen([binary, "-c", str(d / "nginx.conf")], stdout=self.log, stderr=self.log)
        wait_http(self.url + "/nginx-health", self.proc, "nginx")

    def access_log(self, expect=(), timeout=10.0):
        """The access log's entries. nginx writes a request's line after the
        client has read its last byte, so a caller that just finished requests
        names their client ids in `expect` and this waits (up to `timeout`
        seconds) until each has its line; a half-written last line is skipped."""
        path = self.dir / "access.log"
        deadline = time.time() + timeout
        while True:
            entries = []
            if path.exists():
                for line in path.read_text().splitlines():
                    try:
                        entries.append(json.loads(line))
                    except json.JSONDecodeError:
                        pass
            missing = set(expect) - {e.get("client") for e in entries}
            if not missing or time.time() > deadline:
                return entries
            time.sleep(0.1)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=20)
        self.log.close()


class Prometheus:
    """Prometheus scraping the replicas every second with deploy/prometheus's
    rule files, evaluated every second."""

    def __init__(self, binary, tmp, ports):
        self.dir = Path(tmp) / "prometheus"
        self.dir.mkdir()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        rules = [DEPLOY / "prometheus" / "llm-recording.rules.yml", DEPLOY / "prometheus" / "llm-alerts.rules.yml"]
        targets = ", ".join(f"'127.0.0.1:{p}'" for p in ports)
        cfg = self.dir / "prometheus.yml"
        cfg.write_text(
            "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
            "rule_files: [" + ", ".join(f"'{r}'" for r in rules) + "]\n"
            f"scrape_configs:\n  - job_name: llm\n    static_configs:\n      - targets: [{targets}]\n"
        )
        self.log = open(self.dir / "stderr.log", "w")
        self.proc = subprocess.Popen(
            [binary, f"--config.file={cfg}", f"--storage.tsdb.path={self.dir / 'data'}",
             f"--web.listen-address=127.0.0.1:{self.port}"],
            stdout=self.log, stderr=self.log,
        )
        wait_http(self.url + "/-/ready", self.proc, "prometheus", timeout=60)

    def query(self, expr):
        """The instant query's result list; raises on a PromQL error."""
        url = self.url + "/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        with urllib.request.urlopen(url, timeout=10) as r:
            body = json.loads(r.read())
        assert body["status"] == "success", body
        return body["data"]["result"]

    def value(self, expr):
        res = self.query(expr)
        return float(res[0]["value"][1]) if res else None

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=30)
        self.log.close()


def wait_http(url, proc, what, timeout=30):
    end = time.time() + timeout
    while time.time() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{what} did not answer {url}")


def stream_request(port, client_id, prompt, max_tokens, timeout=300, session=None):
    """One streamed chat completion through port; returns a dict:
    outcome ok (the stream ended with [DONE] after a finish_reason),
    http_error (an answer other than 200; status), cut (200, then the stream
    broke or ended before [DONE]: the client saw an error), or conn_error;
    tokens (content chunks seen)."""
    body = json.dumps({
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": max_tokens, "temperature": 0, "ignore_eos": True, "stream": True,
    })
    headers = {"Content-Type": "application/json", "X-Client-Id": str(client_id)}
    if session is not None:
        headers["X-Session-Id"] = session
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    out = {"client": str(client_id), "tokens": 0, "outcome": None, "status": None, "t_start": time.time()}
    try:
        conn.request("POST", "/v1/chat/completions", body=body, headers=headers)
        r = conn.getresponse()
        out["status"] = r.status
        if r.status != 200:
            r.read()
            out["outcome"] = "http_error"
            return out
        finish, done = None, False
        while True:
            line = r.readline()
            if not line:
                break
            line = line.strip()
            if not line.startswith(b"data: "):
                continue
            data = line[6:]
            if data == b"[DONE]":
                done = True
                break
            chunk = json.loads(data)
            for c in chunk.get("choices", []):
                if c.get("delta", {}).get("content"):
                    out["tokens"] += 1
                finish = c.get("finish_reason") or finish
        out["finish_reason"] = finish
        out["outcome"] = "ok" if done and finish else "cut"
    except (http.client.HTTPException, OSError, ValueError) as e:
        out["outcome"] = "cut" if out["status"] == 200 else "conn_error"
        out["error"] = f"{type(e).__name__}: {e}"
    finally:
        conn.close()
    return out


class Load:
    """n streamed requests through port, `concurrency` at a time, in threads;
    results in self.results (in completion order)."""

    def __init__(self, port, n, concurrency, max_tokens, prefix="r"):
        self.port, self.n, self.max_tokens = port, n, max_tokens
        self.results, self.lock, self.next = [], threading.Lock(), 0
        self.prefix = prefix
        self.threads = [threading.Thread(target=self._worker, daemon=True) for _ in range(concurrency)]

    def _worker(self):
        while True:
            with self.lock:
                i = self.next
                if i >= self.n:
                    return
                self.next += 1
            prompt = f"Request {i}: write a short story about the number {i}."
            res = stream_request(self.port, f"{self.prefix}{i}", prompt, self.max_tokens)
            with self.lock:
                self.results.append(res)

    def start(self):
        for t in self.threads:
            t.start()
        return self

    def done(self):
        with self.lock:
            return len(self.results)

    def join(self, timeout):
        end = time.time() + timeout
        for t in self.threads:
            t.join(max(0.0, end - time.time()))
        assert all(not t.is_alive() for t in self.threads), f"load still running after {timeout} s"
        return self.results
