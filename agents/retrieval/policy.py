"""The limits one run's downloads obey, and the exception that ends one candidate with a reason."""

from __future__ import annotations

from dataclasses import dataclass

from schemas.run_claims import NEAR_DUPLICATE_BITS


@dataclass(frozen=True)
class FetchPolicy:
    """Limits for one run's downloads."""

    max_bytes: int = 10 * 1024 * 1024
    """Largest body accepted; 10 MiB holds any web photo we need (a 24 MP JPEG is about 8 MiB)."""
    max_pixels: int = 50_000_000
    """Largest width x height decoded; 50 MP covers a 45 MP camera frame and costs 150 MB as RGB."""
    min_width: int = 224
    """Narrowest image kept; 224 px is the input side of CLIP-style vision encoders."""
    min_height: int = 224
    """Shortest image kept."""
    connect_timeout: float = 5.0
    """Seconds to open a connection (resolving the host included)."""
    read_timeout: float = 10.0
    """Seconds allowed between two received chunks."""
    total_timeout: float = 30.0
    """Seconds for the whole download, every redirect included; stops servers that trickle bytes."""
    max_redirects: int = 5
    """Redirects followed before giving up (browsers allow 20; image hosts use 1 or 2)."""
    concurrency: int = 32
    """Downloads in flight at once, over all hosts."""
    per_host: int = 4
    """Downloads in flight at once to one host (the candidate's first host), to stay polite."""
    allow_loopback: bool = False
    """Admit 127.0.0.0/8 and ::1; for tests and benchmarks that serve images locally."""
    near_duplicate_bits: int = NEAR_DUPLICATE_BITS
    """Largest Hamming distance (of 64 pHash bits) that counts as a near duplicate; -1 turns it off."""
    jpeg_quality: int = 92
    """Quality of re-encoded JPEGs; 92 keeps re-encoding loss below what the eye sees."""
    user_agent: str = "vischain/0.1 (benchmark image fetcher)"
    """User-Agent sent with every request."""

    def __post_init__(self):
        for name in ("max_bytes", "max_pixels", "concurrency", "per_host"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: must be at least 1, got {getattr(self, name)!r}")
        for name in ("connect_timeout", "read_timeout", "total_timeout"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name}: must be a positive number of seconds, got {getattr(self, name)!r}")
        if self.max_redirects < 0 or self.min_width < 1 or self.min_height < 1:
            raise ValueError("max_redirects, min_width, min_height: must be >= 0, >= 1, >= 1")
        if not -1 <= self.near_duplicate_bits <= 64:
            raise ValueError(f"near_duplicate_bits: must be -1..64, got {self.near_duplicate_bits!r}")


class Refused(Exception):
    """Ends one candidate's fetch with a reason; never leaves the fetcher."""
