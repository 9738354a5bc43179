"""A tiny OpenAI-compatible server for llm_client's failure-mode tests.

The first path segment chooses the behaviour, so one server plays many:
`--base-url http://127.0.0.1:PORT/<spec>` where spec is `normal` or a
comma-separated list of:

  delay=S          sleep S seconds before answering
  chunk_delay=S    sleep S seconds between streamed chunks (default 0.005)
  tokens=N         chunks of generated text (default: max_tokens, else 4)
  status=CODE      answer CODE with an OpenAI error body
  retry_after=S    with status: a Retry-After header
  fail=N           with status: only the first N requests of this spec fail
  drop=N           close the connection after N chunks
  stall=N          after N chunks, stop sending (hold the connection)
  hangup           close the connection without answering
  malformed        the second chunk is not JSON
  nosse            answer a streamed request with a plain JSON body
  no_usage         no usage chunk
  noids            answer 400 to a prompt of token ids
  key=K            answer 401 unless the request has "Authorization: Bearer K"
  badjson          a non-streamed body that is not JSON
  streamerr        the second chunk is an {"error": ...} event
  split            write every event in three pieces, a few ms apart
  id=X             (ignored: makes a spec unique for counting)

GET /stats returns {"requests": {spec: count}, "last": {spec: last request body}};
GET /v1/models lists one model.
Run alone: python fake_openai_server.py [--port N]; it prints the port.
"""

import json
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

MODEL = "fake-model"


def parse_spec(spec):
    opts = {}
    for part in spec.split(","):
        if not part or part == "normal":
            continue
        k, _, v = part.partition("=")
        opts[k] = v if v else True
    return opts


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def setup(self):
        super().setup()
        # no Nagle: small SSE writes would otherwise wait for the client's delayed ACK (40 ms)
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    # --- plumbing ---
    def send_json(self, code, obj, headers=()):
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def chunk(self, data):
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def hard_close(self):
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.close_connection = True

    def do_GET(self):
        if self.path == "/stats":
            with self.server.lock:
                self.send_json(200, {"requests": dict(self.server.counts),
                                     "last": dict(self.server.last)})
        elif self.path.endswith("/v1/models"):
            self.send_json(200, {"object": "list", "data": [{"id": MODEL, "object": "model"}]})
        elif self.path.endswith("/health"):
            self.send_json(200, {})
        else:
            self.send_json(404, {"error": {"message": "not found"}})

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        parts = self.path.strip("/").split("/")
        spec = parts[0] if parts[0] not in ("v1", "generate") else "normal"
        endpoint = "/" + "/".join(parts[1:] if spec != "normal" or parts[0] == "normal" else parts)
        o = parse_spec(spec)
        with self.server.lock:
            self.server.counts[spec] = n = self.server.counts.get(spec, 0) + 1
            self.server.last[spec] = body
        if "delay" in o:
            time.sleep(float(o["delay"]))
        if "key" in o and self.headers.get("Authorization") != f"Bearer {o['key']}":
            return self.send_json(401, {"error": {"message": "bad api key"}})
        if "hangup" in o:
            return self.hard_close()
        if "status" in o and ("fail" not in o or n <= int(o["fail"])):
            code = int(o["status"])
            hdrs = [("Retry-After", o["retry_after"])] if "retry_after" in o else []
            return self.send_json(code, {"error": {"message": f"fake {code}", "type": "fake",
                                                   "code": code}}, hdrs)
        prompt = body.get("prompt", "")
        if "noids" in o and isinstance(prompt, list):
            return self.send_json(400, {"error": {"message": "prompt must be a string"}})
        if endpoint.endswith("chat/completions"):
            prompt = " ".join(m.get("content", "") for m in body.get("messages", []))
        n_prompt = len(prompt) if isinstance(prompt, list) else len(prompt.split())
        n_tok = int(o.get("tokens", body.get("max_tokens") or 4))
        words = [f"tok{i} " for i in range(n_tok)]
        usage = {"prompt_tokens": n_prompt, "completion_tokens": n_tok,
                 "total_tokens": n_prompt + n_tok}
        chat = endpoint.endswith("chat/completions")
        if "badjson" in o and (not body.get("stream") or endpoint.endswith("/generate")):
            junk = b"<html>oops</html>"
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(junk)))
            self.end_headers()
            return self.wfile.write(junk)
        if endpoint.endswith("/generate"):
            return self.send_json(200, {"text": "".join(words), "prompt": prompt, "model": MODEL,
                                        "usage": usage})
        if not body.get("stream") or "nosse" in o:
            msg = ({"message": {"role": "assistant", "content": "".join(words)}} if chat
                   else {"text": "".join(words)})
            return self.send_json(200, {"id": "x", "model": MODEL, "usage": usage,
                                        "choices": [dict(index=0, finish_reason="length", **msg)]})
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        events = []
        if chat:
            events.append({"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]})
        for w in words:
            c = {"index": 0, "delta": {"content": w}} if chat else {"index": 0, "text": w}
            events.append({"id": "x", "model": MODEL, "choices": [c]})
        if body.get("stream_options", {}).get("include_usage") and "no_usage" not in o:
            events.append({"id": "x", "model": MODEL, "choices": [], "usage": usage})
        lines = [b"data: " + json.dumps(e).encode() + b"\n\n" for e in events] + [b"data: [DONE]\n\n"]
        if "malformed" in o:
            lines[2 if chat else 1] = b"data: {\"choices\": [{\"text\": oops\n\n"
        if "streamerr" in o:
            lines[2 if chat else 1] = b'data: {"error": {"message": "engine died", "code": 500}}\n\n'
        delay = float(o.get("chunk_delay", 0.005))
        sent = 0
        for i, line in enumerate(lines):
            is_text = i >= (1 if chat else 0) and i < (1 if chat else 0) + n_tok
            if "drop" in o and sent >= int(o["drop"]):
                return self.hard_close()
            if "stall" in o and sent >= int(o["stall"]):
                time.sleep(3600)
            try:
                if "split" in o:
                    a, b = len(line) // 3, 2 * len(line) // 3
                    for piece in (line[:a], line[a:b], line[b:]):
                        self.chunk(piece)
                        time.sleep(0.002)
                else:
                    self.chunk(line)
            except OSError:
                return
            sent += is_text
            if is_text:
                time.sleep(delay)
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


def start(port=0):
    """Starts the server on a thread; returns (server, port)."""
    ThreadingHTTPServer.request_queue_size = 256  # the default backlog of 5 drops SYNs under load
    srv = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    srv.daemon_threads = True
    srv.lock = threading.Lock()
    srv.counts = {}
    srv.last = {}
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv, srv.server_address[1]


if __name__ == "__main__":
    port = int(sys.argv[sys.argv.index("--port") + 1]) if "--port" in sys.argv else 0
    srv, port = start(port)
    print(f"listening on {port}", flush=True)
    threading.Event().wait()
