"""Mementos (Wang et al., 2024): image sequences with one human description each, in three domains.

ImageChain's Table 3 evaluates zero-shot on Mementos' Comics, Daily-Life (DL) and Robo sets. The
description CSVs are read as published in umd-huang-lab/Mementos (validation) and its fork
si0wang/Mementos (training); their column names differ per file, so each file's header is matched
against the names the published files use:

| domain | split | file                         | header                        | image names  |
|--------|-------|------------------------------|-------------------------------|--------------|
| comics | val   | cmc_description.csv          | image_name,gt_description     | cmc_10.png   |
| dl     | val   | dl_description.csv           | image_name,description        | rw_<id>.png  |
| robo   | val   | robo_description.csv         | image,description             | rb_<id>.png  |
| comics | train | train_cmc_description.csv    | image_name,description        |              |
| dl     | train | train_dl_description.csv     | image_name,human_description  |              |
| robo   | train | train_robo_description.csv   | image,description             |              |

Images come separately (Mementos hosts them on Google Drive; their folder layout is not described
in the repository). We read one folder, `images` (default SOURCE/images), in this layout of ours:
- `input: sequence` (Mementos' s-input, the default): `images/<name without extension>/` holds the
  sequence's frames; they are ordered by file name with numbers compared as numbers (frame_2
  before frame_10);
- `input: combined` (Mementos' c-input): `images/<image name>` is the one combined image.

    for sequence in read_sequences("data/Mementos", "robo", split="val"): sequence.frames, sequence.description
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

from imagechain.data.story import Scene, Story
from schemas.errors import DataError

INPUTS = ("sequence", "combined")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif")
NAME_COLUMNS = ("image_name", "image")
DESCRIPTION_COLUMNS = ("gt_description", "description", "human_description")


@dataclass(frozen=True)
class Domain:
    key: str
    """Our name for it, as recipes and tables use it."""
    title: str
    """The paper's column title in Table 3."""
    prefix: str
    """The prefix of its CSV files and synonym-graph pickles (cmc, dl, robo)."""


DOMAINS = {"comics": Domain("comics", "Comics", "cmc"), "dl": Domain("dl", "DL", "dl"),
           "robo": Domain("robo", "Robo", "robo")}
DOMAIN_BY_PREFIX = {domain.prefix: domain for domain in DOMAINS.values()}


@dataclass(frozen=True)
class DescriptionRow:
    image_name: str
    description: str


@dataclass(frozen=True)
class Sequence:
    domain: str
    split: str
    image_name: str
    """The CSV's image name, e.g. rb_12.png: the sequence's id within its domain."""
    description: str
    """The human description of the whole sequence: the reference."""
    frames: tuple[Path, ...]
    """The images the model sees, in order: the frames, or the one combined image."""

    @property
    def sequence_id(self) -> str:
        return f"{self.domain}/{self.image_name}"


def description_file(source: str | Path, domain: str, split: str = "val") -> Path:
    """The published CSV of `domain` and `split` under `source`."""
    if domain not in DOMAINS:
        raise DataError(f"unknown Mementos domain {domain!r}; known: {', '.join(DOMAINS)}")
    if split not in ("train", "val"):
        raise DataError(f"unknown Mementos split {split!r}; known: train, val")
    name = f"{DOMAINS[domain].prefix}_description.csv"
    return Path(source) / (name if split == "val" else f"train_{name}")


def read_descriptions(path: str | Path) -> list[DescriptionRow]:
    """The (image name, description) rows of one description CSV, whichever of the published headers it has."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: Mementos description file not found")
    try:
        with open(path, encoding="utf-8-sig", newline="") as handle:
            reader = csv.DictReader(handle)
            header = reader.fieldnames or []
            name_column = _one_column(path, header, NAME_COLUMNS, "image name")
            text_column = _one_column(path, header, DESCRIPTION_COLUMNS, "description")
            rows, seen = [], set()
            for line, record in enumerate(reader, start=2):
                name, text = (record.get(name_column) or "").strip(), (record.get(text_column) or "").strip()
                if not name or not text:
                    missing = name_column if not name else text_column
                    raise DataError(f"{path}:{line}: empty {missing!r}")
                if name in seen:
                    raise DataError(f"{path}:{line}: image {name!r} is listed twice")
                seen.add(name)
                rows.append(DescriptionRow(name, text))
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise DataError(f"{path}: cannot read CSV: {err}") from None
    if not rows:
        raise DataError(f"{path}: no rows")
    return rows


def _one_column(path: Path, header: list[str], names: tuple[str, ...], what: str) -> str:
    found = [name for name in names if name in header]
    if len(found) != 1:
        raise DataError(f"{path}: expected one {what} column ({' or '.join(names)}) in the header "
                        f"{','.join(header) or '(empty)'}")
    return found[0]


def natural_key(name: str) -> list:
    """Sort key that compares the digit runs of a file name as numbers: frame_2 before frame_10."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def sequence_frames(images: Path, image_name: str, input_kind: str = "sequence") -> tuple[Path, ...]:
    """The image files of one sequence under `images` (layout in the module docstring)."""
    if input_kind not in INPUTS:
        raise DataError(f"unknown Mementos input {input_kind!r}; known: {', '.join(INPUTS)}")
    if input_kind == "combined":
        path = images / image_name
        if not path.is_file():
            raise DataError(f"{path}: combined image not found (input: combined)")
        return (path,)
    folder = images / Path(image_name).stem
    if not folder.is_dir():
        raise DataError(f"{folder}: frame folder of {image_name} not found (input: sequence)")
    frames = sorted((p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES),
                    key=lambda p: natural_key(p.name))
    if not frames:
        raise DataError(f"{folder}: no image files (input: sequence)")
    return tuple(frames)


def read_sequences(source: str | Path, domain: str, split: str = "val", images: str | Path | None = None,
                   input_kind: str = "sequence", limit: int | None = None) -> list[Sequence]:
    """The sequences of one domain and split: descriptions from its CSV, images from `images`."""
    folder = Path(images) if images is not None else Path(source) / "images"
    if not folder.is_dir():
        raise DataError(f"{folder}: Mementos image folder not found")
    rows = read_descriptions(description_file(source, domain, split))
    rows = rows[:limit] if limit is not None else rows
    return [Sequence(domain, split, row.image_name, row.description,
                     sequence_frames(folder, row.image_name, input_kind)) for row in rows]


def sequence_story(sequence: Sequence) -> Story:
    """The sequence as a story of one scene per image; only the last scene carries a description (the
    reference for the whole sequence): Mementos describes sequences, not frames."""
    scenes = [Scene(frames=[frame], description="") for frame in sequence.frames]
    scenes[-1] = Scene(frames=[sequence.frames[-1]], description=sequence.description)
    return Story(story_id=sequence.sequence_id, source=f"mementos:{sequence.domain}/{sequence.split}",
                 scenes=scenes, split=sequence.split, metadata={"domain": sequence.domain})
