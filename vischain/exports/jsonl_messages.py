"""`jsonl-messages`: the conversations in the OpenAI chat shape vischain's own backends take, one task a line.

    OUT/conversations.jsonl   kind, task_id, domain, messages, turns (labels, truth, example per user turn)
    OUT/images/...

Content parts are `{"type": "text", "text": ...}` and `{"type": "image", "path": "images/..."}` (a
path relative to OUT), the assistant turns the gold `ANSWER: <label>`: the format for a tool this
project has no dedicated export for.
"""

from __future__ import annotations

from pathlib import Path

from vischain.exports.conversation import Conversation, Image
from vischain.exports.jsonl import write_jsonl

DATA_FILE = "conversations.jsonl"


def record(conversation: Conversation) -> dict:
    messages = []
    for turn in conversation.turns:
        content = [{"type": "image", "path": part.path} if isinstance(part, Image)
                   else {"type": "text", "text": part.text} for part in turn.parts]
        messages.append({"role": "user", "content": content})
        messages.append({"role": "assistant", "content": [{"type": "text", "text": turn.answer}]})
    turns = [{"labels": list(turn.labels), "truth": turn.truth, "example": turn.example} for turn in conversation.turns]
    return {"kind": conversation.kind, "task_id": conversation.task_id, "domain": conversation.domain,
            "messages": messages, "turns": turns}


def write(conversations: list[Conversation], out: Path, name: str) -> list[str]:
    write_jsonl(out / DATA_FILE, [record(conversation) for conversation in conversations])
    (out / "README.md").write_text(README.format(name=name, folder=out.name), encoding="utf-8")
    return [DATA_FILE, "README.md"]


README = """\
# {name}: VisChain tasks as chat messages

`conversations.jsonl`: one task per line, `messages` in the OpenAI chat shape with
`{{"type": "image", "path": "images/..."}}` parts (paths relative to this folder) and the gold
`ANSWER: <label>` as each assistant turn; `turns` gives each user turn's labels, truth and whether it
is a solved example (ICIR). Read it with any JSON Lines reader, for instance:

```python
from datasets import load_dataset

tasks = load_dataset("json", data_files="{folder}/conversations.jsonl", split="train")
```
"""
