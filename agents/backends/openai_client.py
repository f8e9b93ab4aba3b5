"""`openai` backend: any OpenAI-compatible `/v1/chat/completions` (vLLM, SGLang, TGI, Ollama, APIs).

Images travel as base64 data URLs; structured output as `response_format` json_schema, the form
vLLM's guided decoding accepts. Calls are spread round-robin over several base URLs, each with its
own concurrency limit, and retried with exponential backoff and full jitter on 429, 5xx,
connection errors and timeouts. A server's Retry-After wins over our backoff when it is longer.
"""

from __future__ import annotations

import asyncio
import base64
import email.utils
import functools
import itertools
import os
import random
import time
from dataclasses import dataclass

import httpx

from agents.backends.chat import (
    BackendError,
    ChatResult,
    EndpointUnavailable,
    SamplingParams,
    Usage,
    apply_stop,
    normalize_messages,
)
from agents.backends.http_lanes import Lanes
from agents.backends.structured import check_schema

RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}
IMAGE_MIME = {b"\x89PNG": "image/png", b"\xff\xd8\xff": "image/jpeg", b"GIF8": "image/gif", b"RIFF": "image/webp"}


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try before a call is given up."""

    attempts: int = 5
    """Total tries per call, the first included."""
    base_delay: float = 0.5
    """Seconds before the first retry; doubles each time."""
    max_delay: float = 30.0
    """Upper bound on one wait, Retry-After included."""
    timeout: float = 120.0
    """Seconds for one HTTP request (connect, read and write each)."""


class OpenAIBackend:
    backend = "openai"

    def __init__(
        self,
        model_id: str,
        base_urls: list[str] | str,
        *,
        api_key: str | None = None,
        concurrency: int = 16,
        retry: RetryPolicy = RetryPolicy(),
    ):
        urls = [base_urls] if isinstance(base_urls, str) else list(base_urls)
        if not urls:
            raise ValueError("base_urls: at least one endpoint is required")
        self.model_id = model_id
        self.base_urls = [u.rstrip("/") for u in urls]
        self.retry = retry
        self._next_url = itertools.cycle(self.base_urls)
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        # `concurrency` requests in flight per endpoint, each with a kept-alive connection.
        self._lanes = {u: Lanes(concurrency, retry.timeout, headers) for u in self.base_urls}

    async def chat(self, messages, *, schema=None, params=SamplingParams()) -> ChatResult:
        check_schema(schema)
        messages = normalize_messages(messages)
        if any(part["type"] == "image" for m in messages for part in m["content"]):
            # Reading and base64-encoding images off the event loop keeps other calls flowing.
            body = await asyncio.to_thread(self._request_body, messages, schema, params)
        else:
            body = self._request_body(messages, schema, params)
        data = await self._post_with_retries(body)
        try:
            choice = data["choices"][0]
            text = choice["message"]["content"] or ""
        except (KeyError, IndexError, TypeError):
            raise BackendError(f"{self.model_id}: response has no choices[0].message.content") from None
        usage = data.get("usage") or {}
        return ChatResult(
            text=apply_stop(text, params.stop),
            model=self.model_id,
            usage=Usage(usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0)),
        )

    async def aclose(self) -> None:
        for lanes in self._lanes.values():
            await lanes.aclose()

    def _request_body(self, messages: list[dict], schema: dict | None, params: SamplingParams) -> dict:
        body = {
            "model": self.model_id,
            "messages": [{"role": m["role"], "content": [_wire_part(p) for p in m["content"]]} for m in messages],
            "max_tokens": params.max_tokens,
            "temperature": params.temperature,
            "top_p": params.top_p,
        }
        if params.seed is not None:
            body["seed"] = params.seed
        if params.stop:
            body["stop"] = list(params.stop)
        if schema is not None:
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": schema.get("title", "reply"), "schema": schema, "strict": True},
            }
        return body

    async def _post_with_retries(self, body: dict) -> dict:
        last_problem = "no attempt made"
        for attempt in range(self.retry.attempts):
            url = next(self._next_url)
            retry_after = None
            try:
                async with self._lanes[url].client() as client:
                    response = await client.post(f"{url}/chat/completions", json=body)
                if response.status_code == 200:
                    return response.json()
                last_problem = f"HTTP {response.status_code} from {url}: {response.text[:200].strip()}"
                if response.status_code not in RETRY_STATUS:
                    raise BackendError(f"{self.model_id}: {last_problem}")
                retry_after = parse_retry_after(response.headers.get("retry-after"))
            except httpx.TimeoutException:
                last_problem = f"timed out after {self.retry.timeout:g}s at {url}"
            except httpx.TransportError as err:
                last_problem = f"cannot reach {url}: {err.__class__.__name__}: {err}".rstrip(": ")
            except ValueError:  # the body of a 200 was not JSON
                last_problem = f"response from {url} is not JSON"
            if attempt + 1 < self.retry.attempts:
                await asyncio.sleep(self._delay(attempt, retry_after))
        raise EndpointUnavailable(f"{self.model_id}: gave up after {self.retry.attempts} attempts; "
                                  f"last: {last_problem}")

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        backoff = random.uniform(0, self.retry.base_delay * 2**attempt)  # full jitter
        if retry_after is not None:
            backoff = max(backoff, retry_after)
        return min(backoff, self.retry.max_delay)


def parse_retry_after(value: str | None) -> float | None:
    """Retry-After is either seconds or an HTTP date (RFC 9110 section 10.2.3)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _wire_part(part: dict) -> dict:
    if part["type"] == "text":
        return part
    return {"type": "image_url", "image_url": {"url": image_data_url(part["path"])}}


def image_data_url(path: str) -> str:
    stat = os.stat(path)
    return _data_url(path, stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=64)
def _data_url(path: str, mtime_ns: int, size: int) -> str:
    """Memoised on the file's version: a multi-turn eval resends every earlier image each turn."""
    data = open(path, "rb").read()
    mime = next((m for magic, m in IMAGE_MIME.items() if data.startswith(magic)), "application/octet-stream")
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"
