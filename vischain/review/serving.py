"""Serving the review app with uvicorn: on a socket bound first (so a taken port is a one-line error, not a
log line after start-up), in the foreground for `vischain review serve`, or in a thread for the bench
and the browser tests.

    sock = bind("127.0.0.1", 8765)                       # UsageError naming --host / --port
    serve(app, sock)                                     # blocks until Ctrl-C
    with ThreadedServer(app) as server:                  # a free port on 127.0.0.1
        httpx.get(server.url + "/queue")
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time

import uvicorn
from starlette.types import ASGIApp

from schemas.errors import UsageError

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def is_loopback(host: str) -> bool:
    if host in LOOPBACK:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on host:port; UsageError when the address cannot be used."""
    if not 0 <= port <= 65535:
        raise UsageError(f"--port: {port} is not a port (0-65535)")
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as err:
        raise UsageError(f"--host: {host!r} is not an address this machine can listen on: {err.strerror}") from None
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as err:
        sock.close()
        raise UsageError(f"--port: cannot listen on {host}:{port}: {err.strerror}") from None
    sock.listen(128)
    return sock


def _config(app: ASGIApp) -> uvicorn.Config:
    # No access log: the sign-in URL carries a token, and the event log records what people did.
    return uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")


def serve(app: ASGIApp, sock: socket.socket) -> None:
    """Serve until interrupted."""
    uvicorn.Server(_config(app)).run(sockets=[sock])


class ThreadedServer:
    """The app under uvicorn in a background thread of this process, on a free 127.0.0.1 port."""

    def __init__(self, app: ASGIApp):
        self.sock = bind("127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.server = uvicorn.Server(_config(app))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self) -> ThreadedServer:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the review server did not start within 10 s")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()
