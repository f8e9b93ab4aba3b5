"""SimRate: the share of predictions a judge finds similar in meaning to the human description.

The paper's judge (section 5.4, Appendix A) is an LLM (Llama-3-70B there) answering "Yes" or "No"
to the few-shot prompt in `imagechain.eval.judge_prompt`. Here any chat backend can judge: an
OpenAI-compatible server (`openai:NAME@URL`, e.g. vLLM serving Llama-3-70B-Instruct, no key
needed), or an in-process transformers model. Temperature 0, at most 8 new tokens.

Verdict parsing (strict, `parse_verdict`):
  1. strip surrounding whitespace; take the first whitespace-separated word;
  2. remove trailing punctuation . , ! ? ; : from it;
  3. compare case-insensitively: "yes" -> Yes, "no" -> No.
  Anything else (an empty reply, "Maybe", "**Yes**", "The answer is yes", "Yesterday") is
  UNPARSEABLE: it counts as No, and the number of unparseable verdicts is reported beside SimRate.
  So "Yes", "yes.", "Yes, because ..." and "NO!" parse; "Sure" and "'Yes'" do not.

The `embedding` judge (`imagechain.eval.embedding_judge`) is a cheap offline stand-in, NOT the paper's
metric; its results say so.

Judgments go to `judgments.jsonl`, one per (judge, prediction), so a killed run resumes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NotRequired, Protocol, TypedDict

from agents.backends.chat import ChatModel, SamplingParams
from imagechain.eval.jsonl_store import JsonlStore
from imagechain.eval.judge_prompt import PROMPT_SHA256, judge_messages
from imagechain.eval.predict import PredictionRecord, prediction_id

JUDGMENT_KEY = ("judge", "prediction_id")
JUDGE_MAX_TOKENS = 8
_TRAILING_PUNCTUATION = ".,!?;:"


@dataclass(frozen=True)
class Verdict:
    similar: bool
    """True for Yes; False for No and for an unparseable reply."""
    parsed: bool
    """False when the reply was neither yes nor no (then `similar` is False)."""
    raw: str
    """The judge's reply, or for the embedding judge the similarity as text."""
    score: float | None = None
    """The embedding judge's cosine similarity; None for an LLM judge."""


class JudgmentRecord(TypedDict):
    """One line of judgments.jsonl: one judge's verdict on one prediction."""

    judge: str
    """Judge.name."""
    prediction_id: str
    variant: str
    model: str
    story_id: str
    num_scenes: int
    similar: bool
    parsed: bool
    raw: str
    score: float | None


class SimRateCell(TypedDict):
    """SimRate over a set of judgments."""

    n: int
    """Judged predictions."""
    yes: int
    unparseable: int
    simrate: float | None
    """Percent, 2 decimals; None when n is 0."""


class JudgeInfo(TypedDict):
    """What results.json says about the judge (`Judge.info()`)."""

    kind: str
    """llm, embedding, or none."""
    name: str
    paper_metric: bool
    """Whether the numbers are the paper's SimRate (an LLM Yes/No judge)."""
    note: str
    model: NotRequired[str]
    prompt: NotRequired[str]
    prompt_sha256: NotRequired[str]
    temperature: NotRequired[float]
    package: NotRequired[str]
    threshold: NotRequired[float]


class Judge(Protocol):
    name: str
    """Identifies the judge in records and tables, e.g. `llm:meta-llama/Meta-Llama-3-70B-Instruct`."""

    def info(self) -> JudgeInfo: ...

    async def judge(self, reference: str, prediction: str) -> Verdict: ...


def parse_verdict(reply: str) -> bool | None:
    """True for yes, False for no, None when unparseable (rules in the module docstring)."""
    words = reply.strip().split()
    if not words:
        return None
    word = words[0].rstrip(_TRAILING_PUNCTUATION).lower()
    return {"yes": True, "no": False}.get(word)


class LLMJudge:
    """The paper's Yes/No judge over any chat backend."""

    def __init__(self, backend: ChatModel, name: str | None = None):
        self.backend = backend
        self.name = name or f"llm:{backend.model_id}"

    def info(self) -> JudgeInfo:
        return {"kind": "llm", "name": self.name, "model": self.backend.model_id, "prompt": "ImageChain Appendix A",
                "prompt_sha256": PROMPT_SHA256, "temperature": 0, "paper_metric": True,
                "note": "SimRate as in the ImageChain paper (the paper's judge was Llama-3-70B)."}

    async def judge(self, reference: str, prediction: str) -> Verdict:
        params = SamplingParams(max_tokens=JUDGE_MAX_TOKENS, temperature=0.0)
        result = await self.backend.chat(judge_messages(reference, prediction), params=params)
        verdict = parse_verdict(result.text)
        return Verdict(similar=bool(verdict), parsed=verdict is not None, raw=result.text)


@dataclass
class JudgeSummary:
    judged: int = 0
    resumed: int = 0
    unparseable: int = 0
    judgments: dict[str, JudgmentRecord] = field(default_factory=dict)
    """prediction_id -> this judge's judgment, for every `ok` prediction passed in."""


def judgment_record(judge: Judge, prediction: PredictionRecord, verdict: Verdict) -> JudgmentRecord:
    return {"judge": judge.name, "prediction_id": prediction_id(prediction), "variant": prediction["variant"],
            "model": prediction["model"], "story_id": prediction["story_id"], "num_scenes": prediction["num_scenes"],
            "similar": verdict.similar, "parsed": verdict.parsed, "raw": verdict.raw, "score": verdict.score}


async def judge_predictions(predictions: Sequence[PredictionRecord], judge: Judge, out: Path, concurrency: int = 8,
                            progress: Callable[[int], None] | None = None) -> JudgeSummary:
    """Judge every `ok` prediction not judged yet by `judge`; records go to OUT/judgments.jsonl."""
    store = JsonlStore(out / "judgments.jsonl", JUDGMENT_KEY)
    summary = JudgeSummary()
    slots = asyncio.Semaphore(concurrency)
    done = 0

    async def one(prediction: PredictionRecord) -> None:
        nonlocal done
        key = {"judge": judge.name, "prediction_id": prediction_id(prediction)}
        if store.done(key):
            summary.resumed += 1
            summary.judgments[key["prediction_id"]] = store.get(key)
        else:
            async with slots:
                verdict = await judge.judge(prediction["reference"], prediction["text"])
            record = judgment_record(judge, prediction, verdict)
            store.append(record)
            summary.judgments[key["prediction_id"]] = record
            summary.judged += 1
            summary.unparseable += not verdict.parsed
        done += 1
        if progress:
            progress(done)

    await asyncio.gather(*(one(p) for p in predictions if p.get("status") == "ok"))
    return summary


def simrate(verdicts: Sequence[JudgmentRecord]) -> SimRateCell:
    """n, yes, unparseable and SimRate (percent, None when n is 0) over judgment records."""
    n = len(verdicts)
    yes = sum(1 for v in verdicts if v["similar"])
    return {"n": n, "yes": yes, "unparseable": sum(1 for v in verdicts if not v["parsed"]),
            "simrate": round(100.0 * yes / n, 2) if n else None}

