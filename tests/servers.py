"""Local HTTP servers that stand in for remote model endpoints (the edge of the machine).

`FaultyEndpoint` answers from a script of faults, then passes the request to a real handler (for
example `ChatServer.complete` serving a tiny model) or to a fixed JSON reply.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from agents.backends.scripted_server import send_json


class FaultyEndpoint:
    """Faults, in order: ("status", 500), ("status", 429, retry_after), ("sleep", seconds); then `answer`."""

    def __init__(self, answer, faults=(), latency: float = 0.0):
        self.answer = answer
        self.faults = list(faults)
        self.latency = latency
        self.requests = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        handler = type("H", (_Handler,), {"endpoint": self})
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def __enter__(self):
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()

    def next_fault(self):
        with self._lock:
            self.requests += 1
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            return self.faults.pop(0) if self.faults else None

    def done(self):
        with self._lock:
            self.in_flight -= 1


class _Handler(BaseHTTPRequestHandler):
    endpoint: FaultyEndpoint
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        fault = self.endpoint.next_fault()
        try:
            if self.endpoint.latency:
                time.sleep(self.endpoint.latency)
            if fault and fault[0] == "status":
                headers = {"Retry-After": str(fault[2])} if len(fault) > 2 else {}
                return self._send(fault[1], {"error": {"message": "injected"}}, headers)
            if fault and fault[0] == "sleep":
                time.sleep(fault[1])
                return self._send(503, {"error": {"message": "late"}})
            reply = self.endpoint.answer(body) if callable(self.endpoint.answer) else self.endpoint.answer
            self._send(200, reply)
        finally:
            self.endpoint.done()

    def _send(self, status, payload, headers=None):
        send_json(self, status, payload, headers)


def completion(text: str) -> dict:
    """A minimal chat.completion body with `text` as the reply."""
    return {"choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 2}}
