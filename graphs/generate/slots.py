"""One image slot through search, fetch, validate and paint: the work behind the graph's nodes.

A slot is one image a task needs (graphs/generate/layout.py makes them from the plan). It is a
TypedDict, so it checkpoints as JSON; each step returns a new slot. `tried` keeps a short history
(query and outcome) that the keywords agent sees next round. Candidates are stored as their JSON
record and rebuilt into `Candidate` objects only inside a step.

    open ──search/fetch/validate──► accepted
      └── rounds run out ─────────► exhausted ──paint/validate──► painted
                                                   └── every painting rejected: the task fails

A painted image goes through the same validator as a retrieved one; a rejected painting is
repainted from a revised prompt, at most `paint_rounds` times (docs/generation.md).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import asdict
from pathlib import Path
from typing import Literal, NotRequired, TypedDict

from agents.ask import AgentError
from agents.paint_prompt import write_paint_prompt
from agents.painter import template_prompt
from agents.retrieval.fetch import Kept
from agents.retrieval.search import search_images
from agents.retrieval.search.candidate import Candidate
from agents.validator import check_image
from graphs.generate.context import GenerateContext
from schemas.licences import Licence
from schemas.provenance import ProvenanceLine, painted_line

POOL = "images"  # run-relative folder every fetched or painted image lands in, named by its SHA-256
CLAIM_RETRIES = 3  # searches of one query when other workers keep winning its results
TRIED_KEPT = 12  # history lines a slot keeps; the keywords prompt shows the last 4

SlotStatus = Literal["open", "accepted", "exhausted", "painted"]


class Tried(TypedDict):
    """One search, download or verdict that gave the slot no image, shown to the keywords agent."""

    query: str
    outcome: str
    url: NotRequired[str]


class SlotImage(TypedDict):
    """An image in the run's pool: the one a slot holds, or one it fetched and has yet to validate."""

    file: str
    """Run-relative path in the pool (images/<sha256>.<ext>)."""
    sha256: str
    phash: str
    provenance: ProvenanceLine
    url: NotRequired[str]
    """Retrieved images: the candidate URL it came from."""
    title: NotRequired[str | None]


class TaskContext(TypedDict):
    """What the paint-prompt agent is told about the task a slot belongs to."""

    title: str
    step_text: str
    """The step's question (ITMR, ICIR), else what its correct image shows; the opening scene for step 0."""


class Slot(TypedDict):
    key: str
    """The image's file stem in the task folder: q1_a, s2_3, start, c1, s1_B, ..."""
    step: int
    """1-based plan step; 0 for the IOMR start image."""
    role: str
    """correct, distractor or condition."""
    description: str
    """What the image must show (the planner's words): the query seed and the validator's yardstick."""
    status: SlotStatus
    rounds: int
    """Search rounds done."""
    queries: list[str]
    tried: list[Tried]
    candidates: list[dict]
    """This round's search results, as `asdict(Candidate)`."""
    kept: list[SlotImage]
    """This round's fetched images, in candidate order, for the validator."""
    image: SlotImage | None
    """The accepted or painted image."""


def new_slot(key: str, step: int, role: str, description: str) -> Slot:
    return {"key": key, "step": step, "role": role, "description": description, "status": "open", "rounds": 0,
            "queries": [], "tried": [], "candidates": [], "kept": [], "image": None}


class SlotWork:
    def __init__(self, ctx: GenerateContext):
        self.ctx = ctx

    async def search(self, slots: list[Slot], task_id: str) -> list[Slot]:
        """Candidates for every open slot's queries, most specific query first, claimed for each slot
        in one transaction per pass.

        URLs claimed by any slot of the run are skipped (concurrent slots with similar queries would
        otherwise all fetch the same top results), this slot's earlier rounds included. A URL another
        worker claimed meanwhile is lost to it: the slots that lost one search again (what was lost is
        now known to be claimed), at most CLAIM_RETRIES times.
        """
        found: dict[int, list[Candidate]] = {}
        tried: dict[int, list[Tried]] = {}
        todo = [i for i, slot in enumerate(slots) if slot["status"] == "open"]
        for _ in range(CLAIM_RETRIES):
            picked: dict[int, list[Candidate]] = {}
            taken_here: set[str] = set()  # two slots of this task asking for one URL: the first gets it
            for i in todo:
                picked[i], lines = await self._find(slots[i], len(found.get(i, [])), taken_here)
                tried.setdefault(i, []).extend(lines)
                taken_here.update(c.url for c in picked[i])
            granted = self.ctx.claims.claim_url_batch(
                [(owner_of(task_id, slots[i]), [c.url for c in picked[i]]) for i in todo])
            lost = []
            for i, urls in zip(todo, granted):
                keep = set(urls)
                found.setdefault(i, []).extend(c for c in picked[i] if c.url in keep)
                if len(keep) < len(picked[i]):
                    lost.append(i)
            todo = lost
            if not todo:
                break
        updated = list(slots)
        for i in found:
            updated[i] = {**slots[i], "candidates": [asdict(c) for c in found[i]],
                          "tried": _trim(slots[i]["tried"] + tried[i])}
        return updated

    async def _find(self, slot: Slot, have: int, taken_here: set[str]) -> tuple[list[Candidate], list[Tried]]:
        """Unclaimed candidates for the slot's queries, enough to reach `candidates_per_slot`."""
        want = self.ctx.settings.candidates_per_slot - have
        skip = _Both(self.ctx.claims.claimed_urls(), taken_here)
        found, tried = [], []
        for query in slot["queries"]:
            if want - len(found) <= 0:
                break
            result = await search_images(query, want - len(found), self.ctx.licences, providers=self.ctx.providers,
                                         settings=self.ctx.search, skip=skip)
            fresh = [c for c in result.candidates if c.url not in skip]
            found += fresh
            if not fresh:
                tried.append({"query": query, "outcome": "; ".join(result.problems) or "no new licensed images"})
        return found, tried

    async def fetch(self, slots: list[Slot], task_id: str) -> list[Slot]:
        """Every open slot's candidates downloaded and decoded together, their images claimed in one
        transaction (of two copies of one image, the first slot's is kept), each kept in the pool."""
        todo = [i for i, slot in enumerate(slots) if slot["status"] == "open"]
        wanted = [(i, _candidate(c)) for i in todo for c in slots[i]["candidates"]]
        outcomes = await self.ctx.fetcher.fetch_for([(c, owner_of(task_id, slots[i])) for i, c in wanted], POOL)
        kept: dict[int, list[SlotImage]] = {i: [] for i in todo}
        tried: dict[int, list[Tried]] = {i: [] for i in todo}
        for (i, candidate), outcome in zip(wanted, outcomes):
            if isinstance(outcome, Kept):
                kept[i].append({"url": candidate.url, "title": candidate.title, "file": outcome.file,
                                "sha256": outcome.sha256, "phash": outcome.phash, "provenance": outcome.provenance()})
            else:
                tried[i].append({"url": candidate.url, "query": candidate.title or candidate.url,
                                 "outcome": f"not fetched: {outcome.reason}"})
        updated = list(slots)
        for i in todo:
            updated[i] = {**slots[i], "candidates": [], "kept": kept[i], "tried": _trim(slots[i]["tried"] + tried[i])}
        return updated

    async def validate(self, slot: Slot, task_seed: int) -> Slot:
        """The first kept image the validator accepts wins; then count the round."""
        image, tried = None, []
        for number, kept in enumerate(slot["kept"]):
            slot_seed = _slot_seed(task_seed, slot["key"]) + 7919 * (slot["rounds"] * 100 + number)
            verdict = await check_image(self.ctx.validator, image_path=str(self.ctx.store.root / kept["file"]),
                                        description=slot["description"], role=slot["role"],
                                        params=self.ctx.settings.judge_params(slot_seed),
                                        repair_attempts=self.ctx.settings.repair_attempts)
            if verdict.ok:
                image = {**kept, "provenance": {**kept["provenance"], "validator": verdict.as_record()}}
                break
            tried.append({"url": kept["url"], "query": kept["title"] or kept["url"],
                          "outcome": f"rejected by the validator: {verdict.reason}"})
        rounds = slot["rounds"] + 1
        if image is not None:
            status = "accepted"
        else:
            status = "open" if rounds <= self.ctx.settings.refine_rounds else "exhausted"
        return {**slot, "kept": [], "image": image, "status": status, "rounds": rounds,
                "tried": _trim(slot["tried"] + tried)}

    async def paint(self, slot: Slot, task_seed: int, task: TaskContext) -> Slot:
        """A synthetic image the validator accepts, painted from a prompt revised after each rejection.

        Each round writes a prompt (the paint-prompt agent, or the template), paints it with a seed of
        its own and asks the validator, as for a retrieved image. The accepted painting's provenance
        names generator model, seed and prompt, and carries the validator's verdict. When
        1 + paint_rounds paintings are all rejected, AgentError(stage='paint') names the slot and the
        validator's last reason, and the task fails.
        """
        settings, tried = self.ctx.settings, list(slot["tried"])
        reason = ""
        for number in range(settings.paint_rounds + 1):
            # The first painting keeps the seed a slot always had; each repaint gets its own.
            seed = _slot_seed(task_seed, slot["key"] if number == 0 else f"{slot['key']}/{number}")
            prompt = await self._paint_prompt(slot, tried, task, seed)
            painted = await self.ctx.painter.paint(prompt, seed, self.ctx.store.root / POOL)
            file = Path(painted.path).relative_to(self.ctx.store.root).as_posix()
            verdict = await check_image(self.ctx.validator, image_path=str(self.ctx.store.root / file),
                                        description=slot["description"], role=slot["role"],
                                        params=settings.judge_params(seed), repair_attempts=settings.repair_attempts)
            generator = {"model": painted.model, "seed": painted.seed, "prompt": painted.prompt}
            provenance = painted_line(file, painted.sha256, painted.phash, generator=generator,
                                      validator=verdict.as_record())
            image: SlotImage = {"file": file, "sha256": painted.sha256, "phash": painted.phash,
                                "provenance": provenance}
            if verdict.ok:
                return {**slot, "image": image, "status": "painted", "tried": _trim(tried)}
            reason = verdict.reason
            tried.append({"query": prompt, "outcome": f"painted image rejected by the validator: {reason}"})
        if settings.paint_exhausted == "keep":  # the last painting, its "no" in provenance for all to see
            return {**slot, "image": image, "status": "painted", "tried": _trim(tried)}
        raise AgentError("paint", f"slot {slot['key']}: {settings.paint_rounds + 1} painted image(s) rejected "
                                  f"by the validator, the last because: {reason}")

    async def _paint_prompt(self, slot: Slot, tried: list[Tried], task: TaskContext, seed: int) -> str:
        settings = self.ctx.settings
        if settings.paint_prompt == "template":
            return template_prompt(slot["description"])
        # The validator's reasons, for retrieved photos and earlier paintings alike: what to avoid.
        rejections = [t["outcome"] for t in tried if "rejected by the validator" in t["outcome"]]
        return await write_paint_prompt(self.ctx.keywords, description=slot["description"], role=slot["role"],
                                        task_title=task["title"], step_text=task["step_text"],
                                        rejections=rejections, params=settings.paint_prompt_params(seed),
                                        max_chars=settings.paint_prompt_chars,
                                        repair_attempts=settings.repair_attempts)


class _Both(Collection[str]):
    """Two collections of URLs read as one, without copying either (the run's claims grow large)."""

    def __init__(self, first: Collection[str], second: Collection[str]):
        self.first, self.second = first, second

    def __contains__(self, url: object) -> bool:
        return url in self.first or url in self.second

    def __iter__(self):
        yield from self.first
        yield from self.second

    def __len__(self) -> int:
        return len(self.first) + len(self.second)


def owner_of(task_id: str, slot: Slot) -> str:
    """The name a slot's claims go under in the run's claims."""
    return f"{task_id}/{slot['key']}"


def _slot_seed(task_seed: int, key: str) -> int:
    return (task_seed * 1009 + sum(map(ord, key))) % 2**31


def _candidate(data: dict) -> Candidate:
    licence = data.get("licence")
    return Candidate(**{**data, "licence": Licence(**licence) if licence else None})


def _trim(tried: list[Tried]) -> list[Tried]:
    return tried[-TRIED_KEPT:]
