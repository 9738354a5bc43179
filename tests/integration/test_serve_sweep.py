"""bench_engine serve-sweep: llm_server started for each setting of a JSON
grid (the default model: the server needs a tokenizer, 2 settings x 2 concurrencies, a few requests each),
awaited through /health, measured with llm_client's bench and stopped; one
result set with every point, the Pareto front of output tokens/s per user vs
per device, each point labelled, the best setting for the goodput SLO. And
--base-url against a server it did not start (the fake OpenAI server)."""

import csv
import json
import os
import socket
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import fake_openai_server  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
# one OpenMP thread: on 2 cores shared with other jobs, two threads waiting for
# each other at every barrier made a 5-second sweep take minutes
ENV = dict(os.environ, OMP_NUM_THREADS="1")
BIN = ROOT / "build" / "bin" / "bench_engine"
SVG = "{http://www.w3.org/2000/svg}"
MODEL = ROOT / "models" / "SmolLM2-135M-Instruct"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pareto(rows):
    pts = [(float(r["output_tok_s_per_user"]), float(r["output_throughput"])) for r in rows]
    return [not any(q[0] >= p[0] and q[1] >= p[1] and q != p for q in pts) for p in pts]


def test_serve_sweep_starts_a_server_per_setting(tmp_path):
    if not (MODEL / ".complete").exists():
        pytest.skip("default model absent: make model")
    grid = tmp_path / "grid.json"
    grid.write_text(json.dumps({"max_num_seqs": [1, 4], "block_size": 16}))
    out = tmp_path / "ss"
    p = subprocess.run([str(BIN), "serve-sweep", "--grid", str(grid), "--concurrency", "1,3",
                        "--num-requests", "3", "--warmup", "0", "--input-len", "16",
                        "--output-len", "4", "--goodput", "tpot:100000", "--port", str(free_port()),
                        "--out", str(out), "--gpu-hourly-cost", "2",
                        "--model", str(MODEL), "--device", "cpu", "--kv-cache-memory", "64MiB"],
                       capture_output=True, text=True, timeout=300, env=ENV)
    assert p.returncode == 0, p.stderr
    rows = list(csv.DictReader((out / "summary.csv").open()))
    assert [(r["settings"], int(r["concurrency"])) for r in rows] == [
        ("max-num-seqs=1,block-size=16", 1), ("max-num-seqs=1,block-size=16", 3),
        ("max-num-seqs=4,block-size=16", 1), ("max-num-seqs=4,block-size=16", 3)]
    for r in rows:
        assert int(r["completed"]) == 3 and int(r["failed"]) == 0, r
        assert float(r["output_throughput"]) > 0
        per_user = float(r["output_throughput"]) / int(r["concurrency"])
        assert abs(float(r["output_tok_s_per_user"]) - per_user) < 1e-3 * per_user + 1e-3
    assert [r["pareto"] == "1" for r in rows] == pareto(rows)
    # a server per setting, each with llm_client's own result set
    for i in range(2):
        assert (out / f"server-{i}.log").exists() and (out / f"combo-{i}" / "summary.csv").exists()
    assert p.stderr.count("server ready in") == 2
    md = (out / "report.md").read_text()
    assert "Best setting for the goodput SLO `tpot:100000`: **max-num-seqs=" in md
    root = ET.parse(out / "pareto.svg").getroot()
    labels = [t.text for t in root.iter(SVG + "text")]
    assert labels.count("c=1") == 2 and labels.count("c=3") == 2
    assert "Pareto front" in labels and "max-num-seqs=4,block-size=16" in labels
    assert len([e for e in root.iter(SVG + "circle") if e.get("class") == "pt"]) == 4 + sum(pareto(rows))
    assert (out / "pareto_per_dollar.svg").exists()
    assert "pareto.svg" in (out / "report.html").read_text()


def test_serve_sweep_base_url(tmp_path):
    srv, port = fake_openai_server.start()
    try:
        out = tmp_path / "ext"
        p = subprocess.run([str(BIN), "serve-sweep", "--base-url", f"http://127.0.0.1:{port}/normal",
                            "--concurrency", "1,2", "--num-requests", "2", "--warmup", "0",
                            "--input-len", "8", "--output-len", "4", "--out", str(out)],
                           capture_output=True, text=True, timeout=120)
    finally:
        srv.shutdown()
    assert p.returncode == 0, p.stderr
    rows = list(csv.DictReader((out / "summary.csv").open()))
    assert len(rows) == 2 and all(r["settings"] == f"server=http://127.0.0.1:{port}/normal" for r in rows)
    assert all(int(r["completed"]) == 2 for r in rows)
    assert "No goodput SLO given" in (out / "report.md").read_text()


def test_serve_sweep_bad_arguments(tmp_path):
    p = subprocess.run([str(BIN), "serve-sweep"], capture_output=True, text=True, timeout=30)
    assert p.returncode == 2 and "--grid FILE or --base-url URL" in p.stderr
    bad = tmp_path / "g.json"
    bad.write_text("[1, 2]")
    p = subprocess.run([str(BIN), "serve-sweep", "--grid", str(bad)], capture_output=True, text=True, timeout=30)
    assert p.returncode == 2 and "not a JSON object" in p.stderr
