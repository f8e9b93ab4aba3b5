"""`vischain eval PATH --model M [--model M2 ...]`: score models on a benchmark with the VisChainBench protocol.

PATH is a run folder or any folder in the VisChainBench layout (checked without provenance). The
answers go to OUT/answers.jsonl as they come, so a killed eval resumes where it stopped; the CA /
TC / format-error figures go to OUT/scores.json and a table. The graph is graphs/verify.py.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from agents.backends.factory import ModelSpec, parse_model_arg
from agents.backends.preflight import Prompt, preflight
from agents.protocol.prompts import PROMPTS
from agents.protocol.turns import HISTORY_MODES, ICIR_TEXT_MODES, label_script, task_script, user_turn
from graphs.profile import load_profile
from graphs.verify import EvalSettings, VerifyResult, model_name, run_verify
from schemas.errors import EXIT_INVALID, UsageError
from schemas.rules import validate_path
from schemas.task import TaskItem, load_tasks
from vischain.error_lines import fail, one_line_errors
from vischain.progress import progress_bar

console = Console(emoji=False)

ModelFlag = Annotated[Optional[list[str]], typer.Option(
    "--model", help="A model to run (repeatable): tiny:NAME, org/name, openai:NAME@URL, vllm:org/name. "
                    "Replaces the profile's verifiers.")]
ProfileFlag = Annotated[Optional[str], typer.Option(help="A profile name or YAML path; its models.verifiers run.")]
HistoryFlag = Annotated[str, typer.Option(help="What later turns see: the model's own replies (model), the "
                                               "ground truth (gold), or stop at the first error (stop_on_error).")]
ConcurrencyFlag = Annotated[int, typer.Option(min=1, help="Tasks in flight per model (and, for --model "
                                                          "endpoints, requests in flight per endpoint).")]
MaxTokensFlag = Annotated[int, typer.Option(min=1, help="Reply budget per question.")]
IcirTextFlag = Annotated[str, typer.Option(help="ICIR tasks without words (none: the paper builds ICIR \"without "
                                                "any text instruction\") or with their task and step texts (full).")]


def check_icir_text(icir_text: str) -> None:
    if icir_text not in ICIR_TEXT_MODES:
        raise UsageError(f"--icir-text: {icir_text!r} is not one of {', '.join(ICIR_TEXT_MODES)}")


def load_benchmark(path: Path) -> list[TaskItem]:
    """The tasks under PATH, or exit 1 naming the first validation problem."""
    if not path.exists():
        fail(f"PATH: no such file or folder: {path}")
    is_run = (path / "run.json").is_file()
    report = validate_path(path, check_provenance=is_run)  # foreign folders carry no provenance
    if report.problems:
        more = f" (and {len(report.problems) - 1} more)" if len(report.problems) > 1 else ""
        fail(f"{path}: not a valid benchmark: {report.problems[0]}{more}; see `vischain validate {path}`",
             EXIT_INVALID)
    tasks = load_tasks(path)
    if not tasks:
        fail(f"PATH: no task.json found under {path}")
    return tasks


def resolve_models(flags: list[str] | None, profile: str | None, concurrency: int) -> list[tuple[ModelSpec, float]]:
    """(spec, weight) of every model to run: the --model flags, else the profile's verifiers."""
    if flags:
        # A --model endpoint has no concurrency of its own: let it take what --concurrency sends.
        specs = [(dataclasses.replace(spec, concurrency=max(spec.concurrency, concurrency)), 1.0)
                 for spec in map(parse_model_arg, flags)]
    elif profile:
        specs = profile_verifiers(profile)
    else:
        raise UsageError("--model: name at least one model (or a profile with --profile)")
    names = [model_name(spec) for spec, _ in specs]
    for name in names:
        if names.count(name) > 1:
            raise UsageError(f"--model: {name} is named twice")
    return specs


def profile_verifiers(name: str) -> list[tuple[ModelSpec, float]]:
    verifiers = load_profile(name).verifiers
    if not verifiers:
        raise UsageError(f"--profile {name}: models.verifiers is empty; name models with --model")
    return [(v.spec, v.weight) for v in verifiers]


def last_turn_prompts(tasks: list[TaskItem], labels_dir: Path, max_tokens: int,
                      icir_text: str = "none") -> list[Prompt]:
    """Each task's largest prompt: its whole conversation before the last answer, as `converse` builds it
    (gold answers in the history), with room for every reply at the full budget."""
    prompts = []
    for item in tasks:
        script = task_script(item, icir_text)
        labelled = label_script(script, labels_dir)
        messages, lead = [], script.intro
        for question in script.examples + script.questions:
            messages.append(user_turn(question, labelled, lead, script.label_kind))
            messages.append({"role": "assistant", "content": PROMPTS["gold_answer"].format(label=question.truth)})
            lead = None
        messages.pop()  # the last answer is what the model writes
        prompts.append(Prompt(f"task {item.kind}/{item.task_id}", messages, max_tokens * len(script.questions)))
    return prompts


def check_prompts_fit(tasks: list[TaskItem], specs: list[tuple[ModelSpec, float]], out: Path, max_tokens: int,
                      icir_text: str = "none") -> None:
    """The preflight: every model can take every task's largest prompt, or a one-line error before any call."""
    prompts = last_turn_prompts(tasks, out / "labels", max_tokens, icir_text)
    for spec, _ in specs:
        preflight(spec, prompts)


def run_models(path: Path, out: Path, tasks: list[TaskItem], specs: list[tuple[ModelSpec, float]],
               settings: EvalSettings, rank: bool) -> VerifyResult:
    """Run verify's answer/score/rank steps (inside one_line_errors: a failed call is one line;
    answers so far are kept), with a bar over every (model, task). The preflight runs first."""
    check_prompts_fit(tasks, specs, out, settings.max_tokens, settings.icir_text)
    with progress_bar("answering", total=len(specs) * len(tasks), unit="model x task") as advance:
        return asyncio.run(run_verify(path, out, tasks, specs, settings, rank, on_done=advance))


def scores_table(scores: dict) -> Table:
    table = Table(title=f"VisChainBench protocol, history={scores['history']}, "
                        f"icir-text={scores.get('icir_text', 'full')}, prompts {scores['prompt_hash'][:12]}")
    for column in ("model", "scope", "CA [95% CI]", "TC [95% CI]", "format errors", "questions", "tasks"):
        table.add_column(column, justify="left" if column in ("model", "scope") else "right")
    for model, result in scores["scores"].items():
        rows = [("overall (micro)", result["overall"]), ("overall (macro over kinds)", result["overall_macro"])]
        rows += [(kind, fig) for kind, fig in result["by_kind"].items()]
        rows += [(f"domain {domain}", fig) for domain, fig in result["by_domain"].items()]
        for scope, fig in rows:
            table.add_row(model, scope, _percent(fig, "ca"), _percent(fig, "tc"),
                          str(fig.get("format_errors", "")), str(fig.get("questions", "")), str(fig.get("tasks", "")))
    return table


def _percent(fig: dict, name: str) -> str:
    low, high = fig[f"{name}_ci"]
    return f"{100 * fig[name]:.1f} [{100 * low:.1f}, {100 * high:.1f}]"


def evaluate(
    path: Annotated[Path, typer.Argument(help="A run folder or any folder in the VisChainBench layout.")],
    model: ModelFlag = None,
    profile: ProfileFlag = None,
    history: HistoryFlag = "model",
    out: Annotated[Optional[Path], typer.Option(help="Output folder; default PATH/verify for a run folder.")] = None,
    concurrency: ConcurrencyFlag = 8,
    max_tokens: MaxTokensFlag = 256,
    icir_text: IcirTextFlag = "none",
):
    """Score models on a benchmark: CA, TC and format errors per kind and domain, with 95% intervals."""
    with one_line_errors():
        if history not in HISTORY_MODES:
            raise UsageError(f"--history: {history!r} is not one of {', '.join(HISTORY_MODES)}")
        check_icir_text(icir_text)
        tasks = load_benchmark(path)
        if out is None:
            if not (path / "run.json").is_file():
                raise UsageError(f"--out: required when PATH is not a run folder ({path} has no run.json)")
            out = path / "verify"
        specs = resolve_models(model, profile, concurrency)
        settings = EvalSettings(history=history, concurrency=concurrency, max_tokens=max_tokens, icir_text=icir_text)
        result = run_models(path, out, tasks, specs, settings, rank=False)
    scores = json.loads(Path(result.scores_file).read_text())
    console.print(scores_table(scores))
    console.print(f"{result.new_answers} new answer(s), {result.model_calls} model call(s); "
                  f"answers: {out / 'answers.jsonl'}; scores: {result.scores_file}", highlight=False)
