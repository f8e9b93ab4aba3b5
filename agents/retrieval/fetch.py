"""Fetch candidate images from the hostile web: every outcome is a kept image or a reason.

Each candidate passes, in order: the licence policy (nothing outside it is downloaded); the
network limits (an address guard at the socket, redirects followed by hand with each hop checked
again, connect/read/total timeouts, a byte cap enforced while streaming); a type sniffed from the
bytes, never from Content-Type; a PIL decode under a pixel cap (a decompression bomb is a reason,
not a crash) with the minimum size, first frame of an animation, EXIF rotation, and CMYK, 16-bit
and alpha made RGB; and deduplication: the image is claimed for its owner (the image slot that
wants it) in the run's claims (schemas/run_claims.py), refused when another owner holds the same
SHA-256 or a pHash within `near_duplicate_bits`. Any step may end it as `Rejected(candidate, reason)`.

A kept image is written as `run_dir/folder/<sha256>.jpg|.png` and returned as a path and hashes.
An upright 8-bit RGB JPEG or opaque RGB PNG is saved byte for byte (its hash is the published
file's); anything else is converted and re-encoded (PNG for PNG/GIF sources, JPEG otherwise).

The address guard resolves each host as the connection opens, refuses private, loopback,
link-local and reserved addresses, and connects to the address it checked, so DNS cannot change
its answer in between. Tests opt in to 127.0.0.1 with `FetchPolicy(allow_loopback=True)`.

    async with Fetcher("runs/eng", FetchPolicy(), LicencePolicy(), claims) as fetcher:
        outcomes = await fetcher.fetch_all(result.candidates, "images", owner="itmr-0001/q1_a")
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import SplitResult, urljoin, urlsplit
from urllib.request import url2pathname

import httpx

from agents.retrieval.decode import SNIFF_BYTES, PreparedImage, prepare_image, require_image
from agents.retrieval.guard import guarded_transport
from agents.retrieval.policy import FetchPolicy, Refused
from agents.retrieval.search.candidate import Candidate
from schemas.durable_files import write_atomically
from schemas.licences import LicencePolicy
from schemas.run_claims import RunClaims

log = logging.getLogger(__name__)

REDIRECT_STATUS = {301, 302, 303, 307, 308}


@dataclass(frozen=True)
class Kept:
    """An image saved to disk."""

    candidate: Candidate
    """The search result it came from."""
    path: Path
    """Where it was written."""
    file: str
    """The same path relative to the run folder, as provenance records it."""
    sha256: str
    """SHA-256 of the saved file."""
    phash: str
    """imagehash.phash of the saved image, 16 hex digits."""
    width: int
    height: int

    def provenance(self) -> dict:
        """One line of provenance.jsonl (schemas/provenance.schema.json); the validator fills `validator`."""
        c = self.candidate
        return {"file": self.file, "sha256": self.sha256, "phash": self.phash, "provider": c.provider,
                "source_url": c.provenance_source_url, "page_url": c.page_url,
                "licence": c.licence.record() if c.licence else None, "creator": c.creator,
                "attribution": c.attribution, "synthetic": False, "generator": None, "validator": None}


@dataclass(frozen=True)
class _Prepared:
    """A decoded image waiting for its claim (lives for one fetch_for call)."""

    candidate: Candidate
    image: PreparedImage
    download_sha: str


@dataclass(frozen=True)
class Rejected:
    """A candidate that was not kept."""

    candidate: Candidate
    reason: str
    """One line, e.g. "not an image (html)" or "too large: > 10485760 bytes"."""



# --- the fetcher --------------------------------------------------------------------------------


class Fetcher:
    """Downloads for one run. Duplicates are refused across every call on the same claims: the run's
    (shared by every process of the run), or, without one, this Fetcher's own in memory."""

    def __init__(self, run_dir: str | Path, policy: FetchPolicy = FetchPolicy(),
                 licences: LicencePolicy = LicencePolicy(), claims: RunClaims | None = None):
        self.run_dir = Path(run_dir)
        self.policy = policy
        self.licences = licences
        timeout = httpx.Timeout(connect=policy.connect_timeout, read=policy.read_timeout,
                                write=policy.read_timeout, pool=policy.total_timeout)
        # Identity only: a compressed body would grow past the byte cap after our count.
        headers = {"User-Agent": policy.user_agent, "Accept": "image/*", "Accept-Encoding": "identity"}
        self._http = httpx.AsyncClient(transport=guarded_transport(policy), timeout=timeout, headers=headers,
                                       follow_redirects=False, trust_env=False)
        self._slots = asyncio.Semaphore(policy.concurrency)
        self._host_slots: dict[str, asyncio.Semaphore] = {}
        # Decoding and writing get their own threads, one per usable core: in asyncio's default
        # pool they would queue the DNS lookups of the next downloads behind them.
        self._workers = ThreadPoolExecutor(len(os.sched_getaffinity(0)), thread_name_prefix="fetch-decode")
        self.claims = claims or RunClaims(":memory:", policy.near_duplicate_bits)
        self._lock = threading.Lock()  # guards the record below across worker threads
        # SHA-256 of downloaded bytes -> (sha256 kept from them, owner): the same bytes again skip decoding
        self._download_sha: dict[str, tuple[str, str]] = {}

    async def __aenter__(self) -> Fetcher:
        return self

    async def __aexit__(self, *exc) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()
        self._workers.shutdown(wait=False, cancel_futures=True)

    async def fetch_all(self, candidates: list[Candidate], folder: str | Path,
                        owner: str | None = None) -> list[Kept | Rejected]:
        """One outcome per candidate, in order, all for `owner` (default: each candidate's URL)."""
        return await self.fetch_for([(c, owner or f"url:{c.url}") for c in candidates], folder)

    async def fetch(self, candidate: Candidate, folder: str | Path, owner: str | None = None) -> Kept | Rejected:
        """Download, check and save one candidate under `run_dir/folder` for `owner` (default: the
        candidate's URL); never raises on bad input from the web."""
        return (await self.fetch_all([candidate], folder, owner))[0]

    async def fetch_for(self, wanted: list[tuple[Candidate, str]], folder: str | Path) -> list[Kept | Rejected]:
        """Download and decode every (candidate, owner) concurrently, then claim all the images in one
        transaction and write those claimed: one outcome per candidate, in order. Never raises on bad
        input from the web."""
        if Path(folder).is_absolute():
            raise ValueError(f"folder: must be relative to the run folder, got {folder}")
        prepared = await asyncio.gather(*(self._guarded(self._prepare(c, owner), c) for c, owner in wanted))
        return await asyncio.get_running_loop().run_in_executor(
            self._workers, self._claim_and_write, prepared, [owner for _, owner in wanted], Path(folder))

    def _claim_and_write(self, prepared: list, owners: list[str], folder: Path) -> list[Kept | Rejected]:
        """In a worker thread: one claim transaction for every decoded image, then the claimed ones
        written to the pool (one trip to a thread for all of them)."""
        ready = [(i, item) for i, item in enumerate(prepared) if not isinstance(item, Rejected)]
        refusals = self.claims.claim_image_batch([(owners[i], item.image.sha256, item.image.phash)
                                                  for i, item in ready])
        outcomes: list[Kept | Rejected] = list(prepared)
        for (i, item), refusal in zip(ready, refusals):
            if refusal:
                outcomes[i] = Rejected(item.candidate, refusal)
                continue
            try:
                outcomes[i] = self._write(item, owners[i], folder)
            except OSError as err:
                outcomes[i] = Rejected(item.candidate, f"cannot write: {err.strerror or err}")
            except Exception as err:
                outcomes[i] = _unexpected(item.candidate, err)
        return outcomes

    async def _guarded(self, work, candidate: Candidate):
        """The contract: a reason, never an escaped exception."""
        try:
            return await work
        except Refused as refusal:
            return Rejected(candidate, str(refusal))
        except Exception as err:
            return _unexpected(candidate, err)

    async def _prepare(self, candidate: Candidate, owner: str) -> _Prepared:
        if reason := self.licences.refusal(candidate.licence):
            raise Refused(reason)
        data = await self._download(candidate)
        return await asyncio.get_running_loop().run_in_executor(self._workers, self._decode, candidate, data, owner)

    def _decode(self, candidate: Candidate, data: bytearray, owner: str) -> _Prepared:
        """In a worker thread: decode and check (the same bytes again, for someone else: refused unread)."""
        download_sha = hashlib.sha256(data).hexdigest()
        with self._lock:
            earlier = self._download_sha.get(download_sha)
        if earlier and earlier[1] != owner:
            raise Refused(f"duplicate of {earlier[0]} (held by {earlier[1]})")
        return _Prepared(candidate, prepare_image(data, self.policy), download_sha)

    def _write(self, item: _Prepared, owner: str, folder: Path) -> Kept:
        with self._lock:
            self._download_sha[item.download_sha] = (item.image.sha256, owner)
        image, relative = item.image, folder / f"{item.image.sha256}.{item.image.extension}"
        write_atomically(self.run_dir / relative, image.data, fsync=False)
        return Kept(item.candidate, self.run_dir / relative, relative.as_posix(), image.sha256, image.phash,
                    image.width, image.height)

    async def _download(self, candidate: Candidate) -> bytearray:
        if candidate.url.startswith("file:"):
            if candidate.provider != "folder":
                raise Refused("scheme not allowed: file")
            return await asyncio.to_thread(_read_local, candidate.url, self.policy.max_bytes)
        host = (_split(candidate.url).hostname or "").lower()
        host_slot = self._host_slots.setdefault(host, asyncio.Semaphore(self.policy.per_host))
        async with host_slot, self._slots:
            try:
                async with asyncio.timeout(self.policy.total_timeout):
                    return await self._follow(candidate.url)
            except TimeoutError:
                raise Refused(f"total timeout {self.policy.total_timeout:g}s") from None
            except httpx.ConnectTimeout:
                raise Refused(f"connect timeout {self.policy.connect_timeout:g}s") from None
            except httpx.ReadTimeout:
                raise Refused(f"read timeout {self.policy.read_timeout:g}s") from None
            except httpx.HTTPError as err:
                raise Refused(f"connection failed: {type(err).__name__}: {err}"[:200]) from None

    async def _follow(self, url: str) -> bytearray:
        """GET `url`, following redirects by hand so each hop meets the scheme check and the guard."""
        seen = {url}
        for hop in range(self.policy.max_redirects + 1):
            via = "redirect to " if hop else ""
            scheme = _split(url, via).scheme
            if scheme not in ("http", "https"):
                raise Refused(f"{via}scheme not allowed: {scheme or 'none'}")
            try:
                async with self._http.stream("GET", url) as response:
                    if response.status_code not in REDIRECT_STATUS:
                        return await self._read_body(response)
                    location = response.headers.get("location")
            except Refused as refusal:
                raise Refused(f"{via}{refusal}") from None
            except httpx.InvalidURL:
                raise Refused(f"{via}bad url {url[:100]}") from None
            if not location:
                raise Refused(f"HTTP {response.status_code} without a Location header")
            try:
                url = urljoin(url, location)
            except ValueError:
                raise Refused(f"redirect to bad url {location[:100]}") from None
            if url in seen:
                raise Refused(f"redirect loop at {url[:200]}")
            seen.add(url)
        raise Refused(f"too many redirects (> {self.policy.max_redirects})")

    async def _read_body(self, response: httpx.Response) -> bytearray:
        cap = self.policy.max_bytes
        if response.status_code != 200:
            raise Refused(f"HTTP {response.status_code}")
        encoding = response.headers.get("content-encoding", "identity").lower()
        if encoding != "identity":
            raise Refused(f"compressed body (content-encoding {encoding}) not accepted")
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > cap:
            raise Refused(f"too large: > {cap} bytes")
        body = bytearray()
        sniffed = False
        async for chunk in response.aiter_raw():
            body += chunk
            if len(body) > cap:
                raise Refused(f"too large: > {cap} bytes")
            if not sniffed and len(body) >= SNIFF_BYTES:
                require_image(body)  # stop reading an HTML page now, not after 10 MiB
                sniffed = True
        require_image(body)
        return body


def _split(url: str, via: str = "") -> SplitResult:
    """urlsplit, with a malformed URL (an unclosed IPv6 bracket, say) refused rather than raised."""
    try:
        return urlsplit(url)
    except ValueError:
        raise Refused(f"{via}bad url {url[:100]}") from None


def _read_local(url: str, cap: int) -> bytearray:
    path = Path(url2pathname(urlsplit(url).path))
    try:
        if path.stat().st_size > cap:
            raise Refused(f"too large: > {cap} bytes")
        return bytearray(path.read_bytes())
    except OSError as err:
        raise Refused(f"cannot read {path.name}: {err.strerror or err}") from None


def _unexpected(candidate: Candidate, err: Exception) -> Rejected:
    """An error no fetch step expects: logged with its traceback, and the candidate rejected with it."""
    log.warning("fetch %s: unexpected %s", candidate.url, type(err).__name__, exc_info=err)
    return Rejected(candidate, f"unexpected error: {type(err).__name__}: {err}"[:300])
