"""`llamafactory`: LLaMA-Factory's sharegpt layout with images, and its `dataset_info.json` entry.

    OUT/vischain.jsonl      one task per line: messages (strings with one `<image>` per image), images
    OUT/dataset_info.json   the entry that names the file, its formatting and its columns
    OUT/images/...          the images; LLaMA-Factory opens them relative to its media_dir (= dataset_dir)

A user message is the turn's parts on their own lines, `<image>` where each image goes; LLaMA-Factory's
multimodal plugin replaces each `<image>` with the model's image tokens, in order, and refuses a row
whose markers and images do not match.
"""

from __future__ import annotations

import json
from pathlib import Path

from vischain.exports.conversation import Conversation
from vischain.exports.jsonl import write_jsonl

DATA_FILE = "vischain.jsonl"
IMAGE_MARKER = "<image>"


def record(conversation: Conversation) -> dict:
    messages = []
    for turn in conversation.turns:
        messages.append({"role": "user", "content": turn.text(IMAGE_MARKER)})
        messages.append({"role": "assistant", "content": turn.answer})
    return {"messages": messages, "images": conversation.images, "kind": conversation.kind,
            "task_id": conversation.task_id, "domain": conversation.domain}


def dataset_info(name: str) -> dict:
    """The dataset_info.json entry (LLaMA-Factory's data/README.md, "Sharegpt Format", OpenAI-style tags)."""
    return {name: {
        "file_name": DATA_FILE,
        "formatting": "sharegpt",
        "columns": {"messages": "messages", "images": "images"},
        "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user", "assistant_tag": "assistant"},
    }}


def write(conversations: list[Conversation], out: Path, name: str) -> list[str]:
    write_jsonl(out / DATA_FILE, [record(conversation) for conversation in conversations])
    (out / "dataset_info.json").write_text(json.dumps(dataset_info(name), indent=2) + "\n", encoding="utf-8")
    (out / "README.md").write_text(README.format(name=name, folder=out.name), encoding="utf-8")
    return [DATA_FILE, "dataset_info.json", "README.md"]


README = """\
# {name}: VisChain tasks for LLaMA-Factory

`vischain.jsonl` holds one task per line in LLaMA-Factory's sharegpt format with images: the whole
multi-turn conversation as `vischain eval` plays it (labelled candidate images, gold
`ANSWER: <label>` replies), one `<image>` per image in the user turns, and `images` in that order,
relative to this folder. `dataset_info.json` registers it as `{name}`. Train with this folder as the
dataset folder (LLaMA-Factory then opens the images relative to it):

```bash
llamafactory-cli train --stage sft --do_train --finetuning_type lora \\
    --model_name_or_path Qwen/Qwen2-VL-2B-Instruct --template qwen2_vl \\
    --dataset_dir {folder} --dataset {name} --cutoff_len 8192 \\
    --output_dir {folder}-lora --per_device_train_batch_size 1
```

`--cutoff_len` must hold a whole task: a conversation cut short loses image tokens and is refused.
"""
