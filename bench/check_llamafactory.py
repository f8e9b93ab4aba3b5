"""Slow check: LLaMA-Factory's own data pipeline reads `vischain export --format llamafactory`.

    .venv/bin/python bench/check_llamafactory.py [--run RUN] [--venv /tmp/lf-venv]

LLaMA-Factory (PyPI llamafactory 0.9.5) cannot go into .venv: it pulls the CUDA build of torch 2.14
over our CPU torch 2.13 and pins trl<=0.24 where the suite uses trl 1.x. So it lives in a virtual
environment of its own that sees .venv's packages through a .pth file and gets llamafactory and
trl 0.24 with --no-deps, plus omegaconf, which .venv lacks. Its mm_plugin imports torchaudio at the
top for audio inputs only, and no torchaudio wheel matches torch 2.13, so that environment gets an
empty `torchaudio` module in its place (the export has no audio).

There, with the tiny LLaVA-NeXT model (built locally, nothing downloaded) and LLaMA-Factory's
`llava_next` template, the check runs what `llamafactory-cli train --stage sft` runs on the data:
`get_train_args` on the arguments the export's README gives, `load_tokenizer`, `get_dataset`
(dataset_info.json, the sharegpt converter, the template, the multimodal plugin that expands each
`<image>` into image tokens and drops rows whose markers and images disagree), then its SFT collator
on a batch of every row, which computes pixel values through the processor. It passes when every
task is kept, each row's image tokens match its images, and the batch has one image tensor per image.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

from agents.backends.tiny_models import ensure_tiny_models
from benchmark_data import EXAMPLE_RUN
from schemas.rules import require_valid_run
from vischain.exports import export_run

PACKAGES = ["llamafactory==0.9.5", "trl==0.24.0"]
EXTRA_MODULES = ["omegaconf"]

CHILD = r'''
import json, os, sys
folder, model, out = sys.argv[1:4]
from llamafactory.data import SFTDataCollatorWith4DAttentionMask, get_dataset, get_template_and_fix_tokenizer
from llamafactory.hparams import get_train_args
from llamafactory.model import load_tokenizer

(name,) = json.load(open(os.path.join(folder, "dataset_info.json")))
rows = sum(1 for line in open(os.path.join(folder, "vischain.jsonl")) if line.strip())
images = [len(json.loads(line)["images"]) for line in open(os.path.join(folder, "vischain.jsonl"))]
model_args, data_args, training_args, _, _ = get_train_args(dict(
    stage="sft", do_train=True, finetuning_type="lora", model_name_or_path=model, template="llava_next",
    dataset_dir=folder, dataset=name, cutoff_len=8192, output_dir=out, report_to="none", use_cpu=True,
    overwrite_cache=True, per_device_train_batch_size=1))
tokenizer_module = load_tokenizer(model_args)
template = get_template_and_fix_tokenizer(tokenizer_module["tokenizer"], data_args)
train = get_dataset(template, model_args, data_args, training_args, stage="sft", **tokenizer_module)["train_dataset"]
assert len(train) == rows, f"LLaMA-Factory kept {len(train)} of {rows} rows"
image_token = tokenizer_module["tokenizer"].convert_tokens_to_ids(tokenizer_module["processor"].image_token)
for row, count in zip(train, images):
    assert len(row["images"]) == count and row["input_ids"].count(image_token) >= count
    assert any(label != -100 for label in row["labels"])
collator = SFTDataCollatorWith4DAttentionMask(template=template, pad_to_multiple_of=8, label_pad_token_id=-100,
                                              **tokenizer_module)
batch = collator([dict(row) for row in train])
assert batch["pixel_values"].shape[0] == sum(images), (tuple(batch["pixel_values"].shape), sum(images))
print(f"LLaMA-Factory: dataset {name}: {len(train)} of {rows} rows kept, {sum(images)} images, "
      f"batch input_ids {tuple(batch['input_ids'].shape)}, pixel_values {tuple(batch['pixel_values'].shape)}")
'''


def ensure_venv(venv: Path) -> Path:
    """The check's environment: made once, reused after."""
    python = venv / "bin" / "python"
    probe = "import llamafactory.data, trl; assert trl.__version__.startswith('0.24')"
    if python.is_file() and subprocess.run([python, "-c", probe], capture_output=True,
                                           env={"DISABLE_VERSION_CHECK": "1"}).returncode == 0:
        return python
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    site = Path(subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True).stdout.strip())
    (site / "zz_vischain_venv.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    (site / "torchaudio").mkdir(exist_ok=True)
    (site / "torchaudio" / "__init__.py").write_text('"""Stand-in: imported by LLaMA-Factory for audio only."""\n')
    subprocess.run([python, "-m", "pip", "install", "-q", "--no-deps", *PACKAGES], check=True)
    subprocess.run([python, "-m", "pip", "install", "-q", *EXTRA_MODULES], check=True)
    return python


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, default=EXAMPLE_RUN, help="the run to export (default: the example run)")
    parser.add_argument("--venv", type=Path, default=Path(tempfile.gettempdir()) / "vischain-llamafactory-venv")
    args = parser.parse_args()
    python = ensure_venv(args.venv)
    model = ensure_tiny_models(names=("llava-next",))["llava-next"]
    with tempfile.TemporaryDirectory(prefix="vischain-llamafactory-") as scratch:
        folder = export_run(require_valid_run(args.run), "llamafactory", Path(scratch) / "llamafactory").folder
        # DISABLE_VERSION_CHECK: LLaMA-Factory refuses transformers newer than it was released with.
        env = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "DISABLE_VERSION_CHECK": "1", "PATH": "/usr/bin:/bin",
               "HF_HOME": str(Path(scratch) / "hf")}
        done = subprocess.run([python, "-c", CHILD, str(folder), str(model), str(Path(scratch) / "out")],
                              env=env, capture_output=True, text=True)
        # LLaMA-Factory prints a whole tokenized example; show only our verdict, or its error.
        failed = done.stdout[-3000:] + done.stderr[-3000:]
        print(done.stdout.strip().splitlines()[-1] if done.returncode == 0 else failed)
        return done.returncode


if __name__ == "__main__":
    sys.exit(main())
