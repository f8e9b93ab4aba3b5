"""`imagechain eval` over Mementos (Table 3): scripted generator and extractor servers, the chain answered turn by
turn, per-domain synonym graphs, the paper's Table 3 beside ours, resume; a tiny in-process run; bad recipes;
`imagechain data convert-synonyms`."""

import json
import pickle
import re

import pytest
from typer.testing import CliRunner

from tests.imagechain.mementos_fixtures import write_mementos
from tests.servers import FaultyEndpoint, completion
from vischain.imagechain_cli import app

runner = CliRunner()


def _images(body) -> int:
    return sum(1 for m in body["messages"] if isinstance(m["content"], list)
               for part in m["content"] if part["type"] == "image_url")


def generator(body):
    return completion(f"seen {_images(body)} images.")


def extractor(body):
    # Behaviours: "seen k images" -> "seek"; the reference holds see1 and see2 for every sequence.
    prediction = body["messages"][0]["content"][0]["text"].split("PREDICTION: ")[1]
    lists = {"reference_objects": ["bear"], "reference_behaviours": ["see1", "see2"], "prediction_objects": ["bear"],
             "prediction_behaviours": [f"see{k}" for k in re.findall(r"seen (\d+) images", prediction)]}
    return completion(json.dumps(lists))


@pytest.fixture(scope="module")
def mementos(tmp_path_factory):
    return write_mementos(tmp_path_factory.mktemp("Mementos"))


def write_recipe(tmp_path, source, model, extractor_url, **extra):
    graphs = tmp_path / "synonyms"
    graphs.mkdir(exist_ok=True)
    (graphs / "comics-behaviour.json").write_text(json.dumps(
        {"format": "imagechain-synonym-graph", "version": 1, "domain": "comics", "kind": "behaviour",
         "graph": {"see3": {"": ["see2"]}}}))
    recipe = {"name": "t3", "benchmark": "mementos", "source": str(source), "model": model,
              "variants": ["MLLM", "ImageChain"], "out": str(tmp_path / "out"), "scene_visual": "frame",
              "generation": {"max_new_tokens": 8}, "concurrency": 2, "mementos": {"domains": ["comics"]},
              "cue_f1": {"extractor": f"openai:x@{extractor_url}", "graphs": str(graphs)}, **extra}
    (tmp_path / "r.yaml").write_text(json.dumps(recipe))
    return tmp_path / "r.yaml"


def test_table3_run_scores_each_domain_with_its_graphs_and_resumes(mementos, tmp_path):
    with FaultyEndpoint(generator) as gen, FaultyEndpoint(extractor) as ext:
        recipe = write_recipe(tmp_path, mementos, f"openai:gen@{gen.base_url}", ext.base_url)
        result = runner.invoke(app, ["eval", "--recipe", str(recipe)])
        assert result.exit_code == 0, result.output
        # MLLM: one call per sequence; ImageChain: one per frame (3 + 2), each after its own earlier answers.
        assert (gen.requests, ext.requests) == (2 + 5, 4)
        records = {(r["variant"], r["story_id"]): r for r in map(json.loads, (tmp_path / "out" / "predictions.jsonl")
                                                                   .read_text().splitlines())}
        chain = records[("ImageChain", "comics/cmc_10.png")]
        assert chain["turns"] == ["seen 1 images.", "seen 2 images.", "seen 3 images."]
        assert chain["text"] == "seen 1 images. seen 2 images. seen 3 images."
        assert chain["params"]["chain_output"] == "concatenate" and chain["domain"] == "comics"
        assert records[("MLLM", "comics/cmc_10.png")]["text"] == "seen 3 images."
        row = {r["variant"]: r["cells"]["comics"] for r in json.loads((tmp_path / "out" / "results.json").read_text())
               ["rows"]}
        # MLLM: see3 maps onto see2 through the comics graph: P 100, R 50 for both sequences.
        assert row["MLLM"]["behaviour"] == {"n": 2, "precision": 100.0, "recall": 50.0, "f1": 66.67}
        assert row["ImageChain"]["behaviour"]["f1"] == 100.0 and row["ImageChain"]["object"]["f1"] == 100.0
        lines = result.output.splitlines()
        assert "## Mementos cue F1 (Table 3: behaviour F1, macro %)" in lines and "| Model | Comics |" in lines
        mllm = lines.index("| MLLM | 66.7 |")
        assert lines[mllm + 1:mllm + 3] == ["| &nbsp;&nbsp;n | 2 |", "| &nbsp;&nbsp;paper | 13.3 |"]
        assert "| GPT-4V (paper) | 18.1 |" in lines and "| ImageChain | 100.0 |" in lines

        again = runner.invoke(app, ["eval", "--recipe", str(recipe)])
        assert again.exit_code == 0 and (gen.requests, ext.requests) == (7, 4)     # nothing sent again
        report = runner.invoke(app, ["report", str(tmp_path / "out" / "results.json"), "--no-paper"])
        assert report.exit_code == 0 and "| MLLM | 66.7 |" in report.output and "(paper)" not in report.output


def test_a_tiny_model_answers_mementos_in_process(tiny_models, mementos, tmp_path):
    with FaultyEndpoint(extractor) as ext:
        recipe = write_recipe(tmp_path, mementos, "tiny:llava-next", ext.base_url, scene_visual="mean",
                              image_mode="single-tile", variants=["FinalScene", "ImageChain"], limit=1,
                              generation={"max_new_tokens": 3}, mementos={"domains": ["comics", "robo"],
                                                                          "chain_output": "last"})
        result = runner.invoke(app, ["eval", "--recipe", str(recipe)])
        assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in (tmp_path / "out" / "predictions.jsonl").read_text().splitlines()]
    assert {(r["variant"], r["domain"]) for r in records} == {(v, d) for v in ("FinalScene", "ImageChain")
                                                              for d in ("comics", "robo")}
    robo_chain = next(r for r in records if r["variant"] == "ImageChain" and r["domain"] == "robo")
    assert len(robo_chain["turns"]) == 11 and robo_chain["text"] == robo_chain["turns"][-1]   # chain_output: last
    assert all(r["params"]["image_mode"] == "single-tile" and r["params"]["scene_input"] == "mean" for r in records)
    assert "| Model | Comics | Robo |" in result.output


@pytest.mark.parametrize("change, message", [
    ({"judge": "embedding"}, "judge: not used by benchmark mementos"),
    ({"variants": ["MLLM-ICL"]}, "variants: MLLM-ICL and ImageChain-NoFT are not rows of Table 3"),
    ({"cue_f1": None}, "cue_f1: required for benchmark mementos"),
    ({"mementos": {"domains": ["cooking"]}}, "mementos.domains: domain 'cooking' is not one of comics, dl, robo"),
    ({"mementos": {"input": "video"}}, "mementos.input 'video' is not one of sequence, combined"),
    ({"cue_f1": {"extractor": "openai:x@http://127.0.0.1:9/v1", "graphs": "nowhere"}},
     "cue_f1.graphs: folder not found: nowhere"),
])
def test_bad_mementos_recipes_are_one_line_errors(mementos, tmp_path, change, message):
    recipe = write_recipe(tmp_path, mementos, "openai:gen@http://127.0.0.1:9/v1", "http://127.0.0.1:9/v1")
    data = json.loads(recipe.read_text())
    data.update(change)
    recipe.write_text(json.dumps({k: v for k, v in data.items() if v is not None}))
    result = runner.invoke(app, ["eval", "--recipe", str(recipe)])
    assert result.exit_code == 2, result.output
    assert message in result.output and len(result.output.strip().splitlines()) == 1
    flag = runner.invoke(app, ["eval", "--recipe", str(write_recipe(tmp_path, mementos, "m", "http://x/v1")),
                               "--judge", "embedding"])
    assert flag.exit_code == 2 and "--judge: a mementos recipe is scored by its cue_f1" in flag.output


def test_convert_synonyms_writes_json_graphs_and_refuses_hostile_pickles(tmp_path):
    (tmp_path / "robo_action_graph_v1.pkl").write_bytes(pickle.dumps({"grab": {"": ["pick up"]}}))
    (tmp_path / "robo_object_graph_v1.pkl").write_bytes(pickle.dumps({"mug": {"": ["cup"]}}))
    out = tmp_path / "graphs"
    result = runner.invoke(app, ["data", "convert-synonyms", str(tmp_path / "robo_action_graph_v1.pkl"),
                                 str(tmp_path / "robo_object_graph_v1.pkl"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["robo-behaviour.json", "robo-object.json"]
    assert json.loads((out / "robo-behaviour.json").read_text())["graph"] == {"grab": {"": ["pick up"]}}
    (tmp_path / "dl_action_graph_v1.pkl").write_bytes(b"cos\nsystem\n(S'true'\ntR.")
    hostile = runner.invoke(app, ["data", "convert-synonyms", str(tmp_path / "robo_object_graph_v1.pkl"),
                                  str(tmp_path / "dl_action_graph_v1.pkl"), "--out", str(tmp_path / "other")])
    assert hostile.exit_code == 2 and "refused to unpickle os.system" in hostile.output
    assert len(hostile.output.strip().splitlines()) == 1 and not (tmp_path / "other").exists()
