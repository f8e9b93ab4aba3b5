"""Synonym graphs for cue F1, in a JSON format of ours, and the Mementos synonym walk.

Mementos ships its per-domain graphs as Python pickles; loading a pickle runs code, so we never do.
Our format holds the same information as plain JSON:

    {"format": "imagechain-synonym-graph", "version": 1, "domain": "robo", "kind": "behaviour",
     "graph": {"grab":  {"": ["pick up", "grasp"]},
               "put":   {"down": ["place"]}}}

`graph[w][""]` lists the reference words that a predicted word `w` may stand for; `graph[w1][w2]`
lists those that the consecutive predicted pair (w1, w2) may stand for. Keys are whole keyword
phrases as the extractor writes them ("pick up" is one key, not two). `kind` is "behaviour"
(single and pair lookups) or "object" (single lookups only), as in Mementos.

The walk (`map_to_reference`) is the Mementos procedure: go through the predicted list left to
right while unmatched reference words remain; for each predicted word try the remaining
reference words in order, first as a single-word synonym, then (behaviours) as a pair with the
next predicted word; a match emits the reference word, consumes it and skips the matched
prediction(s); no match emits the predicted word unchanged. An identical word is not a graph match
(it is left in place and counts through the set intersection later). When the reference words run
out, the rest of the predictions are appended:
- default: each leftover word, so each distinct one is a false positive;
- `compat=True`: ONE `Leftover` placeholder for all of them, as the original notebook does (it
  appends a generator object, which equals nothing, so the whole tail is exactly one false positive).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from schemas.errors import DataError, read_json

FORMAT = "imagechain-synonym-graph"
KINDS = ("behaviour", "object")
EXAMPLES_DIR = Path(__file__).parents[1] / "synonyms"


class Leftover:
    """The compat-mode stand-in for every prediction left after the references ran out.

    Compared by identity, like the generator object of the original notebook: it never equals a
    reference word, so it is one false positive however many words it holds."""

    def __init__(self, words: list[str]):
        self.words = list(words)

    def __repr__(self) -> str:
        return f"Leftover({self.words!r})"


@dataclass
class SynonymGraph:
    graph: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    kind: str = "behaviour"
    domain: str = ""

    def is_synonym(self, words: list[str], goal: str) -> bool:
        """Whether `words` (one word, or a consecutive pair) may stand for the reference word `goal`."""
        if len(words) == 1:
            return goal in self.graph.get(words[0], {}).get("", [])
        return goal in self.graph.get(words[0], {}).get(words[1], [])

    def add(self, words: list[str] | str, goal: str) -> None:
        """Record that `words` (a word or a pair) may stand for `goal`."""
        words = [words] if isinstance(words, str) else list(words)
        first, second = words[0], words[1] if len(words) > 1 else ""
        targets = self.graph.setdefault(first, {}).setdefault(second, [])
        if goal not in targets:
            targets.append(goal)

    def to_json(self) -> dict:
        return {"format": FORMAT, "version": 1, "domain": self.domain, "kind": self.kind, "graph": self.graph}

    @classmethod
    def from_json(cls, obj, where: str = "<graph>") -> "SynonymGraph":
        if not isinstance(obj, dict) or obj.get("format") != FORMAT or obj.get("version") != 1:
            raise DataError(f"{where}: not a synonym graph (expected format {FORMAT!r}, version 1)")
        kind = obj.get("kind")
        if kind not in KINDS:
            raise DataError(f"{where}: kind {kind!r} is not one of {', '.join(KINDS)}")
        graph = obj.get("graph")
        if not isinstance(graph, dict):
            raise DataError(f"{where}: graph must be an object of objects of lists")
        for word, nexts in graph.items():
            if not isinstance(nexts, dict) or not all(
                    isinstance(goals, list) and all(isinstance(g, str) for g in goals) for goals in nexts.values()):
                raise DataError(f"{where}: graph[{word!r}] must map next words to lists of strings")
        return cls(graph=graph, kind=kind, domain=str(obj.get("domain", "")))

    @classmethod
    def load(cls, path: str | Path) -> "SynonymGraph":
        return cls.from_json(read_json(path, "synonym graph"), str(path))

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_json(), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def map_to_reference(reference: list[str], prediction: list[str], graph: SynonymGraph,
                     compat: bool = False) -> list:
    """The predicted words with synonyms replaced by the reference words they stand for (see module doc)."""
    remaining = list(reference)
    pairs = graph.kind == "behaviour"
    result: list = []
    i = 0
    while i < len(prediction) and remaining:
        matched = False
        for j, goal in enumerate(remaining):
            if graph.is_synonym([prediction[i]], goal):
                step = 1
            elif pairs and i + 1 < len(prediction) and graph.is_synonym(prediction[i:i + 2], goal):
                step = 2
            else:
                continue
            result.append(goal)
            remaining.pop(j)
            i += step
            matched = True
            break
        if not matched:
            result.append(prediction[i])
            i += 1
    if i < len(prediction):
        result += [Leftover(prediction[i:])] if compat else prediction[i:]
    return result


def example_graph(name: str) -> SynonymGraph:
    """A graph shipped under imagechain/synonyms/, e.g. `example-robo-behaviour`."""
    return SynonymGraph.load(EXAMPLES_DIR / f"{name}.json")
