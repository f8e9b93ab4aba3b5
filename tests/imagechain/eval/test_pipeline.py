"""The evaluation run's pure steps: which stories and demonstrations it reads, how often it reports progress.

The whole run is tested through `imagechain eval` in tests/vischain/commands/test_imagechain_eval.py.
"""

import dataclasses

import pytest

from imagechain.eval.config import EvalRecipe, IclPool, VariantModel
from imagechain.eval.pipeline import load_stories, progress
from schemas.errors import DataError


def recipe(source, **changes) -> EvalRecipe:
    base = EvalRecipe(name="t", source=str(source), model="m", variants={"MLLM": VariantModel("m")})
    return dataclasses.replace(base, **changes)


def test_stories_of_the_bucket_and_split_and_the_icl_pool_only_for_mllm_icl(storyframes_dir):
    stories, pool = load_stories(recipe(storyframes_dir), {"MLLM": VariantModel("m")})
    assert sorted(s.story_id for s in stories) == ["v2---two_2", "v3---three_1"] and pool == []
    icl = {"MLLM-ICL": VariantModel("m")}
    stories, pool = load_stories(recipe(storyframes_dir, limit=1, icl=IclPool(bucket="C2-7", limit=3)), icl)
    assert len(stories) == 1 and len(pool) == 3 and all(s.split == "train" for s in pool)


def test_no_stories_is_an_error_naming_the_source(storyframes_dir):
    with pytest.raises(DataError, match=f"{storyframes_dir}: no train stories in bucket C5"):
        load_stories(recipe(storyframes_dir, split="train", bucket="C5"), {"MLLM": VariantModel("m")})


def test_progress_speaks_about_every_five_percent_and_at_the_end():
    said = []
    tick = progress(said.append, "predictions", 45)
    for done in range(1, 46):
        tick(done)
    assert said[0] == "  predictions: 2/45" and said[-1] == "  predictions: 45/45" and len(said) == 23
    small = []
    tick = progress(small.append, "judgments", 3)
    for done in (1, 2, 3):
        tick(done)
    assert small == ["  judgments: 1/3", "  judgments: 2/3", "  judgments: 3/3"]
