"""make test-deploy: deploy/nginx/llm-fleet-affinity.conf in front of three
replicas. Every request of a session (X-Session-Id) reaches the same
replica, whose prefix cache then serves the conversation's earlier turns;
sessions spread over the replicas, and so do requests without the header."""

import signal
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fleet_util import Nginx, require_tools, stream_request  # noqa: E402
from server_util import MODEL, Server  # noqa: E402

SESSIONS = 9
TURNS = 2


def test_affinity_keeps_a_session_on_its_replica(tmp_path):
    if not MODEL.exists():
        pytest.skip("no default model: run 'make model'")
    (nginx_bin,) = require_tools(pytest, "nginx")
    replicas, nginx = [], None
    try:
        for k in range(3):
            replicas.append(Server(log_path=tmp_path / f"replica{k}.log", env={"OMP_NUM_THREADS": "1"}, wait=False))
        for r in replicas:
            r.wait_ready()
        nginx = Nginx(nginx_bin, tmp_path, [r.port for r in replicas], affinity=True)
        t0 = time.time()
        # each session: a conversation whose prompt grows turn by turn (the
        # earlier turns are its prefix)
        for turn in range(TURNS):
            for s in range(SESSIONS):
                history = " ".join(f"Turn {t} of conversation {s}: tell me more about topic {s}." for t in range(turn + 1))
                res = stream_request(nginx.port, f"s{s}t{turn}", history * 3, 1, session=f"session-{s}")
                assert res["outcome"] == "ok", res
        for i in range(12):
            res = stream_request(nginx.port, f"n{i}", f"Hello number {i}", 1)
            assert res["outcome"] == "ok", res
        clients = [f"s{s}t{t}" for s in range(SESSIONS) for t in range(TURNS)] + [f"n{i}" for i in range(12)]
        log = {e["client"]: e["upstream"] for e in nginx.access_log(expect=clients) if e["client"]}
        placement = {s: {log[f"s{s}t{t}"] for t in range(TURNS)} for s in range(SESSIONS)}
        print(f"affinity: sessions -> replica {placement}; {time.time() - t0:.1f} s")
        assert all(len(v) == 1 for v in placement.values()), placement
        assert len(set.union(*placement.values())) > 1, "every session hashed to one replica"
        assert len({log[f"n{i}"] for i in range(12)}) > 1, "requests without a session all on one replica"
        hits = sum(r.metrics().get("vllm:prefix_cache_hits_total", 0) for r in replicas)
        queries = sum(r.metrics().get("vllm:prefix_cache_queries_total", 0) for r in replicas)
        print(f"affinity: prefix cache hits {hits:g} of {queries:g} tokens queried")
        assert hits > 0
    finally:
        if nginx:
            nginx.stop()
        for r in replicas:
            r.stop(signal.SIGKILL)
