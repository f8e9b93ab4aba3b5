"""`trl`: the conversational vision dataset trl's SFTTrainer reads, as a datasets `imagefolder`.

    OUT/metadata.jsonl   one task per line: file_names (its images, in order), messages, kind, task_id, domain
    OUT/images/...       the images, paths relative to OUT

Each message's content is a list of parts: `{"type": "text", "text": ...}` or `{"type": "image"}`
where an image goes, the assistant turns too (`[{"type": "text", "text": "ANSWER: 2"}]`). trl's
`prepare_multimodal_messages` fills the image parts, in order, from the row's `images`. datasets'
imagefolder builder turns the `file_names` column into `images`, a list of PIL images, resolving
each path against the metadata file's folder, so the folder loads from anywhere:

    load_dataset("imagefolder", data_dir="OUT", split="train")   # columns: images, messages, kind, ...
"""

from __future__ import annotations

from pathlib import Path

from vischain.exports.conversation import Conversation, Image, Turn
from vischain.exports.jsonl import write_jsonl

DATA_FILE = "metadata.jsonl"


def record(conversation: Conversation) -> dict:
    messages = []
    for turn in conversation.turns:
        messages.append({"role": "user", "content": user_content(turn)})
        messages.append({"role": "assistant", "content": [{"type": "text", "text": turn.answer}]})
    return {"file_names": conversation.images, "messages": messages, "kind": conversation.kind,
            "task_id": conversation.task_id, "domain": conversation.domain}


def user_content(turn: Turn) -> list[dict]:
    return [{"type": "image"} if isinstance(part, Image) else {"type": "text", "text": part.text}
            for part in turn.parts]


def write(conversations: list[Conversation], out: Path, name: str) -> list[str]:
    write_jsonl(out / DATA_FILE, [record(conversation) for conversation in conversations])
    (out / "README.md").write_text(README.format(name=name, folder=out.name), encoding="utf-8")
    return [DATA_FILE, "README.md"]


README = """\
# {name}: VisChain tasks for trl

One task per row: `messages` is the whole multi-turn conversation as `vischain eval` plays it
(labelled candidate images, gold `ANSWER: <label>` replies), with `{{"type": "image"}}` parts where
each image goes; `images` holds the images in that order. Load it with datasets' imagefolder
builder, which reads `metadata.jsonl` and opens `images/` relative to this folder:

```python
from datasets import load_dataset
from transformers import AutoModelForImageTextToText, AutoProcessor
from trl import SFTConfig, SFTTrainer

dataset = load_dataset("imagefolder", data_dir="{folder}", split="train")
model_id = "Qwen/Qwen2-VL-2B-Instruct"
trainer = SFTTrainer(
    model=AutoModelForImageTextToText.from_pretrained(model_id),
    processing_class=AutoProcessor.from_pretrained(model_id),
    train_dataset=dataset,
    args=SFTConfig(output_dir="{folder}-sft", max_length=None, per_device_train_batch_size=1),
)
trainer.train()
```

`max_length=None`: a task's conversation carries every image of the task, and cutting it would cut
image tokens away from their images.
"""
