"""bench_engine sweep --shard K/N and merge: a tiny grid (random weights of
SmolLM2-135M's shape, CPU) run whole and as 3 shards; the merged shards give
the whole grid's points, each with the same deterministic columns (memory,
capacity), the shards' own rows exactly, and the reports of a whole run;
merging one directory reproduces its files byte for byte; a missing or a
doubled shard is refused."""

import csv
import json
import subprocess

import pytest

from server_util import ROOT

BIN = ROOT / "build" / "bin" / "bench_engine"
GRID = ["--synthetic", "smollm2-135m", "--device", "cpu", "--device-memory", "1GiB",
        "--batch-sizes", "1,2", "--input-lens", "8", "--output-lens", "2,3",
        "--gpu-memory-utilization", "0.5,0.9"]
N_POINTS = 8
# columns that do not depend on timing or on what the engine ran before
DETERMINISTIC = ["util", "batch", "input", "output", "weights_bytes", "activations_bytes",
                 "activations_in_use_bytes", "overhead_bytes", "kv_allocated_bytes", "kv_peak_bytes",
                 "predicted_bytes", "kv_pages", "kv_tokens", "max_concurrency", "preemptions"]


def run(*args):
    p = subprocess.run([str(BIN), *map(str, args)], capture_output=True, text=True, timeout=300)
    return p


def rows(d):
    with open(d / "summary.csv") as f:
        return list(csv.DictReader(f))


def key(r):
    return (float(r["util"]), int(r["batch"]), int(r["input"]), int(r["output"]))


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    t = tmp_path_factory.mktemp("shard")
    p = run("sweep", *GRID, "--out", t / "full")
    assert p.returncode == 0, p.stderr
    for k in range(3):
        p = run("sweep", *GRID, "--shard", f"{k}/3", "--out", t / f"s{k}")
        assert p.returncode == 0, p.stderr
    p = run("merge", t / "s0", t / "s1", t / "s2", "--out", t / "merged", "--format", "json")
    assert p.returncode == 0, p.stderr
    return t, json.loads(p.stdout)


def test_shards_are_disjoint_and_cover_the_grid(runs):
    t, _ = runs
    seen = []
    for k in range(3):
        pts = [json.loads(x) for x in (t / f"s{k}" / "points.jsonl").read_text().splitlines()]
        assert pts and all(p["grid_index"] % 3 == k and p["grid_size"] == N_POINTS for p in pts)
        seen += [p["grid_index"] for p in pts]
        raw = [json.loads(x) for x in (t / f"s{k}" / "raw.jsonl").read_text().splitlines()]
        assert sorted(r["grid_index"] for r in raw) == sorted(p["grid_index"] for p in pts)
    assert sorted(seen) == list(range(N_POINTS))


def test_merged_equals_the_whole_run_row_for_row(runs):
    t, printed = runs
    full, merged = rows(t / "full"), rows(t / "merged")
    assert len(full) == len(merged) == len(printed) == N_POINTS
    # the same grid points in the same order, with the same deterministic columns
    assert [key(r) for r in merged] == [key(r) for r in full]
    for a, b in zip(full, merged):
        assert {c: a[c] for c in DETERMINISTIC} == {c: b[c] for c in DETERMINISTIC}
        assert float(b["decode_tok_s"]) > 0
    # and each merged row is exactly its shard's row (timings included)
    shard_rows = sorted((r for k in range(3) for r in rows(t / f"s{k}")), key=key)
    assert sorted(merged, key=key) == shard_rows
    # the reports of the whole grid
    assert (t / "merged" / "report.md").read_text().count("\n|") >= N_POINTS
    for f in ["report.html", "latency_vs_batch.svg", "throughput_vs_latency.svg", "raw.jsonl"]:
        assert (t / "merged" / f).stat().st_size > 0, f
    raw = [json.loads(x) for x in (t / "merged" / "raw.jsonl").read_text().splitlines()]
    assert [r["grid_index"] for r in raw] == list(range(N_POINTS))


def test_merge_of_one_run_is_that_run(runs):
    t, _ = runs
    p = run("merge", t / "full", "--out", t / "again")
    assert p.returncode == 0, p.stderr
    for f in ["summary.csv", "report.md", "report.html", "raw.jsonl", "points.jsonl", "latency_vs_batch.svg"]:
        assert (t / "again" / f).read_bytes() == (t / "full" / f).read_bytes(), f


def test_merge_refuses_missing_and_doubled_shards(runs):
    t, _ = runs
    p = run("merge", t / "s0", t / "s1", "--out", t / "bad1")
    assert p.returncode == 1 and "missing" in p.stderr and "shards: 2 5 (of 8)" in p.stderr, p.stderr
    p = run("merge", t / "s0", t / "s1", t / "s1", t / "s2", "--out", t / "bad2")
    assert p.returncode == 1 and "in two shards" in p.stderr, p.stderr
    p = run("sweep", *GRID, "--shard", "3/3")
    assert p.returncode == 2 and "--shard K/N" in p.stderr
    p = run("sweep", "--synthetic", "smollm2-135m", "--batch-sizes", "1", "--input-lens", "8",
            "--output-lens", "2", "--shard", "1/2")
    assert p.returncode == 2 and "no grid point" in p.stderr
