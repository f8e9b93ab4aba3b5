"""Many requests in flight to one endpoint through several small httpx connection pools.

httpcore's pool checks every pooled connection each time it assigns a request (an `is_idle` scan
and a `poll` syscall per connection), so the CPU cost of a request grows with the pool
(docs/generate-throughput.md has the figures). Lanes of at most 16 connections keep that scan
short; a request takes the lane with the most free places, so no lane queues while another has room.

    lanes = Lanes(concurrency=64, timeout=120.0, headers={})
    async with lanes.client() as client:
        response = await client.post(url, json=body)
"""

from __future__ import annotations

import asyncio
import contextlib
import math

import httpx

LANE_SIZE = 16


class _Lane:
    def __init__(self, size: int, timeout: float, headers: dict, ssl_context):
        limits = httpx.Limits(max_connections=size, max_keepalive_connections=size)
        self.client = httpx.AsyncClient(timeout=timeout, headers=headers, trust_env=False, limits=limits,
                                        verify=ssl_context)
        self.free = size


class Lanes:
    def __init__(self, concurrency: int, timeout: float, headers: dict):
        count = math.ceil(concurrency / LANE_SIZE)
        self._slots = asyncio.Semaphore(concurrency)
        ssl_context = httpx.create_ssl_context(trust_env=False)  # loading CA certificates is slow: once
        self._lanes = [_Lane(min(LANE_SIZE, concurrency - i * LANE_SIZE), timeout, headers, ssl_context)
                       for i in range(count)]

    @contextlib.asynccontextmanager
    async def client(self):
        """A client with a free connection place; waits while `concurrency` requests are in flight."""
        async with self._slots:
            lane = max(self._lanes, key=lambda lane: lane.free)  # the semaphore guarantees free > 0
            lane.free -= 1
            try:
                yield lane.client
            finally:
                lane.free += 1

    async def aclose(self) -> None:
        for lane in self._lanes:
            await lane.client.aclose()
