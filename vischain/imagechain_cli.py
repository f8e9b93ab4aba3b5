"""`imagechain`: multi-turn image-chain data, LoRA fine-tuning and next-scene evaluation."""

from __future__ import annotations

import typer

from imagechain.data_cli import data_app
from imagechain.eval_command import eval_command, report_command
from imagechain.train_command import train_command

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__.splitlines()[0])
app.add_typer(data_app, name="data")
app.command("eval")(eval_command)
app.command("report")(report_command)
app.command("train")(train_command)


@app.callback()
def main() -> None:
    """Subcommands arrive with the ImageChain data, training and evaluation work."""


if __name__ == "__main__":
    app()
