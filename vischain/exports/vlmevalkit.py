"""`vlmevalkit-mt`: a multi-turn TSV for VLMEvalKit, with the dataset class that reads and scores it.

    OUT/<NAME>.tsv              one task per row, the columns ImageMTDataset reads (below) plus ours
    OUT/vischain_vlmevalkit.py  `VisChainMT(ImageMTDataset)`: loads the TSV, scores CA/TC; run it to evaluate
    OUT/README.md

VLMEvalKit reads an unregistered TSV as a single-turn custom dataset, so a multi-turn one needs a
class of type MT; the file above is that class, and running it registers it and starts VLMEvalKit's
run.py. ImageMTDataset.build_prompt reads a row as:

    question    a list of user turns (Python literal), each split on `<ImageHere>`, images in order
    answer      a list of the same length: the gold replies (`ANSWER: <label>`)
    image       the images' base64 bytes, a list; `image_path` the names VLMEvalKit saves them under

and VLMEvalKit's chat_mt plays the turns with the model's own replies as history (`vischain eval
--history model`). It cannot show a solved example as an assistant turn, so ICIR's examples are in
the first question's text, each followed by its answer line. Our columns: kind, task_id, domain,
labels (a JSON list per turn), truth (the gold label per turn).
"""

from __future__ import annotations

import base64
import csv
import hashlib
import json
from importlib import resources
from pathlib import Path

from vischain.exports.conversation import Conversation

IMAGE_MARKER = "<ImageHere>"
CLASS_FILE = "vischain_vlmevalkit.py"
COLUMNS = ["index", "question", "answer", "image", "image_path", "kind", "task_id", "domain", "labels", "truth"]


def row(index: int, conversation: Conversation, root: Path) -> dict:
    played = conversation.inline_examples()
    images = [(root / path).read_bytes() for path in played.images]
    suffixes = [Path(path).suffix.lower() for path in played.images]
    return {
        "index": index,
        # VLMEvalKit reads list cells with Python's literal syntax (toliststr); a JSON list of strings is one.
        "question": json.dumps([turn.text(IMAGE_MARKER) for turn in played.turns], ensure_ascii=False),
        "answer": json.dumps([turn.answer for turn in played.turns], ensure_ascii=False),
        "image": json.dumps([base64.b64encode(data).decode("ascii") for data in images]),
        # Named by content: VLMEvalKit saves every row's images into one folder per dataset and
        # keeps a file that is already there, so a name must never stand for two different images.
        "image_path": json.dumps([hashlib.sha256(data).hexdigest()[:32] + suffix
                                  for data, suffix in zip(images, suffixes)]),
        "kind": played.kind, "task_id": played.task_id, "domain": played.domain,
        "labels": json.dumps([list(turn.labels) for turn in played.turns]),
        "truth": json.dumps([turn.truth for turn in played.turns]),
    }


def write_tsv(path: Path, rows: list[dict]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS, delimiter="\t", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def write(conversations: list[Conversation], out: Path, name: str, images_root: Path) -> list[str]:
    """`images_root`: where the conversations' images are (they go into the TSV, not into `out`)."""
    tsv = f"{name}.tsv"
    write_tsv(out / tsv, [row(index, conversation, images_root) for index, conversation in enumerate(conversations)])
    source = resources.files("vischain.exports.assets").joinpath(CLASS_FILE).read_text(encoding="utf-8")
    (out / CLASS_FILE).write_text(source, encoding="utf-8")
    (out / "README.md").write_text(README.format(name=name, folder=out.name, tsv=tsv), encoding="utf-8")
    return [tsv, CLASS_FILE, "README.md"]


README = """\
# {name}: VisChain tasks for VLMEvalKit

`{tsv}` is a multi-turn dataset in VLMEvalKit's MT format (the MMDU layout): each row is a task,
`question` and `answer` are lists of turns, `<ImageHere>` marks where each image goes and the images
are embedded as base64. VLMEvalKit treats an unregistered TSV as a single-turn dataset, so this folder
ships the class that reads it: `vischain_vlmevalkit.py` defines `VisChainMT(ImageMTDataset)`, which
loads `{tsv}` from beside itself and scores the replies with the VisChainBench protocol (the last
`ANSWER: <label>` counts): CA, TC and format errors, overall and per kind.

With VLMEvalKit installed from its repository (`pip install -e .` in a clone), run:

```bash
python {folder}/vischain_vlmevalkit.py --vlmevalkit PATH/TO/VLMEvalKit --model Qwen2-VL-7B-Instruct
```

The script registers `VisChainMT` with VLMEvalKit and starts its `run.py` with `--data {name}`;
every other argument goes to run.py unchanged (`--work-dir`, `--mode`, `--verbose`, ...). The scores
land beside the predictions as `*_vischain_score.csv`. The model's own replies are its history (as
`vischain eval --history model`); ICIR's solved examples are in the first question's text.
"""
