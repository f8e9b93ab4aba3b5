"""Verify and eval: models answer every task with the benchmark protocol, then scores, then (verify
only) the priority list. Plain function calls, each returning what it made:

    result = await run_verify(root, out, tasks, specs, settings, rank=True)
    result.scores_file, result.priority_file, result.new_answers, result.model_calls

Everything goes to the output folder:

    OUT/answers.jsonl   one line per question per model, appended (fsynced) as answers come
    OUT/calls.sqlite    the model-call cache: a re-run costs no model calls
    OUT/labels/         labelled candidate images, content-addressed
    OUT/scores.json     CA / TC / format errors per model, kind and domain
    OUT/priority.jsonl  tasks ranked for human review (rank only)

A killed run resumes: a (model, task) whose questions are all in answers.jsonl is not asked again,
and a half-answered multi-turn task replays its earlier turns from the call cache. There is no
graph or checkpointer here: answers.jsonl is the checkpoint, and scoring is cheap to redo.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from agents.backends.cache import CachedChatModel, CallCache
from agents.backends.chat import ChatModel, SamplingParams
from agents.backends.factory import ModelSpec, open_backend
from agents.protocol.labels import LABEL_STYLE
from agents.protocol.metrics import Bootstrap, score_answers
from agents.protocol.priority import rank_tasks
from agents.protocol.prompts import prompt_hash
from agents.protocol.turns import converse, task_script
from schemas.durable_files import append_jsonl, cut_torn_tail, write_atomically
from schemas.schema_check import require
from schemas.task import TaskItem


@dataclass
class EvalModel:
    """A model under evaluation, opened."""

    name: str
    """Its name in answers.jsonl, scores and the priority list."""
    client: ChatModel
    """The backend behind the call cache."""
    weight: float = 1.0
    """The profile's trust in it; multiplies its leave-one-task-out accuracy in the priority list."""


@dataclass(frozen=True)
class EvalSettings:
    """How the protocol is played and scored."""

    history: str = "model"
    """What later turns see: the model's own replies (model), the truth (gold), or stop_on_error."""
    icir_text: str = "none"
    """ICIR tasks without words (none, the paper's reading) or with their task and step texts (full)."""
    concurrency: int = 8
    """(model, task) conversations in flight; the turns inside one task are sequential."""
    max_tokens: int = 256
    """Reply budget per question; enough for a short reason before the ANSWER line."""
    bootstrap: Bootstrap = field(default_factory=Bootstrap)
    """Resamples and seed of the 95% intervals."""


@dataclass(frozen=True)
class VerifyResult:
    new_answers: int
    """Answer lines appended by this run (0 when everything was answered before)."""
    model_calls: int
    """Calls that reached a model (cache hits excluded)."""
    scores_file: Path
    priority_file: Path | None
    """None unless ranked (verify)."""


def model_name(spec: ModelSpec) -> str:
    return spec.model if spec.backend == "transformers" else f"{spec.backend}:{spec.model}"


def open_models(specs: list[tuple[ModelSpec, float]], cache: CallCache) -> list[EvalModel]:
    """Open each backend behind the shared call cache; a name given twice is an error."""
    names = [model_name(spec) for spec, _ in specs]
    for name in names:
        if names.count(name) > 1:
            raise ValueError(f"--model: {name} is named twice")
    return [EvalModel(name, CachedChatModel(open_backend(spec), cache), weight)
            for name, (spec, weight) in zip(names, specs)]


# ---- answers.jsonl -----------------------------------------------------------------------------

class AnswerLog:
    """answers.jsonl: read once at start, then appended one fsynced line per answer."""

    def __init__(self, path: Path):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        cut_torn_tail(path)
        self._lines = [json.loads(s) for s in path.read_text().splitlines() if s.strip()] if path.exists() else []
        self._keys = {self.key(line) for line in self._lines}
        self._lock = threading.Lock()

    @staticmethod
    def key(line: dict) -> tuple:
        return (line["model"], line["kind"], line["task_id"], line["question"], line["prompt_hash"], line["history"],
                icir_text_of(line))

    def has(self, line: dict) -> bool:
        return self.key(line) in self._keys

    def append(self, line: dict) -> None:
        with self._lock:
            append_jsonl(self.path, [line], ensure_ascii=False)
            self._lines.append(line)
            self._keys.add(self.key(line))

    def select(self, models: list[str], tasks: list[TaskItem], history: str, icir_text: str) -> list[dict]:
        """The lines of these models and tasks under the current prompts, history and ICIR text settings."""
        wanted_tasks, wanted_models, digest = {(t.kind, t.task_id) for t in tasks}, set(models), prompt_hash()
        return [line for line in self._lines if line["model"] in wanted_models and line["history"] == history
                and icir_text_of(line) == icir_text and line["prompt_hash"] == digest
                and (line["kind"], line["task_id"]) in wanted_tasks]


def icir_text_of(line: dict) -> str:
    """The ICIR text setting an answer was made under; lines from before the setting existed showed the words."""
    return line.get("icir_text", "full")


async def answer_task(model: EvalModel, item: TaskItem, settings: EvalSettings, log: AnswerLog,
                      labels_dir: Path) -> int:
    """Play one task against one model; append the answers the log lacks. Returns lines appended."""
    script = task_script(item, settings.icir_text)
    # Every kind's lines carry icir_text, so one setting's scores never mix in the other's answers;
    # ITMR and IOMR conversations are the same under both, so re-asking them costs cache hits only.
    base = {"task_id": item.task_id, "kind": item.kind, "domain": item.domain, "model": model.name,
            "prompt_hash": prompt_hash(), "history": settings.history, "icir_text": settings.icir_text}
    if all(log.has({**base, "question": q.number}) for q in script.questions):
        return 0
    appended = 0
    params = SamplingParams(max_tokens=settings.max_tokens, temperature=0.0)
    async for answer in converse(model.client, script, labels_dir=labels_dir, history=settings.history, params=params):
        line = {**base, "question": answer.question, "reply": answer.reply, "label": answer.label,
                "truth": answer.truth, "correct": answer.correct, "format_error": answer.format_error,
                "skipped": answer.skipped}
        if not log.has(line):
            await asyncio.to_thread(log.append, line)  # fsync off the event loop
            appended += 1
    return appended


async def answer_all(tasks: list[TaskItem], models: list[EvalModel], settings: EvalSettings, log: AnswerLog,
                     labels_dir: Path, on_done: Callable[[], None] = lambda: None) -> int:
    """Every model over every task, `settings.concurrency` conversations at a time; `on_done` after each
    (model, task) (a progress bar's advance)."""
    slots = asyncio.Semaphore(settings.concurrency)

    async def one(model: EvalModel, item: TaskItem) -> int:
        async with slots:
            appended = await answer_task(model, item, settings, log, labels_dir)
        on_done()
        return appended

    try:
        async with asyncio.TaskGroup() as group:  # the first failure cancels the rest; answers so far are kept
            jobs = [group.create_task(one(model, item)) for model in models for item in tasks]
    except BaseExceptionGroup as failures:
        first = failures.exceptions[0]
        while isinstance(first, BaseExceptionGroup):
            first = first.exceptions[0]
        raise first from None  # one error, the way callers report it, not a group
    return sum(job.result() for job in jobs)


# ---- scores and priority ------------------------------------------------------------------------

def write_scores(out: Path, root: Path, lines: list[dict], models: list[EvalModel], settings: EvalSettings) -> Path:
    scores = {"path": str(root), "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "prompt_hash": prompt_hash(), "history": settings.history, "icir_text": settings.icir_text,
              "max_tokens": settings.max_tokens,
              "label_style": LABEL_STYLE, "bootstrap": asdict(settings.bootstrap),
              "models": {m.name: {"weight": m.weight} for m in models},
              "scores": score_answers(lines, settings.bootstrap)}
    return write_atomically(out / "scores.json", json.dumps(scores, indent=2, ensure_ascii=False) + "\n")


def write_priority(out: Path, root: Path, lines: list[dict], tasks: list[TaskItem], models: list[EvalModel]) -> Path:
    priority = rank_tasks(lines, tasks, {m.name: m.weight for m in models}, root)
    for entry in priority:
        require("priority", entry, str(out / "priority.jsonl"))
    return write_atomically(out / "priority.jsonl", "".join(json.dumps(e, ensure_ascii=False) + "\n" for e in priority))


async def run_verify(root: Path, out: Path, tasks: list[TaskItem], specs: list[tuple[ModelSpec, float]],
                     settings: EvalSettings, rank: bool, on_done: Callable[[], None] = lambda: None) -> VerifyResult:
    """Open the models, answer, score, and rank when asked; the models are closed whatever happens.
    `on_done` is called after each (model, task) is answered."""
    cache = CallCache(out / "calls.sqlite")
    models: list[EvalModel] = []
    try:
        models = open_models(specs, cache)
        log = AnswerLog(out / "answers.jsonl")
        new_answers = await answer_all(tasks, models, settings, log, out / "labels", on_done)
        lines = log.select([m.name for m in models], tasks, settings.history, settings.icir_text)
        scores_file = write_scores(out, root, lines, models, settings)
        priority_file = write_priority(out, root, lines, tasks, models) if rank else None
        return VerifyResult(new_answers, sum(m.client.calls for m in models), scores_file, priority_file)
    finally:
        for model in models:
            await model.client.aclose()
        cache.close()
