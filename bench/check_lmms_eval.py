"""Slow check: lmms-eval's own code loads `vischain export --format lmms-eval` and builds its requests.

    .venv/bin/python bench/check_lmms_eval.py [--run RUN] [--venv /tmp/lmms-venv]

lmms-eval (PyPI lmms-eval 0.7.3) cannot go into .venv: its dependencies pull the CUDA build of torch
2.14 over our CPU torch 2.13. So it lives in a virtual environment of its own that sees .venv's
packages through a .pth file and gets lmms-eval with --no-deps, plus the few modules its task loader
imports that .venv lacks (made on first use, from PyPI). There, for both of lmms-eval's task types
("simple" models: doc_to_visual + doc_to_text; "chat" models: doc_to_messages), this check:

- indexes the export folder with `TaskManager(include_path=...)` and loads the task with `get_task_dict`
  (lmms-eval's YAML loader, `!function` imports, local JSON data through datasets);
- builds every request with `task.build_all_requests` and calls what a model would: doc_to_visual
  (images open), doc_to_messages (validated by lmms-eval's `ChatMessages` model);
- scores gold replies and empty replies through `task.process_results` and `task.aggregation()`:
  CA = TC = 1 and no format error for the truth, CA = TC = 0 and all format errors for no answer.

It exits non-zero on the first failure.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

from benchmark_data import EXAMPLE_RUN
from schemas.rules import require_valid_run
from vischain.exports import export_run

LMMS_EVAL = "lmms-eval==0.7.3"
# What lmms-eval's task loader imports beyond .venv's packages (found by importing it).
EXTRA_MODULES = ["loguru", "pytz", "evaluate", "sacrebleu"]

CHILD = r'''
import glob, os, sys
from lmms_eval.protocol import ChatMessages
from lmms_eval.tasks import TaskManager, get_task_dict

folder = sys.argv[1]
(yaml_file,) = glob.glob(os.path.join(folder, "*.yaml"))
name = os.path.splitext(os.path.basename(yaml_file))[0]
for task_type in ("simple", "chat"):
    task = get_task_dict([name], TaskManager(include_path=folder, include_defaults=False), task_type=task_type)[name]
    task.build_all_requests(limit=None, rank=0, world_size=1)
    docs = {i: doc for i, doc in enumerate(task.test_docs())}
    assert task.instances and len(task.instances) == len(docs), (len(task.instances), len(docs))
    for instance in task.instances:
        doc = docs[instance.doc_id]
        if task_type == "simple":
            context, _, doc_to_visual = instance.arguments[:3]
            images = doc_to_visual(doc)
            assert len(images) == context.count("<image>") > 0, instance.doc_id
        else:
            doc_to_messages = instance.arguments[1]
            messages = ChatMessages(messages=doc_to_messages(doc))
            images, _, _ = messages.extract_media()
            assert messages.messages[-1].role == "user" and images, instance.doc_id
    aggregation = task.aggregation()
    for replies, expected in (("truth", {"ca": 1.0, "tc": 1.0, "format_error_rate": 0.0}),
                              ("none", {"ca": 0.0, "tc": 0.0, "format_error_rate": 1.0})):
        results = [task.process_results(doc, ["ANSWER: " + doc["truth"] if replies == "truth" else "no idea"])
                   for doc in docs.values()]
        scores = {metric: aggregation[metric]([r[metric] for r in results]) for metric in aggregation}
        assert scores == expected, (task_type, replies, scores)
    print(f"lmms-eval {task_type}: task {name} loaded, {len(task.instances)} requests built, "
          f"gold replies score CA 1 TC 1, empty replies CA 0 TC 0")
'''


def ensure_venv(venv: Path) -> Path:
    """The check's environment: made once, reused after."""
    python = venv / "bin" / "python"
    probe = subprocess.run([python, "-c", "import lmms_eval.tasks"], capture_output=True) if python.is_file() else None
    if probe is not None and probe.returncode == 0:
        return python
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    site = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          check=True, capture_output=True, text=True).stdout.strip()
    Path(site, "zz_vischain_venv.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([python, "-m", "pip", "install", "-q", "--no-deps", LMMS_EVAL], check=True)
    subprocess.run([python, "-m", "pip", "install", "-q", *EXTRA_MODULES], check=True)
    return python


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, default=EXAMPLE_RUN, help="the run to export (default: the example run)")
    parser.add_argument("--venv", type=Path, default=Path(tempfile.gettempdir()) / "vischain-lmms-eval-venv")
    args = parser.parse_args()
    python = ensure_venv(args.venv)
    with tempfile.TemporaryDirectory(prefix="vischain-lmms-eval-") as scratch:
        folder = export_run(require_valid_run(args.run), "lmms-eval", Path(scratch) / "lmms-eval").folder
        env = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "PATH": "/usr/bin:/bin",
               "HF_HOME": str(Path(scratch) / "hf")}
        return subprocess.run([python, "-c", CHILD, str(folder)], env=env).returncode


if __name__ == "__main__":
    sys.exit(main())
