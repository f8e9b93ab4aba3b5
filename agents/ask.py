"""One schema-checked model call with repair, the step every agent ends with.

The reply is parsed and validated against the schema; if it fails, the model sees its own reply
and the exact validation error and tries again, a bounded number of times. Then the agent gives up
with an `AgentError` naming the stage, which the graph records in failures.jsonl.
"""

from __future__ import annotations

from agents.backends.chat import BackendError, ChatModel, SamplingParams, model_where
from agents.backends.structured import NotJSON, parse_json_reply

NOT_JSON_HINT = "the server may not honour response_format (structured output)"
"""Said when every reply to a JSON-schema request was not JSON at all: some OpenAI-compatible
servers drop `response_format` silently, and the model then answers in prose."""


class AgentError(RuntimeError):
    """An agent could not produce valid output; `stage` says which step of the pipeline."""

    def __init__(self, stage: str, reason: str):
        super().__init__(f"{stage}: {reason}")
        self.stage = stage
        self.reason = reason


async def ask_json(model: ChatModel, messages: list[dict], schema: dict, params: SamplingParams, *,
                   stage: str, repair_attempts: int = 2) -> dict:
    """The parsed, schema-valid reply; AgentError after 1 + repair_attempts tries or a failed call."""
    conversation = list(messages)
    problem, never_json = "no reply", True
    for attempt in range(1 + repair_attempts):
        try:
            reply = await model.chat(conversation, schema=schema, params=params)
        except BackendError as err:
            raise AgentError(stage, f"model call failed: {err}") from None
        try:
            return parse_json_reply(reply.text, schema)
        except ValueError as err:
            problem, never_json = str(err), never_json and isinstance(err, NotJSON)
        conversation = [*messages,
                        {"role": "assistant", "content": reply.text[:2000]},
                        {"role": "user", "content": f"That reply is invalid: {problem}. "
                                                    "Answer again with JSON that matches the schema exactly."}]
    if never_json:
        excerpt = " ".join(reply.text.split())[:80]
        raise AgentError(stage, f"{model_where(model)}: no reply in {1 + repair_attempts} tries was JSON although a "
                                f"JSON schema was sent; {NOT_JSON_HINT}; last reply: {excerpt!r}")
    raise AgentError(stage, f"invalid output after {1 + repair_attempts} tries: {problem}")
