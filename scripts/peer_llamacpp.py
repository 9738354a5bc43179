#!/usr/bin/env python3
"""peer_llamacpp.py - this engine against llama.cpp on the CPU, side by side,
in one invocation, on the same weights and the same cores.

What it does:
  1. builds llama.cpp once into .cache/peer/ from the llama-cpp-python source
     distribution on PyPI (pinned below; it vendors llama.cpp): llama-bench,
     llama-quantize and llama-server, CPU only, -march=native;
  2. writes the model as GGUF F16 (scripts/peer_gguf.py) and quantizes that
     to Q8_0 with llama-quantize (8-bit, per block of 32, against our
     per-channel int8: --quantization int8);
  3. runs, alternating which side goes first, --rounds times:
       prefill of --prompt tokens (llama-bench -p; bench_engine latency),
       decode of --gen tokens (llama-bench -n; bench_engine latency) for
       fp16 and 8-bit weights;
     and with --serve, each server (llama-server -np 64 with continuous
     batching; llm_server) under `llm_client bench` at 1, 16 and 64
     concurrent streams (token-id prompts, --ignore-eos) — which also proves
     llm_client against a server that is not ours;
  4. prints one table: medians with min-max over the rounds, and ours /
     llama.cpp.
With --stress, `stress-ng --cpu N` (N = --threads) runs beside both sides
for the whole measurement: how each degrades when another process wants
the cores.

Every figure is measured in this invocation; only ratios from one run mean
anything (the machine under a session changes from day to day).

Usage: scripts/peer_llamacpp.py [--model DIR] [--threads 2] [--rounds 3]
         [--prompt 512] [--gen 128] [--serve] [--stress] [--skip-8bit] [--bf16]
With --bf16, ours also runs with --dtype bf16 --cpu-matmul bf16 (weights and
activations rounded to bf16, AVX512_BF16 products; quality measured by
tests/integration/test_cpu_bf16.py), set against llama.cpp's F16 rows.
"""
import argparse
import csv
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PEER = os.path.join(ROOT, ".cache", "peer")
LLAMA_CPP_PYTHON = "0.3.36"  # its sdist vendors llama.cpp
SRC = os.path.join(PEER, f"llama_cpp_python-{LLAMA_CPP_PYTHON}", "vendor", "llama.cpp")
BIN = os.path.join(SRC, "build", "bin")
OURS = os.path.join(ROOT, "build", "bin")


def log(msg):
    print(f"peer: {msg}", file=sys.stderr, flush=True)


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, text=True, **kw)


def ensure_llamacpp():
    tools = ["llama-bench", "llama-quantize", "llama-server"]
    if all(os.path.exists(os.path.join(BIN, t)) for t in tools):
        return
    os.makedirs(PEER, exist_ok=True)
    if not os.path.isdir(SRC):
        log(f"downloading llama-cpp-python {LLAMA_CPP_PYTHON} (source distribution)")
        pip = os.path.join(ROOT, ".venv", "bin", "pip")
        run([pip if os.path.exists(pip) else "pip", "download", f"llama-cpp-python=={LLAMA_CPP_PYTHON}",
             "--no-deps", "--no-binary", ":all:", "-d", PEER], stdout=subprocess.DEVNULL)
        run(["tar", "xzf", os.path.join(PEER, f"llama_cpp_python-{LLAMA_CPP_PYTHON}.tar.gz")], cwd=PEER)
    log("building llama.cpp (CPU, native) once; several minutes on 2 cores")
    run(["cmake", "-B", "build", "-DCMAKE_BUILD_TYPE=Release", "-DGGML_NATIVE=ON",
         "-DLLAMA_CURL=OFF", "-DLLAMA_BUILD_TESTS=OFF", "-DLLAMA_BUILD_EXAMPLES=OFF",
         "-DGGML_CUDA=OFF"], cwd=SRC, stdout=subprocess.DEVNULL)
    run(["cmake", "--build", "build", "-j", str(os.cpu_count() or 2), "--target", *tools],
        cwd=SRC, stdout=subprocess.DEVNULL)


def ensure_gguf(model_dir, want_8bit):
    name = os.path.basename(os.path.normpath(model_dir))
    f16 = os.path.join(PEER, f"{name}-f16.gguf")
    q8 = os.path.join(PEER, f"{name}-q8_0.gguf")
    if not os.path.exists(f16):
        log(f"writing {f16}")
        env = dict(os.environ, PYTHONPATH=os.path.join(SRC, "gguf-py"))
        run([sys.executable, os.path.join(ROOT, "scripts", "peer_gguf.py"), model_dir, f16], env=env)
    if want_8bit and not os.path.exists(q8):
        log(f"quantizing to {q8}")
        run([os.path.join(BIN, "llama-quantize"), f16, q8, "Q8_0"], stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)
    return f16, q8


# --- one measurement each -------------------------------------------------------------

def llama_bench(gguf, threads, prompt, gen):
    """tokens/s of llama-bench's one test (-p prompt or -n gen)."""
    out = run([os.path.join(BIN, "llama-bench"), "-m", gguf, "-t", str(threads), "-r", "1",
               "-p", str(prompt), "-n", str(gen), "-o", "json"],
              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL).stdout
    rows = json.loads(out)
    return rows[0]["avg_ts"]


BF16_FLAGS = ["--dtype", "bf16", "--cpu-matmul", "bf16"]


def ours_latency(model_dir, threads, prompt, gen, int8, extra=()):
    """(prefill tokens/s, decode tokens/s) from bench_engine latency, batch 1."""
    cmd = [os.path.join(OURS, "bench_engine"), "latency", "--model", model_dir, "--device", "cpu",
           "--batch-sizes", "1", "--input-lens", str(prompt), "--output-lens", str(gen),
           "--repeat", "1", "--kv-cache-memory", "256MiB", *extra]
    if int8:
        cmd += ["--quantization", "int8"]
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    out = run(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env).stdout
    pre = float(re.search(r"prefill\s+([\d.]+)", out).group(1))
    step = float(re.search(r"decode step\s+([\d.]+)", out).group(1))
    return prompt / (pre / 1000.0), 1000.0 / step


# --- servers ---------------------------------------------------------------------------

def wait_health(url, proc, what, limit=300):
    t0 = time.time()
    while time.time() - t0 < limit:
        if proc.poll() is not None:
            sys.exit(f"peer: {what} exited with {proc.returncode} before it was healthy")
        try:
            with urllib.request.urlopen(url + "/health", timeout=2) as r:
                if r.status == 200:
                    return
        except Exception:
            pass
        time.sleep(0.5)
    sys.exit(f"peer: {what} not healthy after {limit} s")


def client_bench(url, conc, n_req, in_len, out_len, outdir):
    """(output tokens/s, total tokens/s, median TTFT ms, p99 TTFT ms, median ITL ms)."""
    run([os.path.join(OURS, "llm_client"), "bench", "--base-url", url,
         "--api", "openai-completions", "--input-len", str(in_len), "--output-len", str(out_len),
         "--ignore-eos", "--concurrent", str(conc), "--requests", str(n_req), "--out", outdir,
         "--quiet", "--timeout", "600"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with open(os.path.join(outdir, "summary.csv")) as f:
        row = list(csv.DictReader(f))[-1]
    g = lambda k: float(row[k]) if row.get(k) else float("nan")  # noqa: E731
    return (g("output_throughput"), g("total_token_throughput"), g("median_ttft_ms"),
            g("p99_ttft_ms"), g("median_itl_ms"))


def serve_round(side, model_dir, gguf, threads, concs, port, in_len, out_len, extra=()):
    url = f"http://127.0.0.1:{port}"
    slots = max(concs)
    if side == "llama.cpp":
        cmd = [os.path.join(BIN, "llama-server"), "-m", gguf, "-t", str(threads), "--port", str(port),
               "-np", str(slots), "-c", str(slots * (in_len + out_len + 16)), "-cb"]
        env = dict(os.environ)
    else:
        cmd = [os.path.join(OURS, "llm_server"), "--model", model_dir, "--device", "cpu", "--port",
               str(port), "--max-num-seqs", str(slots), "--kv-cache-memory", "512MiB", *extra]
        env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        wait_health(url, proc, side)
        res = {}
        with tempfile.TemporaryDirectory() as d:
            for c in concs:
                res[c] = client_bench(url, c, max(2 * c, 8), in_len, out_len, os.path.join(d, str(c)))
                log(f"  {side} serving, {c} streams: {res[c][0]:.1f} output tok/s")
        return res
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()


# --- the table -------------------------------------------------------------------------

def fmt(vals):
    if not vals:
        return "-"
    return f"{statistics.median(vals):.1f} ({min(vals):.1f}-{max(vals):.1f})"


def ratio(ours, peer):
    if not ours or not peer:
        return "-"
    return f"{statistics.median(ours) / statistics.median(peer):.2f}x"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=os.path.join(ROOT, "models", "SmolLM2-135M-Instruct"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--prompt", type=int, default=512)
    ap.add_argument("--gen", type=int, default=128)
    ap.add_argument("--serve", action="store_true", help="also the servers at 1, 16, 64 streams")
    ap.add_argument("--concurrency", default="1,16,64")
    ap.add_argument("--stress", action="store_true", help="stress-ng --cpu THREADS beside both")
    ap.add_argument("--skip-8bit", action="store_true")
    ap.add_argument("--bf16", action="store_true",
                    help="also ours with " + " ".join(BF16_FLAGS) + " (AVX512_BF16 products), against "
                    "llama.cpp's F16 rows")
    a = ap.parse_args()
    ensure_llamacpp()
    f16, q8 = ensure_gguf(a.model, not a.skip_8bit)
    stress = None
    if a.stress:
        if not shutil.which("stress-ng"):
            sys.exit("peer: --stress needs stress-ng (Debian: apt-get install stress-ng)")
        stress = subprocess.Popen(["stress-ng", "--cpu", str(a.threads), "--quiet"])
        log(f"stress-ng --cpu {a.threads} running beside both sides")
    rows = {}  # metric -> {"ours": [], "llama.cpp": []}

    def add(metric, side, v):
        rows.setdefault(metric, {"ours": [], "llama.cpp": []})[side].append(v)

    try:
        kinds = [("fp16", f16, False)] + ([] if a.skip_8bit else [("8-bit", q8, True)])
        for r in range(a.rounds):
            order = ["ours", "llama.cpp"] if r % 2 == 0 else ["llama.cpp", "ours"]
            for side in order:
                for kind, gguf, int8 in kinds:
                    if side == "llama.cpp":
                        pre = llama_bench(gguf, a.threads, a.prompt, 0)
                        dec = llama_bench(gguf, a.threads, 0, a.gen)
                    else:
                        pre, _ = ours_latency(a.model, a.threads, a.prompt, 2, int8)  # latency needs >= 2
                        _, dec = ours_latency(a.model, a.threads, 9, a.gen, int8)
                    add(f"prefill {a.prompt} tokens, {kind} (tok/s)", side, pre)
                    add(f"decode {a.gen} tokens, {kind} (tok/s)", side, dec)
                    log(f"round {r + 1}/{a.rounds} {side} {kind}: prefill {pre:.1f}, decode {dec:.1f} tok/s")
                if side == "ours" and a.bf16:  # llama.cpp's side: its F16 rows
                    pre, _ = ours_latency(a.model, a.threads, a.prompt, 2, False, BF16_FLAGS)
                    _, dec = ours_latency(a.model, a.threads, 9, a.gen, False, BF16_FLAGS)
                    add(f"prefill {a.prompt} tokens, fp16; ours bf16 products (tok/s)", side, pre)
                    add(f"decode {a.gen} tokens, fp16; ours bf16 products (tok/s)", side, dec)
                    log(f"round {r + 1}/{a.rounds} ours bf16 products: prefill {pre:.1f}, decode {dec:.1f} tok/s")
            if a.serve:
                concs = [int(c) for c in a.concurrency.split(",")]
                for side in order:
                    res = serve_round(side, a.model, f16, a.threads, concs, 8470 + r, 64, 32)
                    for c, (otp, ttp, ttft, ttft99, itl) in res.items():
                        add(f"serving {c} streams, total tok/s", side, ttp)
                        add(f"serving {c} streams, median TTFT ms", side, ttft)
                        add(f"serving {c} streams, median ITL ms", side, itl)
                    if side == "ours" and a.bf16:
                        res = serve_round(side, a.model, f16, a.threads, concs, 8480 + r, 64, 32, BF16_FLAGS)
                        for c, (otp, ttp, ttft, ttft99, itl) in res.items():
                            add(f"serving {c} streams, total tok/s; ours bf16 products", side, ttp)
    finally:
        if stress:
            stress.terminate()
            stress.wait()
    cpu = ""
    try:
        cpu = re.search(r"model name\s*:\s*(.*)", open("/proc/cpuinfo").read()).group(1)
    except Exception:
        pass
    print(f"\n{a.threads} threads each on {cpu or 'this CPU'}; {a.rounds} alternating rounds"
          f"{'; stress-ng --cpu ' + str(a.threads) + ' beside both' if a.stress else ''};"
          f" median (min-max)\n")
    print(f"| what | llama.cpp ({LLAMA_CPP_PYTHON} sdist) | ours | ours / llama.cpp |")
    print("|---|---|---|---|")
    for m, v in rows.items():
        if "ours bf16 products" in m:  # against llama.cpp's F16 row of the same measure
            base = m.replace("; ours bf16 products", "")
            v["llama.cpp"] = rows.get(base, {}).get("llama.cpp", [])
        lower_better = m.endswith(" ms")
        r = ratio(v["llama.cpp"], v["ours"]) if lower_better else ratio(v["ours"], v["llama.cpp"])
        print(f"| {m} | {fmt(v['llama.cpp'])} | {fmt(v['ours'])} | {r}{' (inverse: lower is better)' if lower_better else ''} |")


if __name__ == "__main__":
    main()
