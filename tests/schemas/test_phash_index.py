import random

import pytest

from schemas.phash_index import PHashIndex


def flip(bits: int, count: int, rng: random.Random) -> int:
    for position in rng.sample(range(64), count):
        bits ^= 1 << position
    return bits


def scan(kept: list[tuple[int, str]], bits: int, max_bits: int):
    """The quadratic answer the index must reproduce: the earliest kept hash within max_bits."""
    for other, sha in kept:
        if (distance := (bits ^ other).bit_count()) <= max_bits:
            return sha, distance
    return None


@pytest.mark.parametrize("max_bits", [0, 4, 10, 15, 16, 64])
def test_the_index_answers_exactly_as_a_scan_in_insertion_order(max_bits):
    rng = random.Random(max_bits)
    index, kept = PHashIndex(max_bits), []
    for number in range(400):
        bits = rng.getrandbits(64)
        index.add(bits, f"sha{number}")
        kept.append((bits, f"sha{number}"))
    near = [flip(rng.choice(kept)[0], rng.randint(0, max_bits), rng) for _ in range(200)]
    beyond = [flip(rng.choice(kept)[0], min(64, max_bits + rng.randint(1, 2)), rng) for _ in range(100)]
    queries = near + beyond + [rng.getrandbits(64) for _ in range(100)]
    answers = [index.first_within(q) for q in queries]
    assert answers == [scan(kept, q, max_bits) for q in queries]
    assert all(answer is not None for answer in answers[:200])  # within max_bits of a kept hash


def test_a_hash_exactly_max_bits_away_is_found_and_one_more_is_not():
    index = PHashIndex(4)
    index.add(0, "zero")
    assert index.first_within(0b1111) == ("zero", 4)
    assert index.first_within(0b11111) is None
