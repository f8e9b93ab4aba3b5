"""`imagechain train --recipe FILE [key=value ...]`: LoRA fine-tuning on image chains.

    imagechain train --recipe imagechain/recipes/train/tiny-llava.yaml data=[runs/eng] epochs=1
    accelerate launch --config_file imagechain/accelerate/zero3.yaml -m vischain.imagechain_cli train \\
        --recipe imagechain/recipes/train/llava-v1.6-vicuna-7b.yaml

Overrides are recipe fields as `key=value` (YAML values: `data=[a,b]`, `bf16=true`, `max_steps=null`).
Bad input (a missing recipe, an unknown field, a value of the wrong type, no stories) is one line on
stderr naming the flag, file or field, and exit code 2.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from imagechain.train.config import TrainConfig, load_config
from schemas.errors import DataError
from vischain.error_lines import fail


def train_command(
    recipe: Annotated[Path, typer.Option("--recipe", help="YAML recipe (see imagechain/recipes/train/)")],
    overrides: Annotated[Optional[list[str]], typer.Argument(help="recipe fields as key=value")] = None,
) -> None:
    """Train a LoRA adapter on scene-visual chains (checkpoints each epoch, resumes after a kill)."""
    if not recipe.is_file():
        fail(f"--recipe: {recipe}: file not found")
    try:
        config = load_config(recipe, overrides or [])
    except DataError as err:
        fail(str(err))
    _run(config)


def _run(config: TrainConfig) -> None:
    from imagechain.train.trainer import TrainRecipe  # here: it imports torch; `imagechain --help` must not

    try:
        summary = TrainRecipe(config).setup().train()
    except DataError as err:
        fail(str(err))
    if summary.get("adapter"):
        typer.echo(f"adapter: {summary['adapter']}")
