"""The dataset card (README.md) of a published run: what is in it, how it was made, whose images.

The card is honest by construction: every number comes from the run folder, every field the run
does not record says "unknown", and the licence is worked out from the images, not chosen:

    summary = summarise_licences(provenance_lines)
    summary.hf_id          # "cc-by-sa-4.0": the most restrictive licence among the retrieved images
    card_licence(summary, generator_licences(run)).ids   # ["cc-by-sa-4.0", "creativeml-openrail-m"]: the YAML
    card = build_card(run_json, kind_domain_counts, provenance_lines, config_rows)
    card.save("out/README.md")

Licence order, least to most restrictive: cc0 = pdm < by < by-sa < by-nc < by-nc-sa < by-nd < by-nc-nd.
Synthetic images are outside that order: their licence is their generator model's, which the profile
records (painter.licence), so the YAML `license` lists it beside the retrieved images' licence.
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from dataclasses import dataclass, field

from huggingface_hub import DatasetCard, DatasetCardData

from vischain.review.metrics import QualityControl, share_text

SPLIT = "test"
"""Every config has one split: a benchmark is for evaluation (the stories too come from test tasks)."""

TASK_KINDS_TEXT = {"itmr": "image-text multi-turn", "icir": "in-context image-only", "iomr": "image-only multi-turn"}
LICENCE_RANK = {"cc0": 0, "pdm": 0, "by": 1, "by-sa": 2, "by-nc": 3, "by-nc-sa": 4, "by-nd": 5, "by-nc-nd": 6}
DEFAULT_VERSION = "4.0"
CC0_DEED = "https://creativecommons.org/publicdomain/zero/1.0/"
# The Creative Commons identifiers the Hub's `license:` field accepts; anything else becomes `other`.
HF_LICENCE_IDS = {
    "cc0-1.0", "cc-by-2.0", "cc-by-2.5", "cc-by-3.0", "cc-by-4.0", "cc-by-sa-3.0", "cc-by-sa-4.0",
    "cc-by-nc-2.0", "cc-by-nc-3.0", "cc-by-nc-4.0", "cc-by-nd-4.0", "cc-by-nc-nd-3.0", "cc-by-nc-nd-4.0",
    "cc-by-nc-sa-2.0", "cc-by-nc-sa-3.0", "cc-by-nc-sa-4.0",
}
SIZE_CATEGORIES = ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"))


# ---- Licences ------------------------------------------------------------------------------------

@dataclass
class LicenceSummary:
    hf_id: str
    """The card's `license:` value: a Hub id such as cc-by-sa-4.0, or `other`."""
    name: str
    """The same in words, e.g. "CC BY-SA 4.0"."""
    link: str | None
    """The licence deed, when known."""
    retrieved: list[dict] = field(default_factory=list)
    """Provenance lines of images that were found (not painted), in file order."""
    synthetic: list[dict] = field(default_factory=list)
    unverified: list[dict] = field(default_factory=list)
    """Retrieved images whose licence only a search filter vouches for."""


def licence_label(licence: dict | None) -> str:
    """"CC BY-SA 4.0", "CC0 1.0", "Public Domain Mark 1.0" from a provenance licence object."""
    if not licence:
        return "unknown"
    version = f" {licence['version']}" if licence.get("version") else ""
    if licence["id"] == "pdm":
        return f"Public Domain Mark{version}"
    if licence["id"] == "cc0":
        return f"CC0{version}"
    return f"CC {licence['id'].upper()}{version}"


def hf_licence_id(licence_id: str, version: str | None) -> str | None:
    """The Hub's id for a licence (cc0-1.0, cc-by-4.0, ...), or None when the Hub has none."""
    if licence_id in ("cc0", "pdm"):
        # A Public Domain Mark image carries no rights to license; the compilation is dedicated CC0.
        return "cc0-1.0"
    candidate = f"cc-{licence_id}-{version or DEFAULT_VERSION}"
    return candidate if candidate in HF_LICENCE_IDS else None


def summarise_licences(lines: list[dict]) -> LicenceSummary:
    """The dataset's licence: the most restrictive among the retrieved images, at its highest version."""
    retrieved = [line for line in lines if not line["synthetic"]]
    synthetic = [line for line in lines if line["synthetic"]]
    unverified = [line for line in retrieved if line["licence"] and not line["licence"]["verified"]]
    if not retrieved:
        return LicenceSummary("other", "generator model licences", None, retrieved, synthetic, unverified)
    worst_rank = max(LICENCE_RANK[line["licence"]["id"]] for line in retrieved)
    worst = [line["licence"] for line in retrieved if LICENCE_RANK[line["licence"]["id"]] == worst_rank]
    # Prefer CC0 over the PDM (same rank), then the highest version stated: later CC versions are compatible.
    chosen = max(worst, key=lambda licence: (licence["id"] != "pdm", licence.get("version") or ""))
    hf_id = hf_licence_id(chosen["id"], chosen.get("version"))
    if hf_id == "cc0-1.0":
        return LicenceSummary(hf_id, "CC0 1.0", CC0_DEED, retrieved, synthetic, unverified)
    name = licence_label({**chosen, "version": chosen.get("version") or DEFAULT_VERSION})
    return LicenceSummary(hf_id or "other", name, chosen.get("url"), retrieved, synthetic, unverified)


# ---- The licence the YAML states ------------------------------------------------------------------

MODEL_LICENCE_IDS = {
    "apache-2.0", "mit", "openrail", "openrail++", "creativeml-openrail-m", "bigscience-openrail-m",
    "bigscience-bloom-rail-1.0", "deepfloyd-if-license", "llama2", "llama3", "gemma",
}
"""Hub licence ids a generator model may carry besides the Creative Commons ones (the Hub's licence list,
huggingface.co/docs/hub/repositories-licenses); any other licence is `other` with its name and link."""
UNKNOWN_GENERATOR = "unknown-generator-licence"


@dataclass(frozen=True)
class GeneratorLicence:
    """A painter's licence as its profile records it (painter.licence, painter.licence_url)."""

    licence: str
    """A Hub licence id (creativeml-openrail-m) or the licence's own slug (stabilityai-ai-community)."""
    url: str | None = None


@dataclass(frozen=True)
class CardLicence:
    """The YAML `license` (one id, or a list when images carry different terms) and, for `other`, its name and link."""

    ids: list[str]
    name: str | None = None
    link: str | None = None


def generator_licences(run: dict) -> dict[str, GeneratorLicence]:
    """Painter model -> its licence, from the profiles run.json records (a merged run keeps each source's)."""
    found: dict[str, GeneratorLicence] = {}
    configs = [run.get("config") or {}]
    while configs:
        config = configs.pop()
        painter = (config.get("profile_config") or {}).get("painter") or {}
        if painter.get("model") and painter.get("licence") and painter["licence"] != "unknown":
            found[painter["model"]] = GeneratorLicence(painter["licence"], painter.get("licence_url"))
        configs += [source.get("config") or {} for source in config.get("sources") or []]
    return found


def card_licence(summary: LicenceSummary, generators: dict[str, GeneratorLicence]) -> CardLicence:
    """Every term a user of the images must follow: the most restrictive retrieved licence (Creative Commons
    licences nest, so it covers the others) and the licence of each model that painted images.

    Those two kinds do not nest (a CC licence and a model licence restrict different things), so when
    both are present the YAML lists both rather than pretend one covers the other. A painted image whose
    model's licence the run does not record counts as `other`, named unknown-generator-licence."""
    entries: list[tuple[str, str | None]] = []  # (Hub id or slug, link)
    if summary.retrieved:
        entries.append((summary.hf_id if summary.hf_id != "other" else _slug(summary.name), summary.link))
    for model in sorted({(line.get("generator") or {}).get("model") or "unknown model" for line in summary.synthetic}):
        licence = generators.get(model)
        entries.append((licence.licence, licence.url) if licence else (UNKNOWN_GENERATOR, None))
    hub_ids = HF_LICENCE_IDS | MODEL_LICENCE_IDS
    ids = list(dict.fromkeys(licence for licence, _ in entries if licence in hub_ids))
    others = list(dict.fromkeys((licence, link) for licence, link in entries if licence not in hub_ids))
    if not others:
        return CardLicence(ids or ["other"])
    # The Hub takes one name and one link for `other`: the licence's own when there is one, else the card.
    name = "-and-".join(licence for licence, _ in others)
    link = others[0][1] if len(others) == 1 and others[0][1] else "README.md"
    return CardLicence([*ids, "other"], name, link)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


# ---- The card ------------------------------------------------------------------------------------

def build_card(run: dict, kind_domains: Counter, provenance: list[dict], config_rows: dict[str, int],
               repo_id: str | None = None, *, quality: QualityControl | None = None) -> DatasetCard:
    """The README.md of the dataset folder: YAML front matter the Hub reads, then the text people read.
    `quality`: the human review's figures (vischain/review/metrics.py); None leaves the section out."""
    summary = summarise_licences(provenance)
    licence = card_licence(summary, generator_licences(run))
    tasks = sum(kind_domains.values())
    data = DatasetCardData(
        license=licence.ids[0] if len(licence.ids) == 1 else licence.ids,
        language=["en"],  # the prompts and task texts vischain writes
        pretty_name=run.get("name") or "vischain run",
        task_categories=["visual-question-answering", "image-text-to-text", "multiple-choice"],
        tags=["vischain", "vischainbench", "multi-image", "multi-turn", "visual-reasoning"]
             + (["synthetic"] if summary.synthetic else []),
        size_categories=[_size_category(tasks)],
        configs=[{"config_name": name, "data_files": [{"split": SPLIT, "path": f"data/{name}/{SPLIT}-*.parquet"}],
                  **({"default": True} if i == 0 else {})} for i, name in enumerate(config_rows)],
    )
    if licence.name:  # the Hub wants a slug and a link for licences it has no id for
        data.license_name, data.license_link = licence.name, licence.link
    sections = [
        _intro(run, tasks, config_rows), _licence_section(summary), _making_section(run, provenance),
        quality_control_section(quality),
        _contents_section(kind_domains, config_rows), _images_section(summary), _attribution_section(summary),
        _loading_section(config_rows, repo_id or "OWNER/NAME"),
    ]
    return DatasetCard(f"---\n{data.to_yaml()}\n---\n\n" + "\n\n".join(s for s in sections if s) + "\n")


def _size_category(rows: int) -> str:
    for limit, label in SIZE_CATEGORIES:
        if rows < limit:
            return label
    return "n>1M"


def _intro(run: dict, tasks: int, config_rows: dict[str, int]) -> str:
    name = run.get("name") or "vischain run"
    return (f"# {name}\n\n{tasks} multi-turn, multi-image visual reasoning task(s) in the VisChainBench format, "
            f"built by vischain's model agents. Configs: {', '.join(f'`{c}`' for c in config_rows)}; "
            f"each has one split, `{SPLIT}`. Images are embedded in the parquet files.")


def _licence_section(summary: LicenceSummary) -> str:
    lines = ["## Licence", ""]
    if summary.retrieved:
        lines.append(f"This dataset is released under **{summary.name}**, the most restrictive licence among its "
                     f"{len(summary.retrieved)} retrieved image(s). Each image keeps its own licence; see the "
                     "attribution table below and the `provenance` config.")
    else:
        lines.append("Every image in this dataset is synthetic, so no image licence applies; see below.")
    if summary.unverified:
        lines.append("")
        lines.append(f"**Warning: {len(summary.unverified)} image licence(s) are unverified.** For these, only the "
                     "image search's licence filter vouches for the licence; the provider did not state it per image. "
                     "Check them before relying on the licence: "
                     + ", ".join(f"`{line['file']}`" for line in summary.unverified) + ".")
    if summary.synthetic:
        models = sorted({_generator_model(line) for line in summary.synthetic})
        lines.append("")
        lines.append(f"{len(summary.synthetic)} image(s) are synthetic. Their licence is the licence of the model "
                     f"that generated them ({', '.join(f'`{m}`' for m in models)}); read that model's licence "
                     "before reuse. They are listed under *Synthetic images*.")
    return "\n".join(lines)


def _generator_model(line: dict) -> str:
    return (line.get("generator") or {}).get("model") or "unknown model"


def _making_section(run: dict, provenance: list[dict]) -> str:
    config = run.get("config") or {}
    models = config.get("models")
    if isinstance(models, dict):
        models = ", ".join(f"{role}: {model}" for role, model in models.items())
    elif isinstance(models, list):
        models = ", ".join(map(str, models))
    validators = sorted({(line.get("validator") or {}).get("model") for line in provenance} - {None})
    rows = [
        ("run", run.get("name")), ("created", run.get("created")), ("published", time.strftime("%Y-%m-%d")),
        ("domain", config.get("domain")), ("profile", config.get("profile")), ("models", models),
        ("prompts hash", config.get("prompts_hash")),
        ("image validator models", ", ".join(validators) or None), ("seed", run.get("seed")),
        ("package versions", ", ".join(f"{k} {v}" for k, v in (run.get("versions") or {}).items()) or None),
    ]
    table = _table(["", "value"], [(key, "unknown" if value in (None, "") else value) for key, value in rows])
    return ("## How it was made\n\nModel agents planned each task and found or painted its images. Before publishing, "
            "the run passed `vischain validate`: every task matches its schema, every answer names one of its "
            "choices, every image decodes and has a provenance line with an allowed licence. From `run.json` and "
            "`provenance.jsonl` (\"unknown\" where the run does not record it):\n\n" + table)


def quality_control_section(quality: QualityControl | None) -> str:
    """VisChainBench's three human steps as this run went through them: who took part, what they decided,
    how accurate annotators and quiz takers were per kind, and which tasks the dataset holds because of it."""
    if quality is None:
        return ""
    lines = ["## Quality control", ""]
    if not quality.reviewed:
        lines.append("**No human review.** No person checked these tasks: they passed `vischain validate`, and "
                     "verifier models (`vischain verify`, if it ran) only ranked them for review. Review them "
                     "(`vischain review`) before relying on them as a benchmark.")
        return "\n".join(lines)
    passed = sum(kind.passed for kind in quality.kinds)
    if quality.include_unreviewed:
        lines += [f"**Warning: published with `--include-unreviewed`.** {quality.published - passed} of the "
                  f"{quality.published} task(s) in this dataset were not accepted by a reviewer or did not pass the "
                  "quiz. The review's figures below describe the whole run, not a checked dataset.", ""]
    else:
        lines += [f"This dataset holds the {quality.published} of the run's {quality.tasks} task(s) that a reviewer "
                  f"accepted and that quiz takers then answered right at least {quality.quiz_threshold:.0%} of the "
                  "time, on the task's final revision.", ""]
    people = ", ".join(f"{n} {ROLE_NAMES.get(role, role)}" for role, n in sorted(quality.people.items()))
    lines.append(f"Human review (`vischain review`, VisChainBench's three steps): reviewers accepted, rejected or "
                 f"edited tasks with the verifier models' answers beside them; annotators answered them and flagged "
                 f"ambiguities; a separate group answered the revised tasks blind as a quiz, and tasks under the "
                 f"threshold went back to review. People who took part: {people or 'none recorded'}.")
    rows = [(k.kind, k.tasks, k.reviewed, k.accepted, k.edited, k.rejected, share_text(k.annotators),
             share_text(k.quiz), k.passed) for k in quality.kinds]
    lines += ["", _table(["kind", "tasks", "reviewed", "accepted", "edited", "rejected", "annotator accuracy",
                          "quiz accuracy", "accepted and passed"], rows)]
    return "\n".join(lines)


ROLE_NAMES = {"reviewer": "reviewer(s)", "annotator": "annotator(s)", "quiz": "quiz taker(s)"}


def _contents_section(kind_domains: Counter, config_rows: dict[str, int]) -> str:
    rows = [(kind, TASK_KINDS_TEXT[kind], domain, count) for (kind, domain), count in sorted(kind_domains.items())]
    configs = _table(["config", "rows"], list(config_rows.items()))
    stories = (f"\n\n{config_rows.get('stories', 0)} of {config_rows['itmr']} ITMR task(s) became stories "
               "(a story needs the task's plan.json for its scene descriptions)." if "itmr" in config_rows else "")
    return ("## Contents\n\nTasks per kind and domain (the domain comes from each task's `metadata`):\n\n"
            + _table(["kind", "what", "domain", "tasks"], rows) + "\n\nRows per config:\n\n" + configs + stories)


def _images_section(summary: LicenceSummary) -> str:
    breakdown = Counter((licence_label(line["licence"]), "yes" if line["licence"]["verified"] else "no (search filter)")
                        for line in summary.retrieved)
    lines = [f"## Images\n\n{len(summary.retrieved)} retrieved, {len(summary.synthetic)} synthetic.\n",
             _table(["licence", "verified", "images"], [(lic, ver, n) for (lic, ver), n in sorted(breakdown.items())])]
    if summary.synthetic:
        rows = [(line["file"], _generator_model(line), (line.get("generator") or {}).get("seed", "unknown"))
                for line in summary.synthetic]
        lines.append("\n### Synthetic images\n\nLicence: that of the generator model.\n\n"
                     + _table(["file", "generator model", "seed"], rows))
    return "\n".join(lines)


def _attribution_section(summary: LicenceSummary) -> str:
    if not summary.retrieved:
        return ""
    rows = [(line["file"], line.get("creator") or "unknown", licence_label(line["licence"]),
             line.get("page_url") or line.get("source_url") or line.get("provider") or "unknown")
            for line in summary.retrieved]
    return "## Attribution\n\nEvery retrieved image, its creator, licence and source:\n\n" + _table(
        ["file", "creator", "licence", "source"], rows)


def _loading_section(config_rows: dict[str, int], repo_id: str) -> str:
    first = next(iter(config_rows), "itmr")
    return ("## Loading\n\n```python\nfrom datasets import load_dataset\n\n"
            f"tasks = load_dataset(\"{repo_id}\", \"{first}\", split=\"{SPLIT}\")\n```\n\n"
            "Image fields decode to PIL images. Task fields mirror VisChainBench's `task.json`; `metadata` is a "
            "JSON string. `provenance` has one row per image (source, licence, creator); `stories` holds ImageChain "
            "stories (each ITMR task's correct images in order, with the planner's scene descriptions).")


def _table(header: list[str], rows: list[tuple]) -> str:
    """A Markdown table; cells are escaped so a `|` or newline in a creator's name cannot break it."""
    def cell(value) -> str:
        text = value if isinstance(value, str) else json.dumps(value) if isinstance(value, (dict, list)) else str(value)
        return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ").strip()

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(value) for value in row) + " |" for row in rows]
    return "\n".join(lines)
