"""bench_engine: a tiny CPU sweep of the default model writes every grid point
to raw.jsonl, summary.csv and report.md, with positive figures, predicted
resident memory within 10% of the measured RSS growth, KV capacity growing with
utilization, well-formed SVG plots referenced by report.html; and the dry-run
memory plan of llama-3-8b matches the analytic numbers."""

import csv
import json
import re
import shutil
import struct
import subprocess
import zlib
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = ROOT / "build" / "bin" / "bench_engine"
MODEL = ROOT / "models" / "SmolLM2-135M-Instruct"

BATCHES, INPUTS, UTILS = [1, 2], [16, 32], [0.5, 0.9]


def run(*args):
    p = subprocess.run([str(BIN), *args], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    return p


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    if not (MODEL / ".complete").exists():
        pytest.skip("default model absent: make model")
    out = tmp_path_factory.mktemp("sweep")
    p = run("sweep", "--model", str(MODEL), "--batch-sizes", "1,2", "--input-lens", "16,32",
            "--output-lens", "4", "--gpu-memory-utilization", "0.5,0.9", "--device-memory", "1GiB", "--device", "cpu",
            "--repeat", "1", "--warmup", "1",
            "--gpu-hourly-cost", "2", "--out", str(out), "--format", "json")
    (out.parent / "sweep.stderr").write_text(p.stderr)
    return out, json.loads(p.stdout)


def grid():
    return {(u, b, i) for u in UTILS for b in BATCHES for i in INPUTS}


def test_every_point_in_every_file(sweep):
    out, summary = sweep
    raw = [json.loads(line) for line in (out / "raw.jsonl").read_text().splitlines()]
    assert {(r["gpu_memory_utilization"], r["batch"], r["input"]) for r in raw} == grid()
    for r in raw:
        assert r["model"] == str(MODEL) and r["device"].startswith("cpu")
        assert r["max_num_seqs"] == 256 and r["device_total_bytes"] == 1 << 30
    rows = list(csv.DictReader((out / "summary.csv").open()))
    assert {(float(r["util"]), int(r["batch"]), int(r["input"])) for r in rows} == grid()
    md = (out / "report.md").read_text()
    for u, b, i in grid():
        assert re.search(rf"\| {u:.2f} \| fp16 \| {b} \| {i} \| 4 \|", md), (u, b, i)
    assert {r["kv_cache_dtype"] for r in rows} == {"fp16"}
    assert len(summary) == len(grid())


def test_numbers_positive_and_memory_predicted(sweep):
    _, summary = sweep
    for p in summary:
        for k in ["weights_bytes", "activations_bytes", "kv_allocated_bytes", "kv_peak_bytes",
                  "measured_bytes", "predicted_bytes", "predicted_resident_bytes", "activations_in_use_bytes", "kv_tokens", "prefill_tok_s", "decode_tok_s",
                  "decode_step_median_ms", "ttft_mean_ms", "tpot_mean_ms", "total_tok_s",
                  "output_tok_s", "decode_bandwidth_gbs", "tokens_per_dollar", "usd_per_mtok"]:
            assert p[k] > 0, (k, p)
        assert p["fit"] and p["preemptions"] == 0
        # decode bandwidth as a fraction of the measured copy bandwidth
        assert p["copy_bandwidth_gbs"] > 0
        assert abs(p["decode_bandwidth_frac"] - p["decode_bandwidth_gbs"] / p["copy_bandwidth_gbs"]) < 0.01
        # KV in use: the pages of batch x (input + output) tokens
        assert p["kv_peak_bytes"] >= p["batch"] * (p["input"] + p["output"] - 1) * 23040
        assert p["activations_in_use_bytes"] <= p["activations_bytes"]
        assert p["predicted_bytes"] == (p["weights_bytes"] + p["activations_in_use_bytes"]
                                        + p["overhead_bytes"] + p["kv_peak_bytes"])
        # measured RSS growth vs the predicted resident set (in use, plus the
        # KV pages and workspace rows touched earlier in the engine's life)
        assert p["predicted_resident_bytes"] >= p["predicted_bytes"]
        rel = abs(p["predicted_resident_bytes"] - p["measured_bytes"]) / p["measured_bytes"]
        assert rel < 0.10, p


def test_progress_one_line_per_point_in_a_pipe(sweep):
    out, _ = sweep
    lines = [l for l in (out.parent / "sweep.stderr").read_text().splitlines()
             if l.startswith("sweep: point ")]
    n = len(grid())
    assert [int(l.split()[2]) for l in lines] == list(range(1, n + 1)), lines
    assert all(f" of {n} (" in l and "elapsed, ETA" in l for l in lines)
    assert "\r" not in (out.parent / "sweep.stderr").read_text()


def test_percentiles_p50_p95_p99_in_every_summary(sweep):
    out, summary = sweep
    for p in summary:
        for m in ["ttft", "tpot"]:
            assert p[f"{m}_median_ms"] <= p[f"{m}_p95_ms"] <= p[f"{m}_p99_ms"], p
        assert p["decode_step_median_ms"] <= p["decode_step_p95_ms"] <= p["decode_step_p99_ms"]
    header = (out / "summary.csv").read_text().splitlines()[0]
    assert "ttft_p95_ms" in header and "decode_step_p95_ms" in header
    assert "TTFT mean/med/p95/p99 ms" in (out / "report.md").read_text()


def test_kv_capacity_grows_with_utilization(sweep):
    _, summary = sweep
    cap = {p["util"]: p["kv_tokens"] for p in summary}
    assert cap[0.9] > cap[0.5] > 0


def test_svgs_well_formed_and_in_html(sweep):
    out, _ = sweep
    svgs = sorted(f.name for f in out.glob("*.svg"))
    assert len(svgs) == 9
    for name in svgs:
        root = ET.parse(out / name).getroot()
        assert root.tag == "{http://www.w3.org/2000/svg}svg"
        kind = "rect" if name.startswith("heat_") else "circle"
        assert [e for e in root.iter("{http://www.w3.org/2000/svg}" + kind) if e.get("class") == "pt"]
    html = (out / "report.html").read_text()
    for name in svgs:  # inline, and linked
        assert f'href="{name}"' in html and f'<figure id="{name[:-4]}">' in html


def png_pixels(path):
    """Decodes an 8-bit RGB/RGBA non-interlaced PNG into (width, height, rows of bytes, channels)."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, w = 8, b"", 0
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            w, h, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and color in (2, 6) and interlace == 0
            ch = 3 if color == 2 else 4
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    raw, stride, rows, prev = zlib.decompress(idat), w * ch, [], bytearray(w * ch)
    for y in range(h):
        f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - ch] if i >= ch else 0
            b, c = prev[i], prev[i - ch] if i >= ch else 0
            if f == 1: line[i] = (line[i] + a) & 255
            elif f == 2: line[i] = (line[i] + b) & 255
            elif f == 3: line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(line)
        prev = line
    return w, h, rows, ch


@pytest.mark.skipif(not shutil.which("chromium"), reason="Debian's chromium is not installed (make deps)")
def test_report_renders_in_headless_chromium(sweep, tmp_path):
    """The report as a person sees it: the plots' coloured lines are on the page."""
    out, _ = sweep
    png = tmp_path / "report.png"
    subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                    "--window-size=1300,1800", f"--screenshot={png}", (out / "report.html").as_uri()],
                   capture_output=True, timeout=120, check=True)
    w, h, rows, ch = png_pixels(png)
    colours = {(0x1f, 0x77, 0xb4): 0, (0xd6, 0x27, 0x28): 0}  # the first two series' colours
    for line in rows:
        for x in range(0, w * ch, ch):
            px = tuple(line[x:x + 3])
            for c in colours:
                if all(abs(px[k] - c[k]) < 24 for k in range(3)):
                    colours[c] += 1
    assert all(n > 200 for n in colours.values()), colours


def test_memory_dry_run_llama3_8b():
    p = run("memory", "--synthetic", "llama-3-8b", "--device-memory", "80GiB", "--dry-run")
    w = int(re.search(r"weights .*?\((\d+) bytes\)", p.stdout).group(1))
    assert abs(w - 16.06e9) < 0.01e9
    assert "KV per token 131072 bytes" in p.stdout
    row = next(l for l in p.stdout.splitlines() if l.startswith("| 0.90 |"))
    kv_tokens = int(row.split("|")[4])
    act = int(re.search(r"activation peak .*?\((\d+) bytes", p.stdout).group(1))
    # vLLM: (total x util - weights - activations) / page bytes, in whole pages
    pages = (int(80 * 2**30 * 0.9) - w - act) // (131072 * 16)
    assert kv_tokens == pages * 16


def test_latency_and_throughput_commands():
    if not (MODEL / ".complete").exists():
        pytest.skip("default model absent: make model")
    p = run("latency", "--model", str(MODEL), "--batch-sizes", "2", "--input-lens", "8",
            "--output-lens", "3", "--repeat", "2", "--kv-cache-memory", "16MiB")
    assert re.search(r"decode step\s+[\d.]+ \+- [\d.]+ ms", p.stdout), p.stdout
    p = run("throughput", "--model", str(MODEL), "--num-requests", "3", "--input-lens", "8",
            "--output-lens", "3", "--kv-cache-memory", "16MiB")
    assert re.search(r"3 requests of 8\+3 tokens .* output tokens/s, 0 preemptions", p.stdout), p.stdout


def test_bad_arguments_fail_cleanly():
    p = subprocess.run([str(BIN), "sweep", "--synthetic", "smollm2-135m", "--batch-sizes", "1,x"],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 2 and "bad list" in p.stderr
    p = subprocess.run([str(BIN), "sweep"], capture_output=True, text=True, timeout=30)
    assert p.returncode == 2 and "--model" in p.stderr


# The memory plan has one owner (engine_plan_memory): the dry run, computed
# from config.json alone, and a real engine, which loads the weights and
# allocates its workspace, must print the same plan to the byte: weights,
# activation peak, page bytes, and every utilization's pages and KV tokens.
# (llama-3-8b takes 16 GB to instantiate, more than CI has: its dry run is
# checked against vLLM's arithmetic above, through the same function.)
PLAN_CASES = [
    ("smollm2-135m", "16", []),
    ("smollm2-135m", "16", ["--kv-cache-dtype", "fp8"]),
    ("smollm2-135m", "32", ["--max-num-seqs", "64", "--max-num-batched-tokens", "512"]),
    ("qwen3-0.6b", "16", ["--max-model-len", "4096"]),
    ("llama-3.2-1b", "16", []),
    ("llama-3.2-1b", "32", ["--quantization", "int8"]),
]


def plan_lines(stdout):
    keep = [l for l in stdout.splitlines()
            if l.startswith(("weights ", "KV per token", "|")) and not l.startswith("weights by kind")
            and not l.startswith("weights: Linear")]
    assert len(keep) >= 5, stdout
    return keep


@pytest.mark.parametrize("name,block,extra", PLAN_CASES)
def test_memory_dry_run_equals_engine(name, block, extra):
    args = ["memory", "--synthetic", name, "--device", "cpu", "--device-memory", "12GiB",
            "--block-size", block, "--utilizations", "0.5,0.9", "--seq-lens", "512,4096", *extra]
    dry = run(*args, "--dry-run")
    real = run(*args)
    assert "measured on cpu" in real.stdout
    assert plan_lines(dry.stdout) == plan_lines(real.stdout)


# bench_engine plan: predictions from config and datasheet alone.
L4_MEMORY = 23034 * 2**20
GPU_OVERHEAD = 768 * 2**20


def test_plan_l4_fit_capacity_speed_cost():
    p = run("plan", "--synthetic", "llama-3-8b", "--gpu", "l4", "--gpu-hourly-cost", "0.8",
            "--format", "json", "--batch-sizes", "1,16", "--utilizations", "0.9",
            "--max-num-batched-tokens", "2048")
    j = json.loads(p.stdout)
    assert j["card"] == "l4" and j["dtype"] == "bf16" and j["weights_fit"] is True
    w = j["weights_bytes"]
    assert abs(w - 16.06e9) < 0.01e9
    dry = run("memory", "--synthetic", "llama-3-8b", "--device-memory", str(L4_MEMORY), "--dry-run",
              "--utilizations", "0.9", "--max-num-batched-tokens", "2048")
    act = int(re.search(r"activation peak .*?\((\d+) bytes", dry.stdout).group(1))
    # on a GPU the workspace also holds the split-decode attention scratch
    # (256 sequences x 32 heads x 16 partitions x (128 + 2) floats), the
    # decode graphs' metadata (6 x 256 + 1 + 256 x 512 block-table int32s) and
    # the matmul inputs' 16-bit copies (2048 tokens x 14336, the widest input)
    act_gpu = j["activation_bytes"]
    assert act_gpu == (act + 256 * 32 * 16 * 130 * 4 + (6 * 256 + 1 + 256 * 512) * 4
                       + 2048 * 14336 * 2)
    # vLLM's arithmetic on the card, with the GPU runtime overhead the plan assumes
    pages = (int(L4_MEMORY * 0.9) - w - act_gpu - GPU_OVERHEAD) // (131072 * 16)
    rows = {r["batch"]: r for r in j["decode"]}
    assert rows[1]["kv_tokens"] == pages * 16
    # batch 1 is bandwidth-bound: every weight but the untied embedding table,
    # plus 576 tokens of KV, at 300 GB/s x efficiency
    weight_read = w - 128256 * 4096 * 2
    step = (weight_read + 576 * 131072) / 300e9 / j["efficiency"]
    assert rows[1]["bound"] == "memory"
    assert abs(rows[1]["step_ms"] - step * 1e3) < 1e-6 * step * 1e3
    assert abs(rows[16]["usd_per_mtok"] - 0.8 / 3600 / rows[16]["decode_tokens_per_s"] * 1e6) < 1e-9
    assert rows[16]["decode_tokens_per_s"] > 10 * rows[1]["decode_tokens_per_s"]
    assert j["prefill_tokens_per_s"] > rows[16]["decode_tokens_per_s"]


def test_plan_t4_runs_bf16_as_fp16_and_suggests_int8():
    p = run("plan", "--synthetic", "llama-3-8b", "--gpu", "t4")
    assert "dtype: fp16; no bf16 arithmetic below compute capability 8.0" in p.stdout
    assert "the weights do NOT fit" in p.stdout
    assert "with --quantization int8 the weights would take" in p.stdout
    p = run("plan", "--synthetic", "llama-3.2-1b", "--gpu", "t4", "--format", "csv")
    rows = list(csv.DictReader(p.stdout.splitlines()))
    assert rows and all(r["dtype"] == "fp16" for r in rows)
    assert any(r["fits"] == "1" for r in rows)


def test_plan_custom_card_and_config_file(tmp_path):
    if not (MODEL / ".complete").exists():
        pytest.skip("default model absent: make model")
    p = run("plan", "--config", str(MODEL / "config.json"), "--device-memory", "8GiB",
            "--bandwidth", "100", "--flops", "10", "--compute-capability", "8.0",
            "--format", "json", "--batch-sizes", "1")
    j = json.loads(p.stdout)
    assert j["card"] == "custom" and j["weights_fit"] is True
    # the default model: tied embeddings, so every weight byte is read per step
    step = (j["weights_bytes"] + 576 * j["kv_bytes_per_token"]) / 100e9 / j["efficiency"]
    assert abs(j["decode"][0]["step_ms"] - step * 1e3) < 1e-6 * step * 1e3


def test_plan_bad_card_names_the_presets():
    p = subprocess.run([str(BIN), "plan", "--synthetic", "llama-3-8b", "--gpu", "v100"],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 2
    assert "unknown --gpu 'v100'" in p.stderr and "t4" in p.stderr and "h200" in p.stderr
