"""`imagechain data ...`: look at story sources and build StoryFrames-layout datasets.

    imagechain data stats runs/eng
    imagechain data stats data/StoryFrames --model tiny:llava-next --limit 200 --image-mode single-tile
    imagechain data build-storyframes story_gen.json videos/ out/StoryFrames
    imagechain data demo runs/tiny-storyframes
    imagechain data convert-synonyms Mementos/sym_graphs/*.pkl --out runs/mementos-synonyms

Bad input (a missing folder, an unknown bucket, an annotation without a field) is one line on
stderr naming the file, field or flag, and exit code 2.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from agents.backends.chat import ModelNotFound
from agents.backends.tiny_models import resolve_model_id
from imagechain.data.buckets import BUCKETS, SPLITS, bucket_range
from imagechain.data.build_storyframes import build_storyframes
from imagechain.data.conversation import VARIANTS
from imagechain.data.demo_data import write_demo_storyframes
from imagechain.data.image_modes import IMAGE_MODES
from imagechain.data.render import FORMS
from imagechain.data.sources import iter_stories
from imagechain.data.stats import DataStats, collect_stats, summary
from imagechain.eval.mementos_pickle import convert_pickle, graph_file_name
from schemas.errors import DataError
from vischain.error_lines import fail

data_app = typer.Typer(no_args_is_help=True, add_completion=False, help="Stories, StoryFrames and their statistics.")
console = Console(emoji=False)


@data_app.command("stats")
def stats_command(
    source: Annotated[str, typer.Argument(help="run folder, StoryFrames folder, or hub id (ingoziegler/StoryFrames)")],
    model: Annotated[Optional[str], typer.Option(help="model folder, hub id or tiny:NAME: count tokens")] = None,
    variant: Annotated[str, typer.Option(help=f"conversation variant for token counts: {', '.join(VARIANTS)}")]
    = "ImageChain",
    form: Annotated[str, typer.Option(help="chat (the model's template) or transcript")] = "chat",
    max_length: Annotated[Optional[int], typer.Option(help="context length; default: the model's")] = None,
    image_mode: Annotated[str, typer.Option(help="native (the model's own image tokens) or single-tile "
                                                 "(LLaVA-NeXT: 576 tokens per image at 336 px)")] = "native",
    bucket: Annotated[Optional[str], typer.Option(help=f"only this bucket: {', '.join(BUCKETS)}")] = None,
    limit: Annotated[Optional[int], typer.Option(help="read at most this many stories")] = None,
) -> None:
    """Stories per bucket and split, frames per scene, and token lengths under --model."""
    _check_flags(variant, form, bucket)
    if image_mode not in IMAGE_MODES:
        fail(f"--image-mode: unknown value {image_mode!r}; known: {', '.join(IMAGE_MODES)}")
    try:
        processor, max_length = _load_processor(model, max_length) if model else (None, max_length)
        stats = collect_stats(iter_stories(source, bucket=bucket), processor, max_length, variant, form, limit,
                              image_mode)
    except DataError as err:
        fail(str(err))
    _print_tables(stats, source, model, max_length, image_mode)


def _check_flags(variant: str, form: str, bucket: str | None) -> None:
    if variant not in VARIANTS:
        fail(f"--variant: unknown variant {variant!r}; known: {', '.join(VARIANTS)}")
    if form not in FORMS:
        fail(f"--form: unknown form {form!r}; known: {', '.join(FORMS)}")
    if bucket is not None and bucket not in BUCKETS:
        fail(f"--bucket: unknown bucket {bucket!r}; known: {', '.join(BUCKETS)}")


def _load_processor(model: str, max_length: int | None):
    # here: both load torch and transformers; `imagechain --help` must not
    from transformers import AutoConfig

    from agents.backends.hf_loading import load_processor

    try:
        path = resolve_model_id(model)
    except ModelNotFound as err:
        raise DataError(f"--model: {err}") from None
    try:
        config = AutoConfig.from_pretrained(path)
    except (OSError, ValueError) as err:
        raise DataError(f"--model: cannot load {model!r}: {str(err).strip().splitlines()[0]}") from None
    if not hasattr(config, "vision_config"):
        raise DataError(f"--model: {model!r} is not a vision-language model (no vision_config)")
    text_config = getattr(config, "text_config", config)
    return load_processor(path, config.model_type), max_length or text_config.max_position_embeddings


def _print_tables(stats: DataStats, source: str, model: str | None, max_length: int | None,
                  image_mode: str = "native") -> None:
    table = Table(title=f"stories per bucket and split: {source}")
    for column in ("bucket", "scenes", *SPLITS):
        table.add_column(column, justify="left" if column == "bucket" else "right")
    for name in BUCKETS:
        low, high = bucket_range(name)
        table.add_row(name, f"{low}-{high}" if low != high else str(low),
                      *(str(stats.bucket_counts(name, split)) for split in SPLITS))
    table.add_row("other", "1, 8+", *(str(stats.other_counts(split)) for split in SPLITS))
    console.print(table)

    frames = Table(title="frames per scene")
    for column in ("split", "scenes", "min", "median", "max"):
        frames.add_column(column, justify="left" if column == "split" else "right")
    for split in SPLITS:
        values = stats.frames_per_scene.get(split, [])
        frames.add_row(split, str(len(values)), *_summary_cells(values))
    console.print(frames)
    if model:
        _print_lengths(stats, model, max_length, image_mode)


def _print_lengths(stats: DataStats, model: str, max_length: int, image_mode: str) -> None:
    lengths = Table(title=f"token lengths under {model} (one frame per scene, image mode {image_mode}; "
                          f"context {max_length})")
    for column in ("bucket", "split", "stories", "min", "median", "max", "over context"):
        lengths.add_column(column, justify="left" if column in ("bucket", "split") else "right")
    for name in BUCKETS:
        for split in SPLITS:
            values, over = stats.bucket_lengths(name, split)
            if values or over:
                lengths.add_row(name, split, str(len(values)), *_summary_cells(values), str(over))
    console.print(lengths)


def _summary_cells(values: list[int]) -> list[str]:
    numbers = summary(values)
    return ["-", "-", "-"] if numbers is None else [str(numbers[0]), f"{numbers[1]:g}", str(numbers[2])]


@data_app.command("build-storyframes")
def build_storyframes_command(
    annotations: Annotated[Path, typer.Argument(help="StoryBench-shaped annotations: JSON list or JSON Lines")],
    videos: Annotated[Path, typer.Argument(help="folder of videos named <video_name>[.<ext>]")],
    out: Annotated[Path, typer.Argument(help="new or empty output folder (scene_*/train|val inside)")],
    val_fraction: Annotated[float, typer.Option(help="share of 2-7-scene stories put in val")] = 0.2,
    skip_missing_videos: Annotated[bool, typer.Option(help="skip and count stories whose video is missing")]
    = False,
) -> None:
    """Sample frames (8/12/15/20/25 by story length) from each video into the StoryFrames layout."""
    if not 0 <= val_fraction <= 1:
        fail(f"--val-fraction: {val_fraction} is not between 0 and 1")
    if not annotations.is_file():
        fail(f"annotations file not found: {annotations}")
    try:
        report = build_storyframes(annotations, videos, out, val_fraction, skip_missing_videos)
    except DataError as err:
        fail(str(err))
    for key, count in report.stories.items():
        console.print(f"{out / key}: {count} stories")
    if report.missing_videos:
        console.print(f"skipped {len(report.missing_videos)} stories without a video: "
                      f"{', '.join(report.missing_videos[:5])}{' ...' if len(report.missing_videos) > 5 else ''}")


@data_app.command("demo")
def demo_command(
    out: Annotated[Path, typer.Argument(help="output folder (scene_*/train|val are written inside)")],
) -> None:
    """Draw a tiny StoryFrames-shaped dataset (flat shapes, template descriptions) for trying `imagechain eval`."""
    typer.echo(f"demo StoryFrames written to {write_demo_storyframes(out)}")


@data_app.command("convert-synonyms")
def convert_synonyms_command(
    pickles: Annotated[list[Path], typer.Argument(help="Mementos graph pickles: {cmc,dl,robo}_{action,object}"
                                                       "_graph_v1.pkl")],
    out: Annotated[Path, typer.Option(help="folder for <domain>-<behaviour|object>.json (a recipe's "
                                           "cue_f1.graphs)")] = Path("runs/mementos-synonyms"),
) -> None:
    """Convert Mementos' pickled synonym graphs to JSON, never running the pickles' code (plain containers only)."""
    try:
        graphs = [convert_pickle(path) for path in pickles]  # every file is checked before any is written
    except DataError as err:
        fail(str(err))
    out.mkdir(parents=True, exist_ok=True)
    for path, graph in zip(pickles, graphs):
        target = out / graph_file_name(graph)
        graph.save(target)
        typer.echo(f"{path} -> {target} ({len(graph.graph)} entries)")
