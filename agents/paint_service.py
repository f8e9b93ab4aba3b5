"""One painter for all the worker processes of a machine: the diffusion model is loaded once (one
copy in GPU memory), and the workers send it what to paint.

    with PaintServer(Painter("tiny:sd")) as server:          # in the parent process
        ...start workers with server.address and server.authkey...
    painter = RemotePainter(address, authkey)                 # in a worker: the same `paint` as Painter
    painted = await painter.paint(...)                        # the image is written into the run folder

Requests travel over a local socket (multiprocessing.connection, with an authentication key, bound
to 127.0.0.1); images never do: the painter writes them into the run folder, which every worker
shares, and answers with the `Painted` record.
"""

from __future__ import annotations

import asyncio
import os
import threading
from multiprocessing.connection import Client, Listener

from agents.painter import Painter


class PaintServer:
    """Serves `painter.paint(...)` to other processes until closed; paints one image at a time."""

    def __init__(self, painter: Painter):
        self.painter = painter
        self.authkey = os.urandom(32)
        self._listener = Listener(("127.0.0.1", 0), authkey=self.authkey)
        self.address = self._listener.address
        self._closed = threading.Event()

    def __enter__(self) -> PaintServer:
        threading.Thread(target=self._accept, daemon=True, name="paint-server").start()
        return self

    def __exit__(self, *exc) -> None:
        self._closed.set()
        self._listener.close()

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                connection = self._listener.accept()
            except (OSError, EOFError):  # closed, or a client that failed the authentication
                if self._closed.is_set():
                    return
                continue
            threading.Thread(target=self._serve, args=(connection,), daemon=True).start()

    def _serve(self, connection) -> None:
        with connection:
            while True:
                try:
                    args, kwargs = connection.recv()
                except (EOFError, OSError):
                    return
                try:
                    reply = ("ok", asyncio.run(self.painter.paint(*args, **kwargs)))
                except Exception as err:  # the worker's task fails with the painter's reason
                    reply = ("error", f"{type(err).__name__}: {err}")
                connection.send(reply)


class RemotePainter:
    """A worker's painter: the same `paint` call as Painter, answered by a PaintServer."""

    def __init__(self, address: tuple[str, int], authkey: bytes):
        self.address, self.authkey = tuple(address), authkey
        self._connection = None
        self._lock = threading.Lock()

    async def paint(self, *args, **kwargs):
        return await asyncio.to_thread(self._paint, args, kwargs)

    def _paint(self, args, kwargs):
        with self._lock:  # one request in flight per connection
            if self._connection is None:
                self._connection = Client(self.address, authkey=self.authkey)
            self._connection.send((args, kwargs))
            status, value = self._connection.recv()
        if status == "error":
            raise RuntimeError(f"painter: {value}")
        return value
