"""bench_engine's sweep report: every measured point of a small synthetic sweep
(2 utilizations x 3 batch sizes x 2 input lengths, a few seconds) is a mark in
the figures (checked in the SVG files and in the DOM headless Chromium builds
from report.html); the header names the command, version, device and date;
`bench_engine report DIR` rebuilds the same report from raw.jsonl alone, a
truncated last line included; a spread across repeats is flagged noisy; a
SIGINT finishes the report from the points done."""

import json
import os
import re
import shutil
import signal
import subprocess
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# one OpenMP thread: on 2 cores shared with other jobs, two threads waiting for
# each other at every barrier made a 5-second sweep take minutes
ENV = dict(os.environ, OMP_NUM_THREADS="1")
BIN = ROOT / "build" / "bin" / "bench_engine"
SVG = "{http://www.w3.org/2000/svg}"
# the raw.jsonl fields that are grid dimensions (sweep_figs.c); a field a
# build does not write yet (kv_cache_dtype as a list, dtype) is simply absent
DIMS = ["gpu_memory_utilization", "kv_cache_dtype", "dtype", "output", "max_num_seqs",
        "max_num_batched_tokens", "block_size", "batch", "input"]
GRID = ["--synthetic", "smollm2-135m", "--device", "cpu", "--device-memory", "1GiB",
        "--batch-sizes", "1,2,4", "--input-lens", "16,32", "--output-lens", "4",
        "--gpu-memory-utilization", "0.5,0.9", "--repeat", "2"]


def fmt(v):
    """A value as the report writes it (C's %g for numbers)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return "%g" % v
    return "" if v is None else str(v)


def point_keys(raw_rows):
    return {",".join(f"{d}={fmt(r.get(d))}" for d in DIMS) for r in raw_rows}


def marks(svg_path):
    root = ET.parse(svg_path).getroot()
    assert root.tag == SVG + "svg"
    return [e.get("data-key") for e in root.iter() if e.get("class") == "pt" and e.get("data-key")]


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "run"
    p = subprocess.run([str(BIN), "sweep", *GRID, "--out", str(out)], capture_output=True,
                       text=True, timeout=300, env=ENV)  # ~5 s on 2 idle cores; minutes when shared
    assert p.returncode == 0, p.stderr
    raw = [json.loads(l) for l in (out / "raw.jsonl").read_text().splitlines()]
    assert len(raw) == 2 * 3 * 2 * 2
    return out, raw


def test_every_measured_point_is_in_the_figures(sweep):
    out, raw = sweep
    want = point_keys(raw)
    assert len(want) == 12
    seen = set()
    for svg in out.glob("*.svg"):
        seen |= set(marks(svg))
    assert seen == want
    # the throughput-latency curve and both heat maps each hold every point
    for name in ["throughput_vs_latency.svg", "heat_decode_tok_s.svg", "heat_tpot.svg",
                 "memory_vs_batch.svg", "memory_predicted_vs_measured.svg"]:
        assert set(marks(out / name)) == want, name
    # small multiples: one panel per utilization where it is off the axes
    root = ET.parse(out / "throughput_vs_latency.svg").getroot()
    panels = [g for g in root.iter(SVG + "g") if g.get("class") == "panel"]
    titles = sorted("".join(t.itertext()) for p in panels for t in p.findall(SVG + "text")
                    if "util=" in "".join(t.itertext()))
    assert titles == ["util=0.5", "util=0.9"], titles


@pytest.mark.skipif(not shutil.which("chromium"), reason="Debian's chromium is not installed (make deps)")
def test_every_point_in_the_dom_headless_chromium_builds(sweep):
    out, raw = sweep
    p = subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom",
                        (out / "report.html").as_uri()], capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 0, p.stderr[-2000:]
    dom = p.stdout
    keys = set(re.findall(r'class="pt"[^>]*data-key="([^"]+)"', dom))
    assert keys == point_keys(raw)
    assert dom.count("<svg") == 9  # every figure inline


def test_header_command_version_device_date(sweep):
    out, raw = sweep
    html = (out / "report.html").read_text()
    run = json.loads((out / "run.json").read_text())
    assert run["command"].split()[1:] == ["sweep", *GRID, "--out", str(out)]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", run["date"])
    assert run["version"] and run["version"] != "unknown"
    for s in [run["version"], run["date"], "--batch-sizes 1,2,4", raw[0]["device"]]:
        assert s in html, s
    # human units in the table, never a raw byte count
    assert re.search(r"<td>\d+\.\d+ MiB</td>", html)
    assert not re.search(r"<td>\d{7,}</td>", html)


def test_report_rebuilds_from_raw_jsonl_even_truncated(sweep, tmp_path):
    out, raw = sweep
    d = tmp_path / "copy"
    d.mkdir()
    shutil.copy(out / "raw.jsonl", d / "raw.jsonl")
    shutil.copy(out / "run.json", d / "run.json")
    p = subprocess.run([str(BIN), "report", str(d)], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert (d / "report.html").read_text() == (out / "report.html").read_text()
    # a line cut by a kill is skipped and said
    with (d / "raw.jsonl").open("a") as f:
        f.write(json.dumps(raw[0])[:40])
    p = subprocess.run([str(BIN), "report", str(d)], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and "12 grid point" in p.stderr, p.stderr
    assert "1 raw.jsonl line(s) that did not parse were skipped" in (d / "report.html").read_text()
    p = subprocess.run([str(BIN), "report", str(tmp_path / "none")], capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 1 and "raw.jsonl" in p.stderr


def test_single_input_length_axis_starts_at_zero(tmp_path):
    """One input length gave an axis from 512 to 513: now every axis starts at 0."""
    rows = []
    for b in [1, 2]:
        rows.append({"batch": b, "input": 512, "output": 4, "gpu_memory_utilization": 0.9,
                     "ttft_median_ms": 100.0 * b, "tpot_median_ms": 10.0, "decode_tok_s": 100.0 * b,
                     "decode_step_median_ms": 10.0, "prefill_tok_s": 500.0,
                     "measured_bytes": 1 << 28, "predicted_resident_bytes": 1 << 28,
                     "kv_tokens": 1000})
    (tmp_path / "raw.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    p = subprocess.run([str(BIN), "report", str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    root = ET.parse(tmp_path / "ttft_vs_input.svg").getroot()
    ticks = [t.text for t in root.iter(SVG + "text") if t.get("font-size") == "10"]
    assert "0" in ticks and "513" not in ticks and "600" in ticks, ticks


def test_spread_across_repeats_flagged_noisy(tmp_path):
    base = {"batch": 1, "input": 64, "output": 8, "gpu_memory_utilization": 0.9,
            "ttft_median_ms": 50.0, "tpot_median_ms": 20.0, "decode_tok_s": 50.0,
            "prefill_tok_s": 1000.0, "measured_bytes": 1 << 28,
            "predicted_resident_bytes": 1 << 28, "kv_tokens": 1000}
    rows = [dict(base, decode_step_median_ms=22.0), dict(base, decode_step_median_ms=92.0),
            dict(base, batch=4, decode_step_median_ms=30.0), dict(base, batch=4, decode_step_median_ms=31.0)]
    (tmp_path / "raw.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    p = subprocess.run([str(BIN), "report", str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    html = (tmp_path / "report.html").read_text()
    assert html.count('<tr class="noisy">') == 1  # batch 1 (22 vs 92 ms), not batch 4
    root = ET.parse(tmp_path / "latency_vs_batch.svg").getroot()
    rings = [e for e in root.iter(SVG + "circle") if e.get("class") == "noisy"]
    whiskers = [e for e in root.iter(SVG + "line") if e.get("class") == "spread"]
    assert len(rings) == 1 and len(whiskers) == 2


def test_sigint_finishes_the_report_from_the_points_done(tmp_path):
    out = tmp_path / "run"
    grid = ["--synthetic", "smollm2-135m", "--device", "cpu", "--device-memory", "1GiB",
            "--batch-sizes", "1,2,3,4,5,6,7,8", "--input-lens", "64,128", "--output-lens", "16",
            "--repeat", "2", "--out", str(out)]
    p = subprocess.Popen([str(BIN), "sweep", *grid], stderr=subprocess.PIPE, text=True, env=ENV)
    lines = []
    for line in p.stderr:
        lines.append(line)
        if line.startswith("sweep: point 2 of 16"):
            p.send_signal(signal.SIGINT)
            break
    rest = p.stderr.read()
    assert p.wait(timeout=300) == 130, rest
    assert "interrupted: stopping; the report holds the" in rest, rest
    raw = [json.loads(l) for l in (out / "raw.jsonl").read_text().splitlines()]  # whole lines
    assert 4 <= len(raw) < 32
    html = (out / "report.html").read_text()
    done = len({(r["batch"], r["input"]) for r in raw})
    assert f"{done} grid points" in html
    assert (out / "summary.csv").exists()


def test_the_issue_grid_with_two_kv_dtypes_every_point_in_the_figures(tmp_path):
    """2 utilizations x 2 KV dtypes x 3 batch sizes x 2 input lengths, as raw.jsonl
    records (what a sweep with a KV dtype list writes): every point is a mark,
    and the dimensions off the axes are panels (4: util x KV)."""
    rows = []
    for u in [0.5, 0.9]:
        for kv in ["fp16", "fp8"]:
            for b in [1, 4, 16]:
                for i in [128, 512]:
                    for rep in range(2):
                        rows.append({"gpu_memory_utilization": u, "kv_cache_dtype": kv, "batch": b,
                                     "input": i, "output": 16, "repeat_index": rep,
                                     "decode_tok_s": 50.0 * b / (1 + rep * 0.01),
                                     "tpot_median_ms": 20.0 + b, "ttft_median_ms": i * b / 10,
                                     "prefill_tok_s": 400.0, "decode_step_median_ms": 20.0 + b,
                                     "measured_bytes": (300 + b * i // 64) << 20,
                                     "predicted_resident_bytes": (301 + b * i // 64) << 20,
                                     "kv_tokens": int(u * (2 if kv == "fp8" else 1) * 10000)})
    (tmp_path / "raw.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    p = subprocess.run([str(BIN), "report", str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    want = point_keys(rows)
    assert len(want) == 24
    for name in ["throughput_vs_latency.svg", "heat_decode_tok_s.svg", "memory_vs_batch.svg"]:
        assert set(marks(tmp_path / name)) == want, name
    root = ET.parse(tmp_path / "throughput_vs_latency.svg").getroot()
    titles = {"".join(t.itertext()) for g in root.iter(SVG + "g") if g.get("class") == "panel"
              for t in g.findall(SVG + "text") if "KV=" in "".join(t.itertext())}
    assert titles == {f"util={u}, KV={kv}" for u in ["0.5", "0.9"] for kv in ["fp16", "fp8"]}
    # the KV capacity figure: a line per KV dtype
    root = ET.parse(tmp_path / "kv_capacity_vs_util.svg").getroot()
    legend = [t.text for t in root.iter(SVG + "text")]
    assert "KV=fp16" in legend and "KV=fp8" in legend
    if shutil.which("chromium"):
        d = subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom",
                            (tmp_path / "report.html").as_uri()], capture_output=True, text=True,
                           timeout=120)
        assert set(re.findall(r'class="pt"[^>]*data-key="([^"]+)"', d.stdout)) == want
