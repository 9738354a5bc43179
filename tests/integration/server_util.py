"""Starts build/bin/llm_server on the default model for a test and stops it:
with a free port, its log captured, readiness awaited through GET /health."""

import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SERVER_BIN = Path(os.environ.get("LLM_SERVER_BIN", ROOT / "build" / "bin" / "llm_server"))
MODEL = ROOT / "models" / "SmolLM2-135M-Instruct"
MODEL_NAME = "SmolLM2-135M-Instruct"
# a KV pool that fits anywhere, with room for 256 short requests
ENGINE_ARGS = ["--kv-cache-memory", "256MiB", "--device", "cpu"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, *args, log_path=None, env=None, wait=True, model=MODEL):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.log = open(log_path, "w+") if log_path else subprocess.DEVNULL
        cmd = [str(SERVER_BIN), "--model", str(model), "--port", str(self.port), *ENGINE_ARGS, *args]
        e = dict(os.environ)
        e.update(env or {})
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=self.log, env=e)
        if wait:
            self.wait_ready()

    def wait_ready(self, timeout=120):
        end = time.time() + timeout
        while time.time() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"llm_server exited with {self.proc.returncode}: {self.log_text()}")
            try:
                with urllib.request.urlopen(self.url + "/health", timeout=2) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, OSError):
                pass
            time.sleep(0.1)
        raise RuntimeError("llm_server did not become ready")

    def log_text(self):
        if not self.log_path:
            return ""
        if not self.log.closed:
            self.log.flush()
        return Path(self.log_path).read_text()

    def request(self, method, path, body=None, headers=None, timeout=120):
        """(status, headers, parsed JSON or text) of one request."""
        data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method, headers=headers or {})
        if data is not None and "Content-Type" not in (headers or {}):
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                status, hdrs, raw = r.status, r.headers, r.read()
        except urllib.error.HTTPError as e:
            status, hdrs, raw = e.code, e.headers, e.read()
        text = raw.decode("utf-8", "replace")
        try:
            return status, hdrs, json.loads(text)
        except ValueError:
            return status, hdrs, text

    def metrics(self):
        """/metrics as {sample name with labels: value}, plus each metric's name alone
        mapped to the sum of its samples (histogram buckets left out)."""
        status, _, text = self.request("GET", "/metrics")
        assert status == 200, text
        out, sums = {}, {}
        for line in text.splitlines():
            if not line or line.startswith("#"):
                continue
            key, value = line.rsplit(" ", 1)
            out[key] = float(value)
            if 'le="' not in key:
                name = key.split("{")[0]
                sums[name] = sums.get(name, 0.0) + float(value)
        out.update(sums)
        return out

    def stop(self, sig=signal.SIGTERM, timeout=60):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.log_path:
            self.log.close()
        return self.proc.returncode

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
