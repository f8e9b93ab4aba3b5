"""Evaluation recipes: the shipped ones load, judge and cue F1 settings parse into their types,
errors name the field."""

from pathlib import Path

import pytest

from agents.backends.factory import ModelSpec
from imagechain.data.conversation import VARIANTS
from imagechain.eval.config import CueF1Settings, IclPool, JudgeSettings, load_recipe, parse_judge
from imagechain.eval.synonyms import EXAMPLES_DIR
from schemas.errors import DataError

ROOT = Path(__file__).resolve().parents[3]


def test_shipped_recipes_load():
    tiny = load_recipe(ROOT / "imagechain/recipes/eval/tiny-eval.yaml")
    assert list(tiny.variants) == list(VARIANTS) and tiny.judge == JudgeSettings("llm", model=ModelSpec("tiny:llama"))
    assert tiny.icl == IclPool(bucket="C2-6", limit=20) and tiny.generation.max_new_tokens == 16
    table1 = load_recipe(ROOT / "imagechain/recipes/eval/reproduce-table1.yaml")
    assert table1.bucket == "C2-6" and table1.judge.kind == "llm" and table1.generation.seed == 30


def test_judge_forms():
    assert parse_judge("none") == JudgeSettings("none")
    assert parse_judge("embedding") == JudgeSettings("embedding")
    openai = ModelSpec("m", backend="openai", base_urls=("http://x/v1",), api_key_env="OPENAI_API_KEY")
    assert parse_judge("openai:m@http://x/v1") == JudgeSettings("llm", model=openai)
    # The profile form: a mapping ModelSpec.from_dict reads, with the same openai:NAME@URL syntax inside.
    assert parse_judge({"model": {"model": "openai:m@http://x/v1", "timeout": 600}}).model.timeout == 600
    assert parse_judge({"kind": "embedding", "threshold": 0.7}) == JudgeSettings("embedding", threshold=0.7)
    with pytest.raises(DataError, match="--judge: the llm judge needs a model"):
        parse_judge("")
    with pytest.raises(DataError, match="r.yaml: threshold must be a number"):
        parse_judge({"kind": "embedding", "threshold": "high"}, "r.yaml")


def test_defaults_and_cue_f1_settings(tmp_path):
    graph = EXAMPLES_DIR / "example-robo-behaviour.json"
    (tmp_path / "r.yaml").write_text(f"name: x\nsource: y\nmodel: z\n"
                                     f"cue_f1: {{extractor: m, behaviour_graph: {graph}}}\n")
    recipe = load_recipe(tmp_path / "r.yaml")
    assert recipe.judge == JudgeSettings("none") and recipe.icl == IclPool()
    assert recipe.out == Path("runs/imagechain-eval/x")
    assert recipe.cue_f1 == CueF1Settings(extractor=ModelSpec("m"), behaviour_graph=str(graph))
    # results.json lists compat and what the recipe set, nothing more.
    assert recipe.cue_f1.as_record() == {"compat": False, "extractor": "m", "behaviour_graph": str(graph)}
    (tmp_path / "bad.yaml").write_text("name: x\nsource: y\nmodel: z\ncue_f1: {extractor: m, colour: red}\n")
    with pytest.raises(DataError, match="bad.yaml: cue_f1: unknown field 'colour'"):
        load_recipe(tmp_path / "bad.yaml")
