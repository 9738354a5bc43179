"""deploy/'s configurations, checked offline: promtool on the Prometheus config
and rules (and the rules' unit tests), nginx -t on the nginx configs, every
metric the Grafana dashboard names against a live scrape of llm_server, the
Kubernetes manifests against the Kubernetes schemas (kubernetes-validate,
PyPI, pinned in scripts/requirements-deploy.txt; skipped when absent).
The fleet itself runs in tests/deploy (make test-deploy)."""

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from server_util import ROOT, Server

DEPLOY = ROOT / "deploy"
PROM = DEPLOY / "prometheus"
K8S = DEPLOY / "kubernetes"


def tool(name):
    return shutil.which(name) or next((str(p) for p in (Path("/usr/sbin") / name,) if p.exists()), None)


def run(cmd, **kw):
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    return r.returncode, r.stdout + r.stderr


@pytest.fixture(scope="module")
def promtool():
    p = tool("promtool")
    if not p:
        pytest.skip("promtool not installed (Debian package prometheus: make deps)")
    return p


def test_promtool_check_config_and_rules(promtool):
    rc, out = run([promtool, "check", "config", str(PROM / "prometheus.yml")])
    assert rc == 0 and "SUCCESS: 2 rule files found" in out, out
    rc, out = run([promtool, "check", "rules", *map(str, sorted(PROM.glob("*.rules.yml")))])
    assert rc == 0, out
    assert re.search(r"SUCCESS: \d+ rules found", out), out


def test_promtool_rule_unit_tests(promtool):
    rc, out = run([promtool, "test", "rules", str(PROM / "tests" / "rules_test.yml")])
    assert rc == 0 and "SUCCESS" in out, out


def test_promtool_rule_unit_tests_catch_a_wrong_rule(promtool, tmp_path):
    # the unit tests do test the rules: a fleet sum changed into a max fails them
    (tmp_path / "tests").mkdir()
    for f in PROM.glob("*.rules.yml"):
        text = f.read_text()
        if f.name == "llm-recording.rules.yml":
            text = text.replace(
                'expr: sum(rate(vllm:generation_tokens_total{job="llm"}[1m]))',
                'expr: max(rate(vllm:generation_tokens_total{job="llm"}[1m]))',
            )
        (tmp_path / f.name).write_text(text)
    shutil.copy(PROM / "tests" / "rules_test.yml", tmp_path / "tests")
    rc, out = run([promtool, "test", "rules", str(tmp_path / "tests" / "rules_test.yml")])
    assert rc != 0 and "llm_fleet:generation_tokens:rate1m" in out, out


@pytest.mark.parametrize("conf", ["llm-fleet.conf", "llm-fleet-affinity.conf"])
def test_nginx_config(conf, tmp_path):
    nginx = tool("nginx")
    if not nginx:
        pytest.skip("nginx not installed (Debian package nginx-light: make deps)")
    text = (DEPLOY / "nginx" / conf).read_text()
    for line in ["least_conn;" if "affinity" not in conf else "hash $llm_affinity_key consistent;",
                 "proxy_buffering off;", "proxy_next_upstream error timeout http_503 non_idempotent;",
                 "client_max_body_size 8m;", "max_fails=3 fail_timeout=10s;"]:
        assert line in text, f"{conf}: {line} missing"
    d = tmp_path
    (d / "nginx.conf").write_text(
        f"pid {d}/nginx.pid; error_log {d}/error.log; events {{}}\n"
        f"http {{ access_log off; client_body_temp_path {d}/b; proxy_temp_path {d}/p;"
        f" fastcgi_temp_path {d}/f; uwsgi_temp_path {d}/u; scgi_temp_path {d}/s;"
        f" include {DEPLOY / 'nginx' / conf}; }}\n"
    )
    rc, out = run([nginx, "-t", "-c", str(d / "nginx.conf")])
    assert rc == 0 and "test is successful" in out, out


def dashboard():
    return json.loads((DEPLOY / "grafana" / "llm-fleet.json").read_text())


def recorded_names():
    rules = yaml.safe_load((PROM / "llm-recording.rules.yml").read_text())
    return {r["record"] for g in rules["groups"] for r in g["rules"]}


def test_dashboard_metrics_exist_in_a_live_scrape(tmp_path):
    exprs = [t["expr"] for p in dashboard()["panels"] for t in p.get("targets", [])]
    assert len(exprs) >= 20
    with Server(log_path=tmp_path / "server.log") as s:
        status, _, _ = s.request("POST", "/v1/completions", {"prompt": "Hi", "max_tokens": 2})
        assert status == 200
        status, _, text = s.request("GET", "/metrics")
        assert status == 200
    families = set(re.findall(r"^# TYPE (\S+) ", text, re.M))
    samples = {line.split("{")[0].split(" ")[0] for line in text.splitlines() if line and not line.startswith("#")}
    assert "vllm:generation_tokens_total" in families
    rules = recorded_names()
    named = set()
    for e in exprs:
        for name in re.findall(r"(?<![\w:])((?:vllm:|llm_|llm:|llm_fleet:)[A-Za-z0-9_:]+)", e):
            named.add(name)
            if name.startswith(("llm:", "llm_fleet:")):
                assert name in rules, f"{name}: no such recording rule ({e})"
            else:
                # a histogram's series are NAME_bucket/_sum/_count of the family NAME
                assert name in samples or re.sub(r"_(bucket|sum|count)$", "", name) in families, (
                    f"{name} is not in llm_server's /metrics ({e})"
                )
    # the topics the dashboard must show
    for must in ["vllm:time_to_first_token_seconds_bucket", "vllm:e2e_request_latency_seconds_bucket",
                 "vllm:inter_token_latency_seconds_bucket", "vllm:num_requests_waiting", "vllm:num_requests_running",
                 "vllm:kv_cache_usage_perc", "llm_device_memory_used_bytes", "llm_http_errors_total",
                 "vllm:generation_tokens_total", "llm_engine_steps_total"]:
        assert must in named, must
    assert any("$cost_per_hour" in e for e in exprs)
    assert {v["name"] for v in dashboard()["templating"]["list"]} >= {"datasource", "instance", "cost_per_hour"}


def kubernetes_validate():
    for p in [ROOT / ".venv" / "bin" / "kubernetes-validate", shutil.which("kubernetes-validate")]:
        if p and Path(p).exists():
            return str(p)
    return None


CORE_MANIFESTS = ["deployment.yaml", "service.yaml", "pvc.yaml", "hpa.yaml", "sweep-indexed-job.yaml"]


def test_kubernetes_manifests_validate(tmp_path):
    kv = kubernetes_validate()
    if not kv:
        pytest.skip("kubernetes-validate not installed: make venv-deploy (PyPI kubernetes-validate==1.37.0)")
    files = [str(K8S / f) for f in CORE_MANIFESTS if (K8S / f).exists()]
    assert len(files) >= 4
    rc, out = run([kv, "--strict", *files])
    assert rc == 0, out
    assert out.count("passed") == len(files), out
    # and the validator does reject a wrong manifest
    bad = tmp_path / "bad.yaml"
    bad.write_text((K8S / "deployment.yaml").read_text().replace("terminationGracePeriodSeconds", "terminationGrace"))
    rc, out = run([kv, "--strict", str(bad)])
    assert rc != 0 and "terminationGrace" in out, out


def test_kubernetes_manifests_agree():
    dep = yaml.safe_load((K8S / "deployment.yaml").read_text())
    pod = dep["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    grace = next(int(a.split("=")[1]) for a in c["args"] if a.startswith("--shutdown-grace="))
    assert pod["terminationGracePeriodSeconds"] > grace
    assert c["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert c["readinessProbe"]["httpGet"]["path"] == "/health"
    assert c["startupProbe"]["periodSeconds"] * c["startupProbe"]["failureThreshold"] >= 600
    port = c["ports"][0]["containerPort"]
    assert any(a == f"--port={port}" for a in c["args"])
    ann = dep["spec"]["template"]["metadata"]["annotations"]
    assert ann["prometheus.io/port"] == str(port) and ann["prometheus.io/path"] == "/metrics"
    labels = dep["spec"]["template"]["metadata"]["labels"]
    svc = yaml.safe_load((K8S / "service.yaml").read_text())
    assert svc["spec"]["selector"].items() <= labels.items()
    pm = yaml.safe_load((K8S / "podmonitor.yaml").read_text())
    assert pm["spec"]["selector"]["matchLabels"].items() <= labels.items()
    hpa = yaml.safe_load((K8S / "hpa.yaml").read_text())
    adapter = yaml.safe_load((K8S / "prometheus-adapter.yaml").read_text())
    assert hpa["spec"]["metrics"][0]["pods"]["metric"]["name"] == adapter["rules"][0]["name"]["as"]
    assert hpa["spec"]["scaleTargetRef"]["name"] == dep["metadata"]["name"]


def test_sweep_cluster_jobs_cover_every_shard():
    job = yaml.safe_load((K8S / "sweep-indexed-job.yaml").read_text())
    assert job["spec"]["completionMode"] == "Indexed"
    (c,) = job["spec"]["template"]["spec"]["containers"]
    shards = int(next(e["value"] for e in c["env"] if e["name"] == "SHARDS"))
    assert job["spec"]["completions"] == shards
    assert '--shard "${JOB_COMPLETION_INDEX}/${SHARDS}"' in c["args"][0]
    assert '--out "/results/shard-${JOB_COMPLETION_INDEX}"' in c["args"][0]
    sb = (DEPLOY / "slurm" / "sweep-array.sbatch").read_text()
    first, last = map(int, re.search(r"^#SBATCH --array=(\d+)-(\d+)$", sb, re.M).groups())
    n = int(re.search(r"^SHARDS=\$\{SHARDS:-(\d+)\}$", sb, re.M).group(1))
    assert (first, last) == (0, n - 1)
    assert '--shard "${SLURM_ARRAY_TASK_ID}/${SHARDS}"' in sb
    rc, out = run(["bash", "-n", str(DEPLOY / "slurm" / "sweep-array.sbatch")])
    assert rc == 0, out
