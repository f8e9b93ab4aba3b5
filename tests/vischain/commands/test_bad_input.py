"""Bad input never shows a traceback: every field of task.json, provenance.jsonl, run.json and a
folder provider's licenses.jsonl, mutated (wrong type, missing, empty, huge, not UTF-8), gives an
error naming the file (and line), exit 1 (invalid data) or 2 (bad usage), and changes nothing."""

from __future__ import annotations

import asyncio
import json
import shutil
from dataclasses import replace
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from agents.retrieval.search import search_images
from agents.retrieval.search.settings import SearchSettings
from benchmark_data import DEMO_IMAGES, EXAMPLE_RUN
from graphs.generate.request import make_request
from graphs.profile import load_profile
from schemas.errors import UsageError
from schemas.licences import LicencePolicy
from tests.generate_helpers import folder_snapshot
from vischain.cli import app

runner = CliRunner()
HUGE = "x" * 200_000
REPLACEMENTS = [None, 0, -1, 2**70, 1.5, True, "", HUGE, [], [None], {}, {"x": 1}, "\u0000", "../../etc/passwd"]
MUTATIONS = [("replace", value) for value in REPLACEMENTS] + [("delete", None)]


def paths(value, prefix=()):
    """Every path into a JSON value, containers included."""
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from paths(item, (*prefix, index))


def mutate(value, path, mutation):
    if not path:
        return mutation[1] if mutation[0] == "replace" else None
    value = json.loads(json.dumps(value))
    parent = value
    for part in path[:-1]:
        parent = parent[part]
    if mutation[0] == "delete":
        del parent[path[-1]]
    else:
        parent[path[-1]] = mutation[1]
    return value


def assert_clean_failure(result, files: list[str]):
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    assert result.exit_code in (0, 1, 2)
    if result.exit_code:
        assert any(name in result.output for name in files), result.output[-600:]


TASK_FILES = sorted(str(p.relative_to(EXAMPLE_RUN)) for p in EXAMPLE_RUN.glob("tasks/*/*/task.json"))
JSON_FILES = [*TASK_FILES, "run.json"]


@st.composite
def json_file_mutations(draw):
    name = draw(st.sampled_from(JSON_FILES))
    value = json.loads((EXAMPLE_RUN / name).read_text())
    path = draw(st.sampled_from(list(paths(value))))
    return name, path, draw(st.sampled_from(MUTATIONS))


@settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(case=json_file_mutations())
def test_a_mutated_task_or_run_json_is_reported_not_crashed_on(tmp_path_factory, case):
    name, path, mutation = case
    run = tmp_path_factory.mktemp("run") / "run"
    shutil.copytree(EXAMPLE_RUN, run)
    value = mutate(json.loads((run / name).read_text()), path, mutation)
    (run / name).write_text(json.dumps(value))
    before = folder_snapshot(run)
    for command in (["validate", str(run)], ["eval", str(run), "--model", "tiny:nothing"],
                    ["export", str(run), "--format", "jsonl-messages", "--out", str(run.parent / "export")]):
        result = runner.invoke(app, command, env={"COLUMNS": "400"})
        assert_clean_failure(result, [Path(name).name, "run.json", "task.json", "--model", "--format", "RUN"])
    after = folder_snapshot(run)
    assert {name: after.get(name) for name in before} == before  # new outputs may appear; nothing is lost


@settings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(number=st.integers(0, 23), field=st.sampled_from(["file", "sha256", "phash", "provider", "licence",
                                                           "synthetic", "generator", "validator", "source_url"]),
       mutation=st.sampled_from(MUTATIONS))
def test_a_mutated_provenance_line_is_named_by_file_and_line(tmp_path_factory, number, field, mutation):
    run = tmp_path_factory.mktemp("run") / "run"
    shutil.copytree(EXAMPLE_RUN, run)
    lines = (run / "provenance.jsonl").read_text().splitlines()
    line = json.loads(lines[number])
    lines[number] = json.dumps(mutate(line, (field,), mutation))
    (run / "provenance.jsonl").write_text("\n".join(lines) + "\n")
    before = folder_snapshot(run)
    result = runner.invoke(app, ["validate", str(run)], env={"COLUMNS": "400"})
    # The line itself (provenance.jsonl:N) or the task image it no longer vouches for is named.
    assert_clean_failure(result, [f"provenance.jsonl:{number + 1}", "task.json"])
    assert folder_snapshot(run) == before


def test_files_that_are_not_utf8_or_not_json_are_named(tmp_path):
    for name in [*JSON_FILES, "provenance.jsonl"]:
        for data in (b"\xff\xfe\x00garbage", b"{not json", b""):
            run = tmp_path / f"{len(list(tmp_path.iterdir()))}"
            shutil.copytree(EXAMPLE_RUN, run)
            (run / name).write_bytes(data)
            before = folder_snapshot(run)
            result = runner.invoke(app, ["validate", str(run)], env={"COLUMNS": "400"})
            assert_clean_failure(result, [Path(name).name, "no provenance line"])  # an empty log vouches for nothing
            assert folder_snapshot(run) == before


@settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
@given(field=st.sampled_from(["file", "licence", "license", "version", "creator", "title", "page_url",
                              "source_url", "attribution"]),
       mutation=st.sampled_from(MUTATIONS), number=st.integers(0, 23))
def test_a_mutated_folder_listing_is_refused_up_front_naming_file_and_line(tmp_path_factory, field, mutation,
                                                                           number):
    """`vischain generate` checks the listing before it writes anything (no model runs here: the
    check is the request's); a listing that passes is searched without a crash."""
    folder = tmp_path_factory.mktemp("images")
    for image in DEMO_IMAGES.glob("*.png"):
        shutil.copy(image, folder / image.name)
    lines = (DEMO_IMAGES / "licenses.jsonl").read_text().splitlines()
    lines[number] = json.dumps(mutate(json.loads(lines[number]), (field,), mutation)) \
        if field in json.loads(lines[number]) or mutation[0] == "replace" else lines[number]
    (folder / "licenses.jsonl").write_text("\n".join(lines) + "\n")
    profile = replace(load_profile("demo"), search=replace(load_profile("demo").search, folder=folder))
    out = folder.parent / "out"
    before = folder_snapshot(folder)
    try:
        make_request(domain="daily", tasks=1, kind="mixed", profile=profile, out=out, concurrency=1, seed=0,
                     shard=None)
    except UsageError as err:
        assert "licenses.jsonl" in str(err) and f":{number + 1}: " in str(err) and "\n" not in str(err)
    else:
        found = asyncio.run(search_images("gear", 3, LicencePolicy(), providers=("folder",),
                                          settings=SearchSettings(folder=folder)))
        assert found.candidates or found.refused
    assert folder_snapshot(folder) == before and not out.exists()
