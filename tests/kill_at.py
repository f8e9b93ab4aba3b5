"""Run a vischain command that kills itself (SIGKILL) at an exact moment, for the resume tests.

    python -m tests.kill_at claim 3 generate --domain ...     # after the 3rd image claim is committed
    python -m tests.kill_at paint 1 generate ...              # after the 1st painted image is on disk
    python -m tests.kill_at writes 7 generate ...             # after the 7th checkpoint writes, before the checkpoint

Only this launcher is patched; the command itself runs unchanged. A SIGKILL gives no process any
chance to clean up, which is the point.
"""

from __future__ import annotations

import os
import signal
import sys
import threading

from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

from agents.painter import Painter
from schemas.run_claims import RunClaims
from vischain.cli import app

MOMENTS = {
    # during fetch: an image is claimed for its slot, its file not yet written, the step not checkpointed
    "claim": (RunClaims, "claim_image_batch"),
    # during paint: the painted file is on disk, the slot not yet checkpointed
    "paint": (Painter, "_paint"),
    # between checkpoint writes: a node's writes are saved, the checkpoint that applies them is not
    "writes": (AsyncSqliteSaver, "aput_writes"),
}


def kill_after(moment: str, count: int) -> None:
    owner, name = MOMENTS[moment]
    original = getattr(owner, name)
    calls, lock = [0], threading.Lock()

    def last_call() -> bool:
        with lock:
            calls[0] += 1
            return calls[0] >= count

    if moment == "writes":
        async def patched(self, *args, **kwargs):
            result = await original(self, *args, **kwargs)
            if last_call():
                os.kill(os.getpid(), signal.SIGKILL)
            return result
    else:
        def patched(self, *args, **kwargs):
            result = original(self, *args, **kwargs)
            if last_call():
                os.kill(os.getpid(), signal.SIGKILL)
            return result
    setattr(owner, name, patched)


if __name__ == "__main__":
    kill_after(sys.argv[1], int(sys.argv[2]))
    app(sys.argv[3:])
