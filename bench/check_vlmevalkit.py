"""Check the vlmevalkit-mt export with VLMEvalKit's own code: its ImageMTDataset.build_prompt, on
every row of the exported TSV, through the dataset class the export ships.

    .venv/bin/python bench/check_vlmevalkit.py --vlmevalkit PATH/TO/VLMEvalKit --python PY

VLMEvalKit is not on PyPI: PATH is a checkout of its repository (github.com/open-compass/VLMEvalKit).
PY is a Python with the light packages its dataset and utility modules import (pandas, numpy,
pillow, validators, filelock, huggingface_hub, sty, tabulate, python-dotenv, requests), e.g.

    python3 -m venv /tmp/vlm-venv && /tmp/vlm-venv/bin/pip install pandas numpy pillow validators \\
        filelock huggingface_hub sty tabulate python-dotenv requests

VLMEvalKit's package `__init__` files import every model and dataset it has (torch among them), so
the check loads its modules without running those `__init__` files: `vlmeval.smp`, `vlmeval.utils`,
`vlmeval.dataset.image_base` and `vlmeval.dataset.image_mt` are its own code, unchanged; only the
judge API package (`vlmeval.api`, used by scoring with a judge model, not by build_prompt) is left
out. The export's own `vischain_vlmevalkit.py` then loads as VLMEvalKit would load it, builds the
dataset from its TSV, and every row's dialogue from build_prompt is compared with the conversation
`vischain eval` plays: the same texts in the same order, each image the same pixels.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image, ImageChops

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from schemas.run_store import RunStore  # noqa: E402
from vischain.exports.conversation import Image as ImagePart  # noqa: E402
from vischain.exports.conversation import export_conversations  # noqa: E402

CHILD = r'''
import json, sys, types, importlib
from pathlib import Path
kit, folder, out = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
sys.path.insert(0, str(kit))
for name in ("vlmeval", "vlmeval.dataset", "vlmeval.dataset.utils"):   # packages without their __init__
    module = types.ModuleType(name)
    module.__path__ = [str(kit / name.replace(".", "/"))]
    sys.modules[name] = module
api = types.ModuleType("vlmeval.api")
api.OpenAIWrapper = object  # judge models only; build_prompt never calls one
sys.modules["vlmeval.api"] = api
sys.modules["vlmeval.dataset"].DATASET_CLASSES = []
importlib.import_module("vlmeval.smp")
image_mt = importlib.import_module("vlmeval.dataset.image_mt")
sys.path.insert(0, str(folder))
shipped = importlib.import_module("vischain_vlmevalkit")
assert issubclass(shipped.VisChainMT, image_mt.ImageMTDataset)
dataset = shipped.VisChainMT(dataset=shipped.DATASET)
rows = []
for index in range(len(dataset.data)):
    dialogue = dataset.build_prompt(index)
    rows.append([[m["role"], [[p["type"], p["value"]] for p in m["content"]]] for m in dialogue])
out.write_text(json.dumps(rows))
print(f"build_prompt: {len(rows)} rows from VLMEvalKit's own code")
'''


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vlmevalkit", required=True, type=Path, help="a VLMEvalKit checkout (has vlmeval/)")
    parser.add_argument("--python", required=True, help="a Python with VLMEvalKit's light dependencies")
    parser.add_argument("--run", type=Path, default=ROOT / "benchmark_data" / "example_run")
    args = parser.parse_args()
    if not (args.vlmevalkit / "vlmeval" / "dataset" / "image_mt.py").is_file():
        sys.exit(f"error: --vlmevalkit: {args.vlmevalkit} has no vlmeval/dataset/image_mt.py")
    with tempfile.TemporaryDirectory(prefix="vischain-vlmevalkit-") as scratch:
        folder = Path(scratch) / "export"
        subprocess.run([sys.executable, "-m", "vischain.cli", "export", str(args.run), "--format", "vlmevalkit-mt",
                        "--out", str(folder)], cwd=ROOT, check=True, capture_output=True)
        dialogues = Path(scratch) / "dialogues.json"
        child = subprocess.run([args.python, "-c", CHILD, str(args.vlmevalkit), str(folder), str(dialogues)],
                               cwd=scratch, capture_output=True, text=True,
                               env={"LMUData": str(Path(scratch) / "lmu"), "PATH": "/usr/bin:/bin"})
        if child.returncode:
            sys.exit(f"VLMEvalKit's code failed on the export:\n{child.stderr[-3000:]}")
        print(child.stdout.strip())
        compare(json.loads(dialogues.read_text()), args.run)


def compare(dialogues: list, run: Path) -> None:
    """Each dialogue against the protocol's conversation for the same task (solved ICIR examples
    folded into the first question, as the export does for harnesses), turn by turn."""
    with tempfile.TemporaryDirectory() as scratch:
        expected = [c.inline_examples() for c in export_conversations(RunStore.open(run), Path(scratch))]
        assert len(expected) == len(dialogues), (len(expected), len(dialogues))
        images = 0
        for conversation, dialogue in zip(expected, dialogues):
            users = [parts for role, parts in dialogue if role == "user"]
            assert len(users) == len(conversation.turns), conversation.task_id
            for turn, parts in zip(conversation.turns, users):
                said = " ".join(value for kind, value in parts if kind == "text").split()
                meant = " ".join(p.text for p in turn.parts if not isinstance(p, ImagePart)).split()
                assert said == meant, (conversation.task_id, said[:12], meant[:12])
                shown = [value for kind, value in parts if kind == "image"]
                assert len(shown) == len(turn.images), conversation.task_id
                for path, source in zip(shown, turn.images):
                    with Image.open(path) as a, Image.open(Path(scratch) / source) as b:
                        assert ImageChops.difference(a.convert("RGB"), b.convert("RGB")).getbbox() is None, path
                    images += 1
    print(f"ok: {len(dialogues)} dialogues, {images} images, every text and pixel as `vischain eval` shows them")


if __name__ == "__main__":
    main()
