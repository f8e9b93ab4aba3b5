import json
from html.parser import HTMLParser

from typer.testing import CliRunner

from schemas.schema_check import require
from schemas.task import load_tasks
from tests.graphs.test_verify import corrupt_itmr_truth
from tests.oracle_runs import Oracle, make_run
from vischain.cli import app

runner = CliRunner()
WIDE = {"COLUMNS": "200"}
EVIL = "<script>alert('x')</script> & co"


class Page(HTMLParser):
    """Collects section ids, image sources and the text of a page."""

    def __init__(self):
        super().__init__()
        self.sections, self.images, self.links, self.text = [], [], [], []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "section":
            self.sections.append(attrs["id"])
        if tag == "img":
            self.images.append(attrs["src"])
        if tag in ("link", "script"):
            self.links.append(tag)

    def handle_data(self, data):
        self.text.append(data)


def test_verify_ranks_the_corrupted_task_first_and_writes_a_self_contained_report(tmp_path):
    root = make_run(tmp_path / "run", per_kind=2)
    weak_policy = lambda model, task, q: "wrong" if (model, task, q) == ("weak", "iomr-0001", 1) else "right"
    oracle = Oracle(load_tasks(root), tmp_path / "labels", weak_policy)
    corrupt_itmr_truth(root / "tasks" / "itmr" / "itmr-0001" / "task.json")
    task_file = root / "tasks" / "itmr" / "itmr-0002" / "task.json"
    task = json.loads(task_file.read_text())
    task["questions"][1]["question"] = EVIL  # text a reviewer must see as text, never as markup
    task_file.write_text(json.dumps(task))
    with oracle:
        url = oracle.server.base_url
        result = runner.invoke(app, ["verify", str(root), "--model", f"openai:good@{url}",
                                     "--model", f"openai:weak@{url}"], env=WIDE)
    assert result.exit_code == 0, result.output
    priority = [json.loads(s) for s in (root / "verify" / "priority.jsonl").read_text().splitlines()]
    for entry in priority:
        require("priority", entry, "priority.jsonl")
    assert [(e["kind"], e["task_id"]) for e in priority[:2]] == [("itmr", "itmr-0001"), ("iomr", "iomr-0001")]
    assert "review first" in result.output and "itmr-0001" in result.output

    html = (root / "verify" / "report.html").read_text()
    page = Page()
    page.feed(html)
    assert page.sections == [f"{e['kind']}-{e['task_id']}" for e in priority]  # every task, in priority order
    assert page.images and all(src.startswith("data:image/jpeg;base64,") for src in page.images)
    assert page.links == [] and "http://" not in html.replace(url, "")
    assert EVIL in "".join(page.text) and "<script>" not in html
    # 6 tasks: 5 + 4 candidates (ITMR x2: 3+3), ICIR x2: 3, IOMR x2: start + 2 conditions + 6 options.
    assert len(page.images) == 2 * 6 + 2 * 3 + 2 * 9


def test_the_profile_in_run_json_is_used_and_an_unknown_one_is_one_line(tmp_path):
    root = make_run(tmp_path / "run")  # run.json names profile "example", which does not exist
    result = runner.invoke(app, ["verify", str(root)], env=WIDE)
    assert result.exit_code == 2 and "unknown profile 'example'" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_a_profile_names_weighted_verifiers(tmp_path):
    root = make_run(tmp_path / "run")
    with Oracle(load_tasks(root), tmp_path / "labels") as oracle:
        profile = tmp_path / "p.yaml"
        profile.write_text(
            "description: test\nmodels:\n  planner: {model: a}\n  keywords: {model: a}\n"
            "  validator: {model: a}\n"
            f"  verifiers:\n    - {{model: good, backend: openai, base_urls: ['{oracle.server.base_url}'],"
            " weight: 2.5}\n"
            "painter: {model: b}\nsearch: {providers: [folder]}\n")
        result = runner.invoke(app, ["verify", str(root), "--profile", str(profile)], env=WIDE)
    assert result.exit_code == 0, result.output
    scores = json.loads((root / "verify" / "scores.json").read_text())
    assert scores["models"] == {"openai:good": {"weight": 2.5}}
    assert scores["scores"]["openai:good"]["overall"]["ca"] == 1.0


def test_a_folder_that_is_not_a_run_is_refused(tmp_path):
    result = runner.invoke(app, ["verify", str(tmp_path)], env=WIDE)
    assert result.exit_code == 2 and "not a run folder" in result.output
