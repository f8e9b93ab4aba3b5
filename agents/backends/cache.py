"""Model-call cache: a re-run costs no model calls for work already done.

The key is the SHA-256 of everything that decides a deterministic answer: backend, model id,
messages (each image by the SHA-256 of its bytes, never its path, so moving a run folder keeps its
cache), the schema and the generation parameters. Sampled calls without a seed are never cached.
Identical calls in flight at the same moment share one model call.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import time
from pathlib import Path

from agents.backends.chat import ChatModel, ChatResult, SamplingParams, Usage, file_sha256, normalize_messages
from schemas.run_db import RunDB, SqliteRunDB

SCHEMA_SQL = """
CREATE TABLE IF NOT EXISTS model_calls (
    key TEXT PRIMARY KEY,
    backend TEXT NOT NULL,
    model TEXT NOT NULL,
    text TEXT NOT NULL,
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    created DOUBLE PRECISION NOT NULL
)"""


class CallCache:
    """A table of finished calls, safe to share between threads, graph runs and (through the run's
    database) processes: `CallCache(path)` for a SQLite file of its own, `CallCache(db)` for a run DB."""

    def __init__(self, where: str | Path | RunDB):
        if isinstance(where, (str, Path)):
            Path(where).parent.mkdir(parents=True, exist_ok=True)
            where = SqliteRunDB(where)
        self.db = where
        self.db.executescript(SCHEMA_SQL)
        self.hits = 0
        self.misses = 0

    def get(self, key: str) -> ChatResult | None:
        rows = self.db.query("SELECT model, text, prompt_tokens, completion_tokens FROM model_calls WHERE key = ?",
                             (key,))
        if not rows:
            return None
        model, text, prompt_tokens, completion_tokens = rows[0]
        return ChatResult(text=text, model=model, usage=Usage(prompt_tokens, completion_tokens), cached=True)

    def put(self, key: str, backend: str, result: ChatResult) -> None:
        # Two processes may make the same call at once: the first answer stays (both are the same
        # deterministic call), so a conflict is not an error.
        self.db.execute("INSERT INTO model_calls VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                        (key, backend, result.model, result.text, result.usage.prompt_tokens,
                         result.usage.completion_tokens, time.time()))

    def close(self) -> None:
        self.db.close()


def cache_key(backend: str, model_id: str, messages: list[dict], schema: dict | None,
              params: SamplingParams) -> str:
    hashed = [
        {"role": m["role"], "content": [
            {"type": "image", "sha256": _image_sha256(p["path"])} if p["type"] == "image" else p
            for p in m["content"]]}
        for m in messages
    ]
    blob = json.dumps([backend, model_id, hashed, schema, params.as_dict()], sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


_sha_memo: dict[tuple[str, int, int], str] = {}


def _image_sha256(path: str) -> str:
    # Memoised on (path, mtime, size): agents send the same image many times in one run.
    stat = os.stat(path)
    memo_key = (path, stat.st_mtime_ns, stat.st_size)
    if memo_key not in _sha_memo:
        _sha_memo[memo_key] = file_sha256(path)
    return _sha_memo[memo_key]


class CachedChatModel:
    """Any backend behind the cache; `calls` counts what actually reached the model."""

    def __init__(self, inner: ChatModel, cache: CallCache):
        self.inner = inner
        self.cache = cache
        self.backend = inner.backend
        self.model_id = inner.model_id
        self.calls = 0
        self._in_flight: dict[str, asyncio.Future] = {}

    async def chat(self, messages, *, schema=None, params=SamplingParams()) -> ChatResult:
        if not params.deterministic:
            self.calls += 1
            return await self.inner.chat(messages, schema=schema, params=params)
        messages = normalize_messages(messages)
        # Hashing an image not seen before and the SQLite lookup run in a worker thread, so the loop
        # keeps every other task's HTTP flowing; in one trip, since a trip to a thread costs far more
        # CPU than the lookup itself (docs/generate-throughput.md).
        key, hit = await asyncio.to_thread(self._lookup, messages, schema, params)
        if hit is not None:
            self.cache.hits += 1
            return hit
        if key in self._in_flight:
            return await asyncio.shield(self._in_flight[key])
        self.cache.misses += 1
        future = asyncio.get_running_loop().create_future()
        self._in_flight[key] = future
        try:
            self.calls += 1
            result = await self.inner.chat(messages, schema=schema, params=params)
            await asyncio.to_thread(self.cache.put, key, self.backend, result)
            future.set_result(result)
            return result
        except BaseException as err:
            future.set_exception(err)
            future.exception()  # mark retrieved: no "never retrieved" warning when nobody waits
            raise
        finally:
            del self._in_flight[key]

    def _lookup(self, messages: list[dict], schema: dict | None,
                params: SamplingParams) -> tuple[str, ChatResult | None]:
        key = cache_key(self.backend, self.model_id, messages, schema, params)
        return key, self.cache.get(key)

    async def aclose(self) -> None:
        await self.inner.aclose()
