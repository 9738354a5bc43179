"""make test-deploy: three llm_server replicas (CPU, the default model) on
loopback behind nginx running deploy/nginx/llm-fleet.conf, Prometheus with
deploy/prometheus's rules scraping them, 64 concurrent streams through nginx;
one replica killed (SIGKILL) and one drained (SIGTERM) mid-run.

Checks: no request nginx could retry is lost (every request either completes
or, if it was streaming from the killed replica, ends with an error the
client sees), the drained replica's streams all finish, the survivor carries
the rest; Prometheus scrapes all three and its fleet rule equals the sum of
the replicas' counters; every expression of the Grafana dashboard resolves.
The figures are printed (docs/deployment.md quotes them)."""

import json
import os
import signal
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fleet_util import DEPLOY, Load, Nginx, Prometheus, require_tools  # noqa: E402
from server_util import MODEL, Server  # noqa: E402

N_REQUESTS = int(os.environ.get("FLEET_REQUESTS", "256"))
CONCURRENCY = 64
MAX_TOKENS = 24
# one OpenMP thread each: three replicas share the machine's cores
REPLICA_ENV = {"OMP_NUM_THREADS": "1"}


def say(msg):
    print(f"[fleet {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def dashboard_exprs():
    """Every PromQL expression of the Grafana dashboard, its variables set."""
    dash = json.loads((DEPLOY / "grafana" / "llm-fleet.json").read_text())
    out = []
    for panel in dash["panels"]:
        for t in panel.get("targets", []):
            e = t["expr"]
            e = e.replace("$__rate_interval", "1m").replace("${cost_per_hour}", "2.5")
            e = e.replace("$cost_per_hour", "2.5").replace('instance=~"$instance"', 'instance=~".+"')
            out.append((panel["title"], e))
    return out


@pytest.fixture
def fleet(tmp_path):
    if not MODEL.exists():
        pytest.skip("no default model: run 'make model'")
    nginx_bin, prom_bin = require_tools(pytest, "nginx", "prometheus")
    procs = []
    try:
        replicas = []
        for k in range(3):
            say(f"starting replica {k}")
            replicas.append(
                Server("--shutdown-grace", "60", log_path=tmp_path / f"replica{k}.log", env=REPLICA_ENV, wait=False)
            )
            procs.append(replicas[-1])
        for r in replicas:
            r.wait_ready()
        ports = [r.port for r in replicas]
        say(f"replicas ready on {ports}")
        nginx = Nginx(nginx_bin, tmp_path, ports)
        procs.append(nginx)
        prom = Prometheus(prom_bin, tmp_path, ports)
        procs.append(prom)
        say(f"nginx on {nginx.port}, prometheus on {prom.port}")
        yield replicas, nginx, prom
    finally:
        for p in reversed(procs):
            try:
                p.stop() if not isinstance(p, Server) else p.stop(signal.SIGKILL)
            except Exception as e:  # stop the others whatever one did
                print(f"stopping {p}: {e}")


def counter(server, name):
    return server.metrics().get(name, 0.0)


def wait_for(fn, what, timeout=30):
    end = time.time() + timeout
    last = None
    while time.time() < end:
        last = fn()
        if last:
            return last
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what} (last: {last})")


def test_fleet_kill_and_drain(fleet):
    replicas, nginx, prom = fleet
    t0 = time.time()

    # --- warm-up: all three up; Prometheus sees them and sums them right ----
    # Prometheus scrapes every replica before the warm-up, so the counters'
    # rise happens inside its rate window (a quick warm-up before the first
    # scrape left every rate at 0)
    wait_for(lambda: len([s for s in prom.query('up{job="llm"} == 1')]) == 3, "3 targets up")
    say("warm-up: 64 requests through nginx")
    warm = Load(nginx.port, 64, CONCURRENCY, 8, prefix="w").start().join(300)
    assert [r["outcome"] for r in warm] == ["ok"] * 64, [r for r in warm if r["outcome"] != "ok"]
    per_replica = [counter(r, "vllm:generation_tokens_total") for r in replicas]
    say(f"warm-up done: tokens per replica {per_replica}")
    assert all(t > 0 for t in per_replica), f"least_conn left a replica idle: {per_replica}"
    assert sum(per_replica) == 64 * 8
    fleet_sum = wait_for(
        lambda: prom.value("llm_fleet:generation_tokens:sum") == sum(per_replica)
        and prom.value("llm_fleet:generation_tokens:sum"),
        "llm_fleet:generation_tokens:sum to equal the replicas' counters",
    )
    say(f"prometheus: llm_fleet:generation_tokens:sum = {fleet_sum:g} = sum of the replicas' counters")
    # the fleet's tokens/s is the sum of the replicas' (one query: the same
    # evaluation of both rules; again if a rule evaluation fell between)
    def rates():
        res = prom.query('llm_fleet:generation_tokens:rate1m or llm:generation_tokens:rate1m')
        fleet = [float(x["value"][1]) for x in res if x["metric"]["__name__"].startswith("llm_fleet")]
        per = [float(x["value"][1]) for x in res if x["metric"]["__name__"].startswith("llm:")]
        ok = len(fleet) == 1 and len(per) == 3 and fleet[0] > 0 and abs(fleet[0] - sum(per)) < 1e-6 * fleet[0]
        return ok and (fleet[0], per)

    rate, per_rate = wait_for(rates, "llm_fleet:generation_tokens:rate1m to equal the sum of the replicas' rates")
    say(f"prometheus: fleet tokens/s {rate:.2f} = sum of per-replica {['%.2f' % x for x in per_rate]}")

    # every dashboard expression parses and returns data on this fleet (but
    # llm_http_errors_total, which has no sample before the first error)
    empty = []
    for title, expr in dashboard_exprs():
        if not prom.query(expr) and "llm_http_errors_total" not in expr:
            empty.append((title, expr))
    assert not empty, f"dashboard expressions with no data on a live fleet: {empty}"

    # --- the run: kill one replica at 25%, drain another at 50% -------------
    killed, drained, survivor = replicas
    say(f"run: {N_REQUESTS} requests, {CONCURRENCY} streams, {MAX_TOKENS} tokens each")
    load = Load(nginx.port, N_REQUESTS, CONCURRENCY, MAX_TOKENS).start()
    wait_for(lambda: load.done() >= N_REQUESTS // 4, "25% of the run", timeout=600)
    in_flight_killed = counter(killed, "vllm:num_requests_running") + counter(killed, "vllm:num_requests_waiting")
    killed.proc.send_signal(signal.SIGKILL)
    killed.proc.wait()
    say(f"SIGKILL replica 0 at {load.done()} done ({in_flight_killed:g} requests on it)")
    wait_for(lambda: load.done() >= N_REQUESTS // 2, "50% of the run", timeout=600)
    survivor_before = counter(survivor, "vllm:request_success_total")
    drained.proc.send_signal(signal.SIGTERM)
    say(f"SIGTERM replica 1 at {load.done()} done")
    rc = drained.proc.wait(timeout=120)
    t_drained = time.time()
    say(f"replica 1 drained, exit {rc}")
    assert rc == 0, drained.log_text()[-2000:]
    while load.done() < N_REQUESTS:
        time.sleep(5)
        say(f"  {load.done()}/{N_REQUESTS} done")
        if load.done() < N_REQUESTS and not any(t.is_alive() for t in load.threads):
            break
    results = load.join(600)
    survivor_after = counter(survivor, "vllm:request_success_total")

    # --- what the clients saw -----------------------------------------------
    by_outcome = {}
    for r in results:
        by_outcome.setdefault(r["outcome"], []).append(r)
    log = {e["client"]: e for e in nginx.access_log(expect=[r["client"] for r in results]) if e["client"]}
    addr = {k: f"127.0.0.1:{r.port}" for k, r in enumerate(replicas)}
    retried = [c for c, e in log.items() if c.startswith("r") and "," in e["upstream"]]
    cut = by_outcome.get("cut", [])
    figures = {
        "sent": len(results),
        "completed": len(by_outcome.get("ok", [])),
        "retried by nginx": len(retried),
        "  after a connection error": sum("502" in log[c]["upstream_status"] for c in retried),
        "  after a 503": sum("503" in log[c]["upstream_status"] for c in retried),
        "cut mid-stream (client saw an error)": len(cut),
        "failed otherwise": len(results) - len(by_outcome.get("ok", [])) - len(cut),
        "survivor's completions after the drain": survivor_after - survivor_before,
        "seconds": round(time.time() - t0, 1),
    }
    say("figures: " + json.dumps(figures))
    assert len(results) == N_REQUESTS
    # nothing lost that nginx could retry: no HTTP error, no connection error
    assert set(by_outcome) <= {"ok", "cut"}, {k: v[:3] for k, v in by_outcome.items() if k not in ("ok", "cut")}
    # every completed stream is whole
    assert all(r["tokens"] == MAX_TOKENS and r["finish_reason"] == "length" for r in by_outcome["ok"])
    # the cut ones were streaming from the killed replica, and the client saw it
    assert len(cut) <= in_flight_killed + CONCURRENCY // 3, (len(cut), in_flight_killed)
    for r in cut:
        last = log[r["client"]]["upstream"].split(", ")[-1]
        assert last == addr[0], (r, log[r["client"]])
        assert "error" in r or r.get("finish_reason") is None, r
    # the kill landed mid-stream, and nginx retried the requests it sent to
    # the dead (or draining) replica elsewhere
    assert cut, "the SIGKILL cut no stream: the test did not test what it says"
    assert retried, "nginx retried nothing"
    # the drained replica finished what it had: none of its streams was cut,
    # and its log says it drained
    assert all(log[r["client"]]["upstream"].split(", ")[-1] != addr[1] for r in cut)
    # the survivor carried the rest
    assert survivor_after - survivor_before > 0
    late = [log[r["client"]] for r in results if r["t_start"] > t_drained]
    assert all(e["upstream"].split(", ")[-1] == addr[2] for e in late), "requests after the drain off the survivor"

    # --- Prometheus sees the two gone ---------------------------------------
    wait_for(
        lambda: {s["metric"]["instance"] for s in prom.query('up{job="llm"} == 0')} == {addr[0], addr[1]},
        "up == 0 for the killed and drained replicas",
    )
    say("prometheus: up == 0 for the killed and the drained replica, 1 for the survivor")
