"""`imagechain`: multi-turn image-chain data, LoRA fine-tuning and next-scene evaluation.

Each command lives in vischain/commands/imagechain_*.py; this file only wires them to the typer
app. Under `accelerate launch`, run it as a module: `-m vischain.imagechain_cli train ...`.
"""

from __future__ import annotations

import typer

from vischain.commands import imagechain_data, imagechain_eval, imagechain_train

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__.splitlines()[0])
app.add_typer(imagechain_data.data_app, name="data")
app.command("eval")(imagechain_eval.eval_command)
app.command("report")(imagechain_eval.report_command)
app.command("train")(imagechain_train.train_command)


if __name__ == "__main__":
    app()
