"""The first hour of a new user (issue 15), llm_client side, against
fake_openai_server.py: CSV prompts in and out (header, quotes, commas,
newlines), exit statuses that show failures, P95 in every summary, the
report's axes, legends and cost per 1M tokens, the interactive commands, the
closest flag named."""

import csv
import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from test_llm_client import CLIENT, client, fake, stats  # noqa: F401 (fixtures)


PROMPTS = [
    'Translate "good morning" into Spanish.',
    "a, b, and c",
    "line one\nline two",
    "plain",
    "",  # an empty prompt is still a row
    "ends with a quote\"",
]


def write_csv(path, rows, header=("prompt", "max_tokens")):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)


def test_batch_csv_round_trip(fake, tmp_path):
    src = tmp_path / "prompts.csv"
    write_csv(src, [(p, 2 if i == 1 else "") for i, p in enumerate(PROMPTS)])
    out = tmp_path / "out.csv"
    p = client("--batch", "--input", src, "--output", out, "--concurrent", 2,
               "--base-url", fake + "/id=csv", "--max-tokens", 3)
    assert f"{len(PROMPTS)} prompts, {len(PROMPTS)} ok, 0 failed" in p.stderr
    rows = list(csv.DictReader(out.open(newline="")))
    assert [r["prompt"] for r in rows] == PROMPTS  # the header is no prompt; quotes and newlines kept
    assert [r["tokens_generated"] for r in rows] == ["3", "2", "3", "3", "3", "3"]  # max_tokens column
    assert stats(fake)["requests"]["id=csv"] == len(PROMPTS)
    # the output reads back as input: its prompt column, the other columns ignored
    out2 = tmp_path / "out2.csv"
    client("--batch", "--input", out, "--output", out2, "--base-url", fake + "/id=csv2", "--max-tokens", 1)
    assert [r["prompt"] for r in csv.DictReader(out2.open(newline=""))] == PROMPTS
    # one prompt of the file, as sent
    client("--single", "--input", src, "--line", 1, "--base-url", fake + "/id=csv1",
           "--api", "openai-completions")
    assert stats(fake)["last"]["id=csv1"]["prompt"] == PROMPTS[0]


@pytest.mark.parametrize("text,message", [
    ("question\nhello\n", 'first row must be a header with a "prompt" column (got: question)'),
    ('prompt\n"never closed\n', "a quoted field is not closed"),
    ("prompt,max_tokens\nhi,1,extra\n", ":2: 3 fields, the header has 2"),
    ("prompt,max_tokens\nhi,lots\n", ":2: max_tokens 'lots' is not a positive integer"),
    ("prompt\n", "no prompts under the header"),
])
def test_bad_csv_is_named_and_nothing_is_sent(fake, tmp_path, text, message):
    src = tmp_path / "bad.csv"
    src.write_text(text)
    p = client("--batch", "--input", src, "--output", tmp_path / "o.csv", "--base-url",
               fake + "/id=badcsv", check=False)
    assert p.returncode == 1 and message in p.stderr and str(src) in p.stderr, p.stderr
    assert "id=badcsv" not in stats(fake)["requests"] and not (tmp_path / "o.csv").exists()


def test_exit_status_shows_failures(fake, tmp_path):
    f = tmp_path / "p.txt"
    f.write_text("a\nb\nc\n")
    # all fail: 1
    p = client("--batch", "--input", f, "--output", tmp_path / "o.csv", "--retries", 0,
               "--base-url", fake + "/status=500,id=allfail", check=False)
    assert p.returncode == 1 and "all 3 requests failed" in p.stderr
    assert len(list(csv.DictReader((tmp_path / "o.csv").open()))) == 3  # results still written
    # some fail: 3
    p = client("--batch", "--input", f, "--output", tmp_path / "o.csv", "--concurrent", 1,
               "--base-url", fake + "/fail=1,status=400,id=somefail", check=False)
    assert p.returncode == 3 and "1 of 3 requests failed" in p.stderr
    # none fail: 0
    client("--batch", "--input", f, "--output", tmp_path / "o.csv", "--base-url", fake + "/normal")
    p = client("--benchmark", "--requests", 4, "--retries", 0, "--base-url",
               fake + "/status=503,id=benchfail", check=False)
    assert p.returncode == 1 and "requests: 4 (0 ok, 4 failed)" in p.stdout
    p = client("bench", "--requests", 4, "--base-url", fake + "/status=500,id=bf", "--out",
               tmp_path / "b", "--quiet", "--input-len", 4, "--output-len", 2, check=False)
    assert p.returncode == 1 and "all 4 requests failed" in p.stderr
    assert json.loads((tmp_path / "b" / "result.json").read_text())["failed"] == 4


def test_p95_in_every_summary(fake, tmp_path):
    p = client("--benchmark", "--requests", 6, "--concurrent", 3, "--base-url", fake + "/normal",
               "--max-tokens", 4)
    assert re.search(r"mean latency: [\d.]+ s \(p50 [\d.]+, p95 [\d.]+, p99 [\d.]+\)", p.stdout)
    assert re.search(r"mean ttft: [\d.]+ ms \(p50 [\d.]+, p95 [\d.]+, p99 [\d.]+\)", p.stdout)
    p = client("bench", "--requests", 6, "--concurrent", 2, "--base-url", fake + "/normal",
               "--out", tmp_path, "--input-len", 4, "--output-len", 3)
    for m in ["TTFT", "TPOT", "ITL", "E2EL"]:
        assert re.search(rf"P95 {m} \(ms\):\s+[\d.]+", p.stdout), p.stdout
    md = (tmp_path / "report.md").read_text()
    assert "| TTFT p50 | TTFT p95 | TTFT p99 |" in md and "| E2EL p95 |" in md
    res = json.loads((tmp_path / "result.json").read_text())
    row = [line for line in md.splitlines() if line.startswith("| c=2 |") and line.count("|") == 18][0]
    assert f"{res['p95_ttft_ms']:.1f}" in row


def test_report_axes_inf_rate_legends_and_cost(fake, tmp_path):
    target = "a-target-with-a-rather-long-name"
    cfg = tmp_path / "w.yaml"
    cfg.write_text(f"""targets:
  - name: {target}
    base_url: {fake}/normal
workloads:
  - name: closed
    requests: 4
    concurrency: [1, 2]
    input_len: 4
    output_len: 2
  - name: poisson
    requests: 4
    rps: [5, inf]
    input_len: 4
    output_len: 2
""")
    p = client("bench", "--config", cfg, "--out", tmp_path / "o", "--hourly-cost", 2.5)
    out = tmp_path / "o"
    assert "Cost per 1M output tokens ($):" in p.stdout
    ns = "{http://www.w3.org/2000/svg}"
    # concurrency and rate on separate axes
    closed = ET.parse(out / "throughput_sweep.svg").getroot()
    texts = [t.text for t in closed.iter(ns + "text")]
    assert "concurrency (requests in flight)" in texts and not any("rate" in (t or "") for t in texts)
    assert len(closed.findall(f".//{ns}polyline")) == 1
    rate = ET.parse(out / "throughput_rate_sweep.svg").getroot()
    texts = [t.text for t in rate.iter(ns + "text")]
    assert "request rate (req/s)" in texts and "inf" in texts and "5" in texts
    assert len(rate.findall(f".//{ns}circle")) == 2  # the inf point is drawn
    # legends whole: the name is there in full and the plot is wide enough for it
    legend = target  # one workload per plot: the target alone
    assert legend in texts and float(rate.get("width")) >= 470 + 46 + 7 * len(legend) - 1
    md = (out / "report.md").read_text()
    assert "| $/1M out tok | $/1M tok |" in md
    rows = list(csv.DictReader((out / "summary.csv").open()))
    tput = float(rows[0]["output_throughput"])  # rounded to 3 decimals there
    head = next(line for line in md.splitlines() if "$/1M out tok" in line).split("|")
    row = next(line for line in md.splitlines() if line.startswith("| " + rows[0]["target"])).split("|")
    cost = float(row[head.index(" $/1M out tok ")])
    assert cost == pytest.approx(2.5 / 3600 / tput * 1e6, rel=1e-3)
    html = (out / "report.html").read_text()
    assert 'class="t"' in html and "overflow-x:auto" in html  # the tables scroll, the page does not
    for s in re.findall(r'<img src="([^"]+\.svg)"', html):
        assert (out / s).exists()


def test_interactive_help_reset_and_banner(fake):
    before = stats(fake)["requests"].get("id=inter", 0)
    p = client("--interactive", "--base-url", fake + "/id=inter", "--max-tokens", 2,
               stdin="/help\nhello\n/reset\n/bogus\nagain\n/exit\n")
    assert "commands: /reset forgets the conversation" in p.stdout
    assert "(conversation forgotten)" in p.stdout and "unknown command /bogus" in p.stdout
    assert stats(fake)["requests"]["id=inter"] - before == 2  # only the two prompts were sent
    assert len(stats(fake)["last"]["id=inter"]["messages"]) == 1  # after /reset: one turn


def test_unknown_flag_names_the_closest():
    p = client("--batch", "--concurent", 2, check=False)
    assert p.returncode == 2 and "unknown argument '--concurent'; did you mean --concurrent?" in p.stderr
