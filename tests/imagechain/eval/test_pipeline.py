"""The evaluation run's pure steps: which stories and demonstrations it reads, how often it reports progress,
which adapters it refuses.

The whole run is tested through `imagechain eval` in tests/vischain/commands/test_imagechain_eval.py.
"""

import dataclasses
import json

import pytest

from agents.backends.factory import ModelSpec
from imagechain.eval.config import EvalRecipe, IclPool, VariantModel
from imagechain.eval.pipeline import LineProgress, check_adapter, load_stories
from schemas.errors import DataError

MODEL = VariantModel(ModelSpec("m"))


def recipe(source, **changes) -> EvalRecipe:
    base = EvalRecipe(name="t", source=str(source), model=ModelSpec("m"), variants={"MLLM": MODEL})
    return dataclasses.replace(base, **changes)


def test_stories_of_the_bucket_and_split_and_the_icl_pool_only_for_mllm_icl(storyframes_dir):
    stories, pool = load_stories(recipe(storyframes_dir), {"MLLM": MODEL})
    assert sorted(s.story_id for s in stories) == ["v2---two_2", "v3---three_1"] and pool == []
    icl = {"MLLM-ICL": MODEL}
    stories, pool = load_stories(recipe(storyframes_dir, limit=1, icl=IclPool(bucket="C2-7", limit=3)), icl)
    assert len(stories) == 1 and len(pool) == 3 and all(s.split == "train" for s in pool)


def test_no_stories_is_an_error_naming_the_source(storyframes_dir):
    with pytest.raises(DataError, match=f"{storyframes_dir}: no train stories in bucket C5"):
        load_stories(recipe(storyframes_dir, split="train", bucket="C5"), {"MLLM": MODEL})


def test_line_progress_speaks_about_every_five_percent_and_at_the_end():
    said = []
    with LineProgress(said.append).bar("predictions", 45) as tick:
        for done in range(1, 46):
            tick(done)
    assert said[0] == "  predictions: 2/45" and said[-1] == "  predictions: 45/45" and len(said) == 23
    small = []
    with LineProgress(small.append).bar("judgments", 3) as tick:
        for done in (1, 2, 3):
            tick(done)
    assert small == ["  judgments: 1/3", "  judgments: 2/3", "  judgments: 3/3"]


def test_an_adapter_trained_in_another_image_mode_is_refused(tmp_path):
    (tmp_path / "imagechain_train.json").write_text(json.dumps({"image_mode": "single-tile", "lora_r": 8}))
    check_adapter("ImageChain", str(tmp_path), "single-tile")
    with pytest.raises(DataError, match="variants.ImageChain.adapter: trained with image_mode single-tile .* "
                                        "evaluates with image_mode native"):
        check_adapter("ImageChain", str(tmp_path), "native")
    check_adapter("ImageChain", str(tmp_path / "elsewhere"), "native")  # nothing recorded: nothing to compare
