"""Cue F1: five worked examples computed by hand in both modes, JSON synonym graphs, LLM extraction."""

import asyncio
import json
from fractions import Fraction as F

import pytest

from agents.backends.openai_client import OpenAIBackend
from imagechain.eval.cue_f1 import CueGraphs, extract_all, macro, sample_scores, score_record, set_scores
from imagechain.eval.synonyms import EXAMPLES_DIR, Leftover, SynonymGraph, example_graph, map_to_reference
from schemas.errors import DataError
from tests.servers import FaultyEndpoint, completion


def behaviours() -> SynonymGraph:
    graph = SynonymGraph(kind="behaviour")
    graph.add("grab", "pick up")            # a predicted word standing for a reference word
    graph.add(["put", "down"], "place")     # a predicted pair standing for one
    graph.add("walk", "move")
    graph.add(["coffee", "mug"], "cup")
    graph.add("mug", "cup")
    return graph


def objects() -> SynonymGraph:
    return SynonymGraph(graph=behaviours().graph, kind="object")  # same entries, single lookups only


# (reference, prediction, graph, mapped default, mapped compat (Leftover as "*"), F1 default, F1 compat)
EXAMPLES = [
    # 1. a single-word synonym; "open" matches exactly (set intersection), "place" is missed.
    (["pick up", "place", "open"], ["grab", "open"], behaviours,
     ["pick up", "open"], ["pick up", "open"], F(4, 5), F(4, 5)),
    # 2. a pair synonym consumes two predictions; "jump" is left over after the only reference matched.
    (["place"], ["put", "down", "jump"], behaviours,
     ["place", "jump"], ["place", "*"], F(2, 3), F(2, 3)),
    # 3. the quirk: three leftovers are three false positives, or one in compat mode.
    (["pick up"], ["grab", "run", "jump", "swim"], behaviours,
     ["pick up", "run", "jump", "swim"], ["pick up", "*"], F(2, 5), F(2, 3)),
    # 4. exact matches never consume a reference, so nothing is left over; "walk" is no synonym of "walk".
    (["open", "walk"], ["open", "open", "move", "walk"], behaviours,
     ["open", "open", "move", "walk"], ["open", "open", "move", "walk"], F(4, 5), F(4, 5)),
    # 5. objects use single lookups: "coffee mug" is not read as a pair; "mug" -> "cup" ends the references.
    (["cup"], ["coffee", "mug", "plate", "fork"], objects,
     ["coffee", "cup", "plate", "fork"], ["coffee", "cup", "*"], F(2, 5), F(1, 2)),
]


def _shown(mapped):
    return ["*" if isinstance(m, Leftover) else m for m in mapped]


@pytest.mark.parametrize("example", EXAMPLES, ids=[f"example{i + 1}" for i in range(len(EXAMPLES))])
def test_worked_example_in_both_modes(example):
    reference, prediction, graph, mapped, mapped_compat, f1, f1_compat = example
    assert map_to_reference(reference, prediction, graph()) == mapped
    assert _shown(map_to_reference(reference, prediction, graph(), compat=True)) == mapped_compat
    assert sample_scores(reference, prediction, graph()).f1 == pytest.approx(float(f1))
    assert sample_scores(reference, prediction, graph(), compat=True).f1 == pytest.approx(float(f1_compat))


def test_example_counts_by_hand():
    fixed = sample_scores(["pick up"], ["grab", "run", "jump", "swim"], behaviours())
    compat = sample_scores(["pick up"], ["grab", "run", "jump", "swim"], behaviours(), compat=True)
    assert (fixed.tp, fixed.fp, fixed.fn, fixed.precision, fixed.recall) == (1, 3, 0, 0.25, 1.0)
    assert (compat.tp, compat.fp, compat.fn, compat.precision, compat.recall) == (1, 1, 0, 0.5, 1.0)
    # Behaviours read "coffee mug" as a pair, unlike objects (example 5).
    assert map_to_reference(["cup"], ["coffee", "mug", "plate"], behaviours()) == ["cup", "plate"]


def test_macro_average_over_the_five_examples():
    for compat, column in ((False, 5), (True, 6)):
        scores = [sample_scores(r, p, g(), compat) for r, p, g, *_ in EXAMPLES]
        expected = sum(example[column] for example in EXAMPLES) / 5        # mean of per-sample F1
        assert macro(scores)["f1"] == round(100 * float(expected), 2)
        assert macro(scores)["n"] == 5
    assert macro([]) == {"n": 0, "precision": None, "recall": None, "f1": None}


def test_zero_denominators_score_zero():
    assert set_scores([], []).f1 == 0.0 and set_scores(["a"], []).recall == 0.0
    assert set_scores([], ["a"]).precision == 0.0


def test_graph_json_round_trip_and_validation(tmp_path):
    graph = behaviours()
    graph.save(tmp_path / "g.json")
    assert SynonymGraph.load(tmp_path / "g.json").graph == graph.graph
    (tmp_path / "bad.json").write_text(json.dumps({"format": "imagechain-synonym-graph", "version": 1,
                                                   "kind": "object", "graph": {"mug": ["cup"]}}))
    with pytest.raises(DataError, match="bad.json"):
        SynonymGraph.load(tmp_path / "bad.json")
    with pytest.raises(DataError, match="not found"):
        SynonymGraph.load(tmp_path / "missing.json")
    assert sorted(p.name for p in EXAMPLES_DIR.glob("*.json")) == ["example-robo-behaviour.json",
                                                                   "example-robo-object.json"]
    robo = example_graph("example-robo-behaviour")
    assert robo.kind == "behaviour" and robo.is_synonym(["put", "down"], "place")
    assert example_graph("example-robo-object").is_synonym(["gripper"], "robot arm")


def test_llm_extraction_with_structured_output(tmp_path):
    replies = {"p1": json.dumps({"reference_objects": ["Cup", "table"], "reference_behaviours": ["pick up"],
                                 "prediction_objects": ["mug"], "prediction_behaviours": ["grab", "  run "]}),
               "p2": "Object list 1: [cup]"}                        # not JSON: a failed extraction
    requests = []

    def answer(body):
        requests.append(body)
        return completion(replies[body["messages"][0]["content"][0]["text"].split("PREDICTION: ")[1].strip()])

    predictions = [{"story_id": s, "variant": "ImageChain", "model": "m", "prompt_hash": "h", "params": {},
                    "num_scenes": 2, "reference": "The robot picks up a cup.", "text": s, "status": "ok"}
                   for s in ("p1", "p2")]
    with FaultyEndpoint(answer) as server:
        async def run():
            backend = OpenAIBackend("extractor", server.base_url)
            try:
                return await extract_all(predictions, backend, tmp_path)
            finally:
                await backend.aclose()
        found = asyncio.run(run())
    assert requests[0]["response_format"]["type"] == "json_schema" and requests[0]["temperature"] == 0
    records = list(found.values())
    good = next(r for r in records if r["story_id"] == "p1")
    assert good["lists"]["reference_objects"] == ["cup", "table"] and good["lists"]["prediction_behaviours"] == [
        "grab", "run"]
    failed = next(r for r in records if r["story_id"] == "p2")
    assert failed["lists"] is None and score_record(failed, CueGraphs(behaviours(), objects()), False) is None
    scores = score_record(good, CueGraphs(behaviours(), objects()), compat=False)
    assert (scores["behaviour"].tp, scores["behaviour"].fp) == (1, 1)      # grab -> pick up; run is extra
    assert (scores["object"].tp, scores["object"].fn) == (1, 1)            # mug -> cup; table missed
    assert len((tmp_path / "keywords.jsonl").read_text().splitlines()) == 2
