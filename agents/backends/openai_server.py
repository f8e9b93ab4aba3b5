"""A small OpenAI-compatible server in front of the in-process `transformers` backend.

For machines where vLLM cannot run (CPU boxes, CI): it speaks the same `/v1/chat/completions`,
`/v1/models` and `/health` protocol, so the `openai` backend and the `vllm` launcher are tested
against real HTTP. One request is generated at a time; it is not a production server.

    python -m agents.backends.openai_server --model tiny:qwen2-vl --port 8000
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import tempfile
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from agents.backends.chat import BackendError, SamplingParams


class ChatServer:
    """Serves `backend.generate(messages, schema, params)` over HTTP on 127.0.0.1 in a thread."""

    def __init__(self, backend, host: str = "127.0.0.1", port: int = 0):
        self.backend = backend
        self.image_dir = Path(tempfile.mkdtemp(prefix="vischain-serve-"))
        handler = type("Handler", (_Handler,), {"server_app": self})
        self.httpd = ThreadingHTTPServer((host, port), handler)
        self.httpd.daemon_threads = True
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}/v1"

    def __enter__(self) -> "ChatServer":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def wait(self) -> None:
        """Block until the server is shut down (Ctrl-C in the CLI)."""
        self._thread.join()

    def complete(self, body: dict) -> dict:
        messages = [_from_wire(m, self.image_dir) for m in body["messages"]]
        fmt = body.get("response_format") or {}
        schema = fmt.get("json_schema", {}).get("schema") if fmt.get("type") == "json_schema" else None
        stop = body.get("stop") or ()
        params = SamplingParams(
            max_tokens=int(body.get("max_tokens") or 256), temperature=float(body.get("temperature") or 0.0),
            top_p=float(body.get("top_p") or 1.0), seed=body.get("seed"),
            stop=tuple([stop] if isinstance(stop, str) else stop))
        result = self.backend.generate(messages, schema, params)
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex[:12]}", "object": "chat.completion", "created": int(time.time()),
            "model": body.get("model", self.backend.model_id),
            "choices": [{"index": 0, "message": {"role": "assistant", "content": result.text},
                         "finish_reason": "stop"}],
            "usage": {"prompt_tokens": result.usage.prompt_tokens, "completion_tokens": result.usage.completion_tokens,
                      "total_tokens": result.usage.prompt_tokens + result.usage.completion_tokens},
        }


class _Handler(BaseHTTPRequestHandler):
    server_app: ChatServer
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:  # keep test and CLI output quiet
        pass

    def do_GET(self) -> None:
        if self.path == "/health":
            self._send(200, {})
        elif self.path == "/v1/models":
            self._send(200, {"object": "list", "data": [{"id": self.server_app.backend.model_id, "object": "model"}]})
        else:
            self._send(404, {"error": {"message": f"no route {self.path}"}})

    def do_POST(self) -> None:
        if self.path != "/v1/chat/completions":
            self._send(404, {"error": {"message": f"no route {self.path}"}})
            return
        try:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
            self._send(200, self.server_app.complete(body))
        except (KeyError, TypeError, ValueError, BackendError) as err:
            self._send(400, {"error": {"message": f"{type(err).__name__}: {err}"}})

    def _send(self, status: int, payload: dict) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def _from_wire(message: dict, image_dir: Path) -> dict:
    content = message.get("content")
    if isinstance(content, str):
        return {"role": message["role"], "content": [{"type": "text", "text": content}]}
    parts = []
    for part in content:
        if part["type"] == "text":
            parts.append({"type": "text", "text": part["text"]})
        elif part["type"] == "image_url":
            parts.append({"type": "image", "path": str(_save_data_url(part["image_url"]["url"], image_dir))})
        else:
            raise ValueError(f"unsupported content part type {part['type']!r}")
    return {"role": message["role"], "content": parts}


def _save_data_url(url: str, image_dir: Path) -> Path:
    if not url.startswith("data:") or ";base64," not in url:
        raise ValueError("only base64 data URLs are accepted for images")
    data = base64.b64decode(url.split(";base64,", 1)[1])
    path = image_dir / hashlib.sha256(data).hexdigest()  # content-addressed: repeats cost nothing
    if not path.exists():
        path.write_bytes(data)
    return path


def main(argv: list[str] | None = None) -> None:
    from agents.backends.transformers_local import TransformersBackend  # here: torch loads only to serve

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="hub id, local folder, or tiny:NAME")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    with ChatServer(TransformersBackend(args.model, device=args.device), args.host, args.port) as server:
        print(f"serving {args.model} at {server.base_url}", flush=True)
        server.wait()


if __name__ == "__main__":
    main()
