"""Near-duplicate lookups: schemas/phash_index.py against the scan it replaced, in the same run.

    .venv/bin/python bench/phash_index.py [--images 20000] [--bits 4]

Each image is looked up, then kept (what the fetcher does), so the scan's cost grows with the run.
Hashes are random 64-bit values, as pHashes of distinct photos roughly are.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from schemas.phash_index import PHashIndex  # noqa: E402


def with_index(hashes: list[int], bits: int) -> float:
    index, started = PHashIndex(bits), time.perf_counter()
    for number, value in enumerate(hashes):
        index.first_within(value)
        index.add(value, str(number))
    return time.perf_counter() - started


def with_scan(hashes: list[int], bits: int) -> float:
    kept, started = [], time.perf_counter()
    for number, value in enumerate(hashes):
        next((sha for other, sha in kept if (value ^ other).bit_count() <= bits), None)
        kept.append((value, str(number)))
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=20000)
    parser.add_argument("--bits", type=int, default=4, help="near_duplicate_bits")
    args = parser.parse_args()
    rng = random.Random(0)
    hashes = [rng.getrandbits(64) for _ in range(args.images)]
    scan, index = with_scan(hashes, args.bits), with_index(hashes, args.bits)
    print(f"{args.images} images, within {args.bits} bits")
    print(f"scan : {scan:7.2f} s  ({1e6 * scan / args.images:7.1f} us per image)")
    print(f"index: {index:7.2f} s  ({1e6 * index / args.images:7.1f} us per image)")
    print(f"index vs scan: {scan / index:.1f}x faster")


if __name__ == "__main__":
    main()
