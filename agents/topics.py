"""Topic agent (the planner LLM): seed topics for a domain and task kind, near-duplicates removed.

VisChainBench's planner generates the multi-step procedural tasks itself. Here the planner model
proposes topics in batches under the domain's guidance (its description, the kind's definition and
the domain's own example topics), each batch told the topics kept so far; every proposal is embedded
with all-MiniLM-L6-v2 (agents/embedding.py) and kept only when it is not a near-duplicate of a topic
already kept. `vischain topics` writes what this collects to a topic file (vischain/commands/topics.py).

    result = await collect_topics(model, embedder, TopicRequest(domain="engineering", ...), want=200,
                                  kind="itmr", seed=0)
    result.topics, result.proposed, result.calls
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from agents.ask import ask_json
from agents.backends.chat import ChatModel, SamplingParams
from agents.embedding import distinct
from agents.planner import KIND_GUIDE, PRINCIPLES, safe_text

TOPIC_CHARS = 90
"""Longest topic; the domains' hand-written topics are 20 to 60 characters."""
BATCH = 20
"""Topics asked for per call: enough that a call is worth its prompt, few enough to stay varied."""
KEPT_SHOWN = 60
"""Topics already kept that a call is told to avoid (the latest ones): bounds the prompt's length."""
EXAMPLES_SHOWN = 6
"""The domain's own topics shown as examples of the wanted style."""
MAX_CALLS_PER_BATCH = 3
"""A kind gives up after 3 x (the batches it needs) + 2 calls: a model that only repeats itself stops."""
DEFAULT_THRESHOLD = 0.65
"""Cosine similarity at which two topics count as one. Chosen on 35 hand-labelled engineering pairs
(tests/agents/test_topics.py holds them): 15 paraphrases scored 0.77 to 0.99, 20 distinct but
related topics (same tools, same room) 0.08 to 0.55; 0.65 lies in the gap, nearer the distinct side,
since keeping a near-duplicate costs a repeated task while dropping a distinct topic costs one call."""

SYSTEM = "You propose topics for multi-step visual reasoning tasks of a benchmark. You reply with JSON only."
INSTRUCTION = (
    "Domain: {domain} ({description})\nTask kind: {kind} ({guide})\n\n{principles}\n\n"
    "Examples of topics of this kind: {examples}.\n{avoid}"
    "Propose {count} new topics of this kind in this domain: each a concrete procedure or choice that "
    "takes several visible steps, in a few plain words like the examples, each different from the others."
)


def prompt_hash() -> str:
    """SHA-256 of the topic prompt's fixed texts: a topic file names the prompt that made it."""
    texts = {"system": SYSTEM, "instruction": INSTRUCTION, "principles": PRINCIPLES, "guide": KIND_GUIDE}
    return hashlib.sha256(json.dumps(texts, sort_keys=True).encode()).hexdigest()


def topics_schema(count: int) -> dict:
    return {"title": "topics", "type": "object", "additionalProperties": False, "required": ["topics"],
            "properties": {"topics": {"type": "array", "items": safe_text(TOPIC_CHARS, 8),
                                      "minItems": count, "maxItems": count}}}


@dataclass(frozen=True)
class TopicRequest:
    """What the topic agent is told about the domain."""

    domain: str
    description: str
    examples: dict[str, tuple[str, ...]]
    """The domain's hand-written topics per kind."""
    temperature: float = 1.0


def topic_messages(request: TopicRequest, kind: str, kept: list[str], count: int) -> list[dict]:
    avoid = (f"Topics already chosen (propose none of these, nor rewordings of them): "
             f"{'; '.join(kept[-KEPT_SHOWN:])}.\n") if kept else ""
    text = INSTRUCTION.format(domain=request.domain, description=request.description or "no description",
                              kind=kind, guide=KIND_GUIDE[kind], principles=PRINCIPLES,
                              examples="; ".join(request.examples.get(kind, ())[:EXAMPLES_SHOWN]) or "none",
                              avoid=avoid, count=count)
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": text}]


async def propose_topics(model: ChatModel, request: TopicRequest, kind: str, kept: list[str], count: int,
                         seed: int, repair_attempts: int = 2) -> list[str]:
    """`count` proposals (stripped); AgentError(stage='topics') when the model cannot give them."""
    params = SamplingParams(max_tokens=count * (TOPIC_CHARS + 8), temperature=request.temperature, seed=seed)
    reply = await ask_json(model, topic_messages(request, kind, kept, count), topics_schema(count), params,
                           stage="topics", repair_attempts=repair_attempts)
    return [" ".join(topic.split()) for topic in reply["topics"]]


@dataclass(frozen=True)
class KindTopics:
    kind: str
    topics: tuple[str, ...]
    """Kept, in the order they were proposed."""
    proposed: int
    """Proposals before near-duplicates were removed."""
    calls: int


async def collect_topics(model: ChatModel, embedder, request: TopicRequest, *, kind: str, want: int, seed: int,
                         threshold: float = DEFAULT_THRESHOLD, repair_attempts: int = 2) -> KindTopics:
    """Up to `want` distinct topics of one kind; fewer when the call budget runs out first."""
    import torch  # here: the embeddings are torch tensors; this module imports without torch

    kept: list[str] = []
    kept_vectors = embedder.embed([])
    proposed = calls = 0
    budget = MAX_CALLS_PER_BATCH * -(-want // BATCH) + 2
    while len(kept) < want and calls < budget:
        seed_of_call = call_seed(seed, request.domain, kind, calls)
        proposals = await propose_topics(model, request, kind, kept, min(BATCH, want - len(kept)), seed_of_call,
                                         repair_attempts)
        calls += 1
        proposed += len(proposals)
        vectors = embedder.embed(proposals)
        fresh = distinct(vectors, threshold, kept=kept_vectors)[:want - len(kept)]
        kept += [proposals[i] for i in fresh]
        kept_vectors = torch.cat([kept_vectors, vectors[fresh]])
    return KindTopics(kind, tuple(kept), proposed, calls)


def call_seed(seed: int, domain: str, kind: str, call: int) -> int:
    """Each call its own seed, a pure function of the command's seed: the same command asks the same things."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{domain}:{kind}:{call}".encode()).digest()[:4], "big") % 2**31
