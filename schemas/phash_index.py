"""Near-duplicate lookup over 64-bit pHashes in about constant time, for runs of any size.

The fetcher asks, for every image it decodes, "was an image within `max_bits` bits kept before?".
A scan over every kept hash makes a run quadratic: 70,000 images (10,000 tasks) would cost 2.4
billion comparisons. Multi-index hashing answers from a few buckets instead: split the 64 bits into
`max_bits + 1` bands; two hashes within `max_bits` bits of each other differ in at most `max_bits`
bands, so by the pigeonhole principle they agree exactly on at least one band. Only hashes sharing
a band value are compared. Past 15 bits a band is under 4 bits wide and matches everything anyway,
so the index falls back to the scan.

    index = PHashIndex(max_bits=4)
    index.add(int(phash, 16), sha256)
    index.first_within(int(other, 16))   # -> (sha256, distance) of the earliest kept match, or None
"""

from __future__ import annotations

MAX_INDEXED_BITS = 15


class PHashIndex:
    def __init__(self, max_bits: int):
        self.max_bits = max_bits
        self._entries: list[tuple[int, str]] = []  # (hash, sha256) in the order they were kept
        bands = max_bits + 1 if 0 <= max_bits <= MAX_INDEXED_BITS else 0
        self._bands = band_masks(bands)
        self._buckets: list[dict[int, list[int]]] = [{} for _ in self._bands]

    def add(self, bits: int, sha256: str) -> None:
        number = len(self._entries)
        self._entries.append((bits, sha256))
        for (shift, mask), bucket in zip(self._bands, self._buckets):
            bucket.setdefault((bits >> shift) & mask, []).append(number)

    def first_within(self, bits: int) -> tuple[str, int] | None:
        """The earliest kept hash within `max_bits` bits, as (sha256, distance); the same answer a
        scan in insertion order gives."""
        if self._bands:
            numbers = sorted({n for (shift, mask), bucket in zip(self._bands, self._buckets)
                              for n in bucket.get((bits >> shift) & mask, ())})
        else:
            numbers = range(len(self._entries))
        for number in numbers:
            other, sha256 = self._entries[number]
            if (distance := (bits ^ other).bit_count()) <= self.max_bits:
                return sha256, distance
        return None


def band_masks(count: int) -> list[tuple[int, int]]:
    """(shift, mask) for `count` bands covering 64 bits, widths differing by at most one."""
    masks, start = [], 0
    for band in range(count):
        width = 64 // count + (1 if band < 64 % count else 0)
        masks.append((start, (1 << width) - 1))
        start += width
    return masks
