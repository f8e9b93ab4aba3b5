"""`imagechain`: multi-turn image-chain data, LoRA fine-tuning and next-scene evaluation.

Each command lives in vischain/commands/imagechain_*.py; this file only wires them to the typer
app. Under `accelerate launch`, run it as a module: `-m vischain.imagechain_cli train ...`.

Quiet output: our lines and progress bars only. Messages we can avoid are avoided where they start
(transformers' loading bars are turned off where models load, the current checkpointing API is
called); the known-harmless rest is filtered by vischain/quiet.py's list plus `IMAGECHAIN_NOISE`
below, narrowly, so a new warning still shows. `imagechain --verbose ...` shows everything.
"""

from __future__ import annotations

import warnings
from typing import Annotated

import typer

from vischain.commands import imagechain_data, imagechain_eval, imagechain_train
from vischain.quiet import WarningNoise, quiet_known_noise

IMAGECHAIN_NOISE = (
    WarningNoise(FutureWarning, r"`is_gradient_checkpointing` is deprecated and will be removed in v6",
                 "peft reads the model's old checkpointing property whenever it wraps a model (get_peft_model in "
                 "training, PeftModel.from_pretrained for an adapter at evaluation); transformers 5 warns about "
                 "the alias. Our code calls the current API (activation_checkpointing_enable)."),
)

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__.splitlines()[0])


@app.callback()
def main(verbose: Annotated[bool, typer.Option(
        "--verbose", help="Show every library message too (the known-harmless ones are hidden by default).")]
         = False):
    """Multi-turn image-chain data, LoRA fine-tuning and next-scene evaluation."""
    if not verbose:
        quiet_known_noise()
        for noise in IMAGECHAIN_NOISE:
            warnings.filterwarnings("ignore", message=noise.pattern, category=noise.category)


app.add_typer(imagechain_data.data_app, name="data")
app.command("eval")(imagechain_eval.eval_command)
app.command("report")(imagechain_eval.report_command)
app.command("train")(imagechain_train.train_command)


if __name__ == "__main__":
    app()
