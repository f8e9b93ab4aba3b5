"""The repair loop every agent ends with, against a local OpenAI-compatible server that replies from a script."""

from __future__ import annotations

import asyncio
import json

import pytest

from agents.ask import AgentError, ask_json
from agents.backends.chat import SamplingParams
from agents.backends.openai_client import OpenAIBackend, RetryPolicy
from tests.servers import FaultyEndpoint, completion

VERDICT = {"type": "object", "additionalProperties": False, "required": ["verdict"],
           "properties": {"verdict": {"enum": ["yes", "no"]}}}
MESSAGES = [{"role": "user", "content": "Is it a gear?"}]


def scripted(replies: list[str]) -> tuple[FaultyEndpoint, list[dict]]:
    bodies: list[dict] = []

    def answer(body: dict) -> dict:
        bodies.append(body)
        return completion(replies[min(len(bodies), len(replies)) - 1])
    return FaultyEndpoint(answer), bodies


def text(message: dict) -> str:
    content = message["content"]
    return content if isinstance(content, str) else "".join(p.get("text", "") for p in content)


def ask(url: str, repair_attempts: int) -> dict:
    async def run():
        model = OpenAIBackend("scripted", url, retry=RetryPolicy(attempts=1, timeout=5))
        try:
            return await ask_json(model, MESSAGES, VERDICT, SamplingParams(max_tokens=16), stage="validate",
                                  repair_attempts=repair_attempts)
        finally:
            await model.aclose()
    return asyncio.run(run())


def test_the_model_sees_its_bad_reply_and_the_exact_error_then_answers_right():
    endpoint, bodies = scripted(["not json at all", json.dumps({"verdict": "maybe"}), json.dumps({"verdict": "yes"})])
    with endpoint:
        assert ask(endpoint.base_url, repair_attempts=2) == {"verdict": "yes"}
    assert len(bodies) == 3
    second, third = ([text(m) for m in body["messages"]] for body in bodies[1:])
    assert second[0] == "Is it a gear?" and second[1] == "not json at all"
    assert second[2].startswith("That reply is invalid") and "JSON" in second[2]
    assert third[1] == '{"verdict": "maybe"}' and "'maybe' is not one of" in third[2]


def test_after_the_last_repair_the_agent_gives_up_naming_its_stage_and_the_problem():
    endpoint, bodies = scripted(["nope", json.dumps({"verdict": "maybe"})])
    with endpoint, pytest.raises(AgentError) as raised:
        ask(endpoint.base_url, repair_attempts=1)
    assert raised.value.stage == "validate" and "invalid output after 2 tries" in raised.value.reason
    assert "'maybe' is not one of" in raised.value.reason and len(bodies) == 2


def test_a_server_that_ignores_structured_output_is_named_with_a_hint_and_an_excerpt():
    endpoint, _ = scripted(["Sure! The image shows a gear.", "Yes, it is a gear."])
    with endpoint, pytest.raises(AgentError) as raised:
        ask(endpoint.base_url, repair_attempts=1)
    reason = raised.value.reason
    assert f"openai model scripted at {endpoint.base_url}" in reason
    assert "may not honour response_format" in reason and "'Yes, it is a gear.'" in reason
