"""`imagechain`: multi-turn image-chain data, LoRA fine-tuning and next-scene evaluation."""

from __future__ import annotations

import typer

from imagechain.data_cli import data_app

app = typer.Typer(no_args_is_help=True, add_completion=False, help=__doc__.splitlines()[0])
app.add_typer(data_app, name="data")


@app.callback()
def main() -> None:
    """Subcommands arrive with the ImageChain data, training and evaluation work."""


if __name__ == "__main__":
    app()
