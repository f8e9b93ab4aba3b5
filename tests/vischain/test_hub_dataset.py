"""`vischain publish`: the dataset folder loads back as the run, the card tells the truth, the upload
sends that folder as one commit. The Hub is faked only at huggingface_hub's HTTP client."""

import hashlib
import json
import shutil
from pathlib import Path

import httpx2
import imagehash
import numpy as np
import pytest
from datasets import load_dataset
from huggingface_hub import DatasetCard, constants
from huggingface_hub.utils import _http
from PIL import Image
from typer.testing import CliRunner

from benchmark_data import EXAMPLE_RUN
from schemas.task import task_images
from tests.oracle_runs import marked
from vischain.cli import app
from vischain.dataset_card import summarise_licences
from vischain.hub_dataset import build_dataset_folder

EXAMPLE = EXAMPLE_RUN
TOKEN = "hf_secret_test_token"
runner = CliRunner()


# ---- A small run: the example run plus a second ITMR task with mixed licences ---------------------

def make_run(root: Path) -> Path:
    """example_run + itmr-0002 (domain cooking) whose images are CC BY, CC BY-SA unverified, synthetic."""
    run = root / "run"
    shutil.copytree(EXAMPLE, run)
    second = run / "tasks" / "itmr" / "itmr-0002"
    shutil.copytree(run / "tasks" / "itmr" / "itmr-0001", second)
    task = json.loads((second / "task.json").read_text())
    task["metadata"] = json.dumps({"domain": "cooking", "topic": "baking bread"})
    (second / "task.json").write_text(json.dumps(task))
    lines = [json.loads(line) for line in (run / "provenance.jsonl").read_text().splitlines()]
    extra = [{**line, "file": line["file"].replace("itmr-0001", "itmr-0002")} for line in lines[:6]]
    for line in extra:  # other images than itmr-0001's: a run may use an image once
        image = run / line["file"]
        with Image.open(image) as picture:
            picture = marked(picture.convert("RGB"), line["file"])
        picture.save(image)
        line.update(sha256=hashlib.sha256(image.read_bytes()).hexdigest(), phash=str(imagehash.phash(picture)))
    by = {"id": "by", "version": "4.0", "url": "https://creativecommons.org/licenses/by/4.0/", "verified": True,
          "filter": None}
    extra[0].update(licence=by, creator="Ada | Lovelace", page_url="https://example.org/photo/1", provider="openverse")
    extra[1].update(licence={**by, "id": "by-sa", "verified": False, "filter": "ddgs:Share",
                             "url": "https://creativecommons.org/licenses/by-sa/4.0/"},
                    creator="B. Smith", page_url="https://example.org/photo/2", provider="ddgs")
    extra[2].update(licence=None, synthetic=True, provider="painter", creator=None,
                    generator={"model": "tiny-sd", "seed": 3, "prompt": "a clear photo of bread"})
    (run / "provenance.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines + extra))
    config = json.loads((run / "run.json").read_text())
    config["config"]["licences"]["accept_unverified"] = True  # the run admitted the search-filter licence
    config["config"]["prompts_hash"] = "abc123"
    (run / "run.json").write_text(json.dumps(config))
    return run


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    root = tmp_path_factory.mktemp("publish")
    run = make_run(root)
    # max_shard_bytes=1: every image-bearing row gets its own shard, so sharding is exercised too.
    folder = build_dataset_folder(run, root / "dataset", max_shard_bytes=1)
    return run, folder, root / "hf-cache"


def pixels(image) -> np.ndarray:
    return np.asarray(image.convert("RGBA"))


def file_pixels(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return pixels(image)


def value_at(row, parts: list[str]):
    for part in parts:
        row = row[int(part)] if isinstance(row, list) else row[part]
    return row


# ---- The dataset folder --------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["itmr", "icir", "iomr"])
def test_each_task_config_loads_back_as_the_run_tasks_with_the_same_pixels(published, kind):
    run, folder, cache = published
    rows = load_dataset(str(folder.path), kind, split="test", cache_dir=str(cache))
    task_dirs = sorted((run / "tasks" / kind).iterdir())
    assert [row["task_id"] for row in rows] == [d.name for d in task_dirs]
    for row, task_dir in zip(rows, task_dirs):
        task = json.loads((task_dir / "task.json").read_text())
        assert row["domain"] == json.loads(task["metadata"])["domain"]
        for pointer, name in task_images(task):
            *parents, last = pointer.strip("/").split("/")
            container = value_at(row, parents)
            assert np.array_equal(pixels(container[last]), file_pixels(task_dir / name)), pointer
            container[last] = name  # then compare the rest as plain JSON
        assert {k: v for k, v in row.items() if k not in ("task_id", "domain")} == task


def test_images_are_embedded_and_rows_are_sharded(published):
    _, folder, _ = published
    assert sorted(p.name for p in (folder.path / "data" / "itmr").iterdir()) == [
        "test-00000-of-00002.parquet", "test-00001-of-00002.parquet"]
    assert folder.rows == {"itmr": 2, "icir": 1, "iomr": 1, "provenance": 30, "stories": 2}
    import pyarrow.parquet as pq

    choice = pq.read_table(folder.path / "data/itmr/test-00000-of-00002.parquet")["questions"][0][0]["choices"][0]
    assert choice["image"]["bytes"].as_py()[:8] == b"\x89PNG\r\n\x1a\n"  # bytes inside, not a path to a file
    assert choice["image"]["path"].as_py() == "q1_a.png"


def test_provenance_config_is_the_per_image_licence_record(published):
    run, folder, cache = published
    rows = load_dataset(str(folder.path), "provenance", split="test", cache_dir=str(cache))
    by_file = {row["file"]: row for row in rows}
    lines = [json.loads(line) for line in (run / "provenance.jsonl").read_text().splitlines()]
    assert sorted(by_file) == sorted(line["file"] for line in lines)
    row = by_file["tasks/itmr/itmr-0002/q1_b.png"]
    assert (row["kind"], row["task_id"], row["licence"]["id"], row["licence"]["verified"]) == (
        "itmr", "itmr-0002", "by-sa", False)
    synthetic = by_file["tasks/itmr/itmr-0002/q1_c.png"]
    assert synthetic["synthetic"] and synthetic["licence"] is None
    assert json.loads(synthetic["generator"]) == {"model": "tiny-sd", "seed": 3, "prompt": "a clear photo of bread"}


def test_stories_are_each_itmr_tasks_correct_images_with_the_plans_scene_descriptions(published):
    run, folder, cache = published
    stories = load_dataset(str(folder.path), "stories", split="test", cache_dir=str(cache))
    assert [s["story_id"] for s in stories] == ["run/itmr/itmr-0001", "run/itmr/itmr-0002"]
    task_dir = run / "tasks" / "itmr" / "itmr-0001"
    plan = json.loads((task_dir / "plan.json").read_text())
    scenes = stories[0]["scenes"]
    assert [s["description"] for s in scenes] == [step["scene_description"] for step in plan["steps"]]
    for scene, correct in zip(scenes, ["q1_a.png", "q2_a.png"]):
        assert len(scene["frames"]) == 1
        assert np.array_equal(pixels(scene["frames"][0]), file_pixels(task_dir / correct))


# ---- The card ------------------------------------------------------------------------------------

def test_the_card_parses_and_states_licence_counts_and_attribution(published):
    _, folder, _ = published
    card = DatasetCard.load(folder.path / "README.md")
    # by-sa is the most restrictive retrieved licence; the painted image's model (tiny-sd) has no licence in run.json
    assert card.data.license == ["cc-by-sa-4.0", "other"]
    assert card.data.license_name == "unknown-generator-licence"
    assert [c["config_name"] for c in card.data.configs] == ["itmr", "icir", "iomr", "provenance", "stories"]
    assert card.data.configs[0]["data_files"] == [{"split": "test", "path": "data/itmr/test-*.parquet"}]
    assert "visual-question-answering" in card.data.task_categories and card.data.size_categories == ["n<1K"]
    text = card.text
    assert "**CC BY-SA 4.0**" in text
    assert "1 image licence(s) are unverified" in text and "tasks/itmr/itmr-0002/q1_b.png" in text
    assert "29 retrieved, 1 synthetic" in text and "`tiny-sd`" in text
    assert "| itmr | image-text multi-turn | cooking | 1 |" in text
    assert "| prompts hash | abc123 |" in text and "| models | unknown |" in text
    assert "| tasks/itmr/itmr-0002/q1_a.png | Ada \\| Lovelace | CC BY 4.0 | https://example.org/photo/1 |" in text
    attribution = text.split("## Attribution")[1].split("## Loading")[0]
    assert attribution.count("| tasks/") == 29  # every retrieved image, no synthetic one


def line(licence_id, version="4.0", verified=True, synthetic=False):
    licence = None if synthetic else {"id": licence_id, "version": version, "url": None, "verified": verified}
    return {"file": f"tasks/itmr/t/{licence_id}.png", "licence": licence, "synthetic": synthetic}


@pytest.mark.parametrize("ids, expected", [
    (["cc0", "pdm"], "cc0-1.0"),
    (["pdm"], "cc0-1.0"),
    (["cc0", "by", "by-sa"], "cc-by-sa-4.0"),
    (["by-sa", "by-nc"], "cc-by-nc-4.0"),
    (["by-nc-sa", "by-nd", "by"], "cc-by-nd-4.0"),
    (["by-nd", "by-nc-nd"], "cc-by-nc-nd-4.0"),
])
def test_the_dataset_licence_is_the_most_restrictive_image_licence(ids, expected):
    assert summarise_licences([line(i) for i in ids]).hf_id == expected


def test_a_licence_the_hub_has_no_id_for_becomes_other_with_its_name():
    summary = summarise_licences([line("by-nd", version="3.0"), line("x", synthetic=True)])
    assert (summary.hf_id, summary.name, len(summary.synthetic)) == ("other", "CC BY-ND 3.0", 1)
    assert summarise_licences([line("by", version="2.0")]).hf_id == "cc-by-2.0"


# ---- The upload, against a fake Hub at the HTTP client ------------------------------------------

class FakeHub:
    """Answers the Hub API calls create_repo, list_repo_files, preupload and commit make; records them."""

    def __init__(self, status: int = 200):
        self.status, self.requests, self.commit = status, [], None

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(request)
        path = request.url.path
        if self.status != 200:
            return httpx2.Response(self.status, json={"error": "Invalid credentials in Authorization header"})
        if path == "/api/repos/create":
            return httpx2.Response(200, json={"url": "http://127.0.0.1:9/datasets/me/chain"})
        if path.startswith("/api/datasets/me/chain/tree/"):  # what an earlier publish left
            return httpx2.Response(200, json=[{"type": "file", "path": p, "size": 1, "oid": "0" * 40} for p in
                                              (".gitattributes", "README.md", "data/itmr/test-00000-of-00009.parquet")])
        if path.startswith("/api/datasets/me/chain/branch/"):
            return httpx2.Response(200, json={})
        if path == "/api/validate-yaml":
            return httpx2.Response(200, json={})
        if path.startswith("/api/datasets/me/chain/preupload/"):
            files = json.loads(request.read())["files"]
            return httpx2.Response(200, json={"files": [{"path": f["path"], "uploadMode": "regular",
                                                         "shouldIgnore": False} for f in files]})
        if path.startswith("/api/datasets/me/chain/commit/"):
            self.commit = [json.loads(line) for line in request.read().splitlines()]
            return httpx2.Response(200, json={"commitUrl": "http://127.0.0.1:9/datasets/me/chain/commit/" + "a" * 40,
                                              "commitOid": "a" * 40, "pullRequestUrl": None})
        return httpx2.Response(404, json={"error": f"fake hub: no route for {request.method} {path}"})


@pytest.fixture
def fake_hub(monkeypatch):
    hub = FakeHub()
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    # The real client with its real request hook, but a transport that never leaves the process; the
    # endpoint is a closed local port in case anything bypassed it.
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    _http.set_client_factory(lambda: httpx2.Client(transport=httpx2.MockTransport(hub), follow_redirects=True,
                                                   event_hooks={"request": [_http.hf_request_event_hook]}))
    yield hub
    _http.set_client_factory(_http.default_client_factory)


def test_publish_to_a_repo_sends_the_folder_as_one_commit(tmp_path, fake_hub):
    run = make_run(tmp_path)
    result = runner.invoke(app, ["publish", str(run), "--repo", "me/chain", "--private"])
    assert result.exit_code == 0, result.output
    assert "published me/chain" in result.output and TOKEN not in result.output
    create = next(r for r in fake_hub.requests if r.url.path == "/api/repos/create")
    assert json.loads(create.read()) == {"name": "chain", "organization": "me", "visibility": "private",
                                         "type": "dataset"}
    assert {r.url.host for r in fake_hub.requests} == {"127.0.0.1"}
    # (huggingface_hub also asks for its agent-harness list, unauthenticated, on its own account)
    api_calls = [r for r in fake_hub.requests if r.url.path.startswith(("/api/repos/", "/api/datasets/"))]
    assert len(api_calls) == 4 and all(r.headers["authorization"] == f"Bearer {TOKEN}" for r in api_calls)
    header, *operations = fake_hub.commit
    assert header["value"]["summary"] == ("Publish run with vischain "
                                          "(itmr 2, icir 1, iomr 1, provenance 30, stories 2)")
    added = {op["value"]["path"] for op in operations if op["key"] == "file"}
    assert added == {"README.md", *(f"data/{c}/test-00000-of-00001.parquet"
                                    for c in ("itmr", "icir", "iomr", "provenance", "stories"))}
    assert [op["value"]["path"] for op in operations if op["key"] == "deletedFile"] == [
        "data/itmr/test-00000-of-00009.parquet"]  # the stale shard goes; README.md is overwritten
    import base64

    readme = next(op for op in operations if op["value"]["path"] == "README.md")
    assert "license:\n- cc-by-sa-4.0\n- other\n" in base64.b64decode(readme["value"]["content"]).decode()


def test_a_hub_error_is_one_line_naming_the_repo_and_never_shows_the_token(tmp_path, fake_hub):
    fake_hub.status = 401
    result = runner.invoke(app, ["publish", str(make_run(tmp_path)), "--repo", "me/chain"])
    assert result.exit_code == 2
    assert "--repo me/chain: create_repo failed: 401 Invalid credentials" in result.output
    assert len(result.output.strip().splitlines()) == 1 and TOKEN not in result.output


def test_a_revision_is_created_as_a_branch_and_committed_to(tmp_path, fake_hub):
    result = runner.invoke(app, ["publish", str(make_run(tmp_path)), "--repo", "me/chain", "--revision", "v1"])
    assert result.exit_code == 0, result.output
    paths = [r.url.path for r in fake_hub.requests]
    assert "/api/datasets/me/chain/branch/v1" in paths and "/api/datasets/me/chain/commit/v1" in paths


# ---- Refusals ------------------------------------------------------------------------------------

def test_a_run_that_fails_validation_is_refused_and_nothing_is_written(tmp_path):
    run = make_run(tmp_path)
    (run / "tasks" / "iomr" / "iomr-0001" / "s1_A.png").unlink()
    result = runner.invoke(app, ["publish", str(run), "--local-dir", str(tmp_path / "out")],
                           env={"COLUMNS": "300"})
    assert result.exit_code == 1
    assert "image file not found: s1_A.png" in result.output and "refusing a run that fails validation" in result.output
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("flags", [[], ["--repo", "me/x", "--local-dir", "out"]])
def test_exactly_one_of_repo_and_local_dir(flags):
    result = runner.invoke(app, ["publish", str(EXAMPLE), *flags])
    assert result.exit_code == 2 and "exactly one of --repo OWNER/NAME" in result.output


def test_a_non_empty_local_dir_is_refused(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "old.parquet").write_bytes(b"x")
    result = runner.invoke(app, ["publish", str(EXAMPLE), "--local-dir", str(tmp_path / "out")])
    assert result.exit_code == 2 and "--local-dir" in result.output and "not an empty folder" in result.output
