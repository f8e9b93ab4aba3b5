"""Every configuration file the project ships loads and validates: profiles and domains."""

from __future__ import annotations

import pytest

from benchmark_data import DOMAINS_DIR, PROFILES_DIR
from graphs.generate.task_list import load_domain, plan_tasks
from graphs.profile import load_profile


@pytest.mark.parametrize("path", sorted(PROFILES_DIR.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_shipped_profile_loads_with_its_command_on_top(path):
    profile = load_profile(path.stem)
    assert profile.name == path.stem and profile.description
    assert path.read_text().startswith("# vischain generate ")  # a config opens with its command
    assert profile.record()["name"] == path.stem


@pytest.mark.parametrize("path", sorted(DOMAINS_DIR.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_shipped_domain_loads_and_plans_a_mixed_run(path):
    domain = load_domain(path.stem)
    specs = plan_tasks(domain, "mixed", 12, seed=0)
    assert len(specs) == 12 and {s.kind for s in specs} <= {"itmr", "icir", "iomr"}



def imagechain_recipes() -> list:
    """Every YAML under imagechain/recipes/ (train/ and eval/), found where the package is."""
    # here: this file's import block belongs to the profile and domain tests above; ImageChain's stay local
    from pathlib import Path

    import imagechain

    return sorted((Path(imagechain.__file__).parent / "recipes").rglob("*.yaml"))


@pytest.mark.parametrize("path", imagechain_recipes(), ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_every_shipped_imagechain_recipe_loads_and_validates(path):
    from imagechain.eval.config import load_recipe  # here: as above
    from imagechain.train.config import load_config

    assert path.parent.name in ("train", "eval")
    if path.parent.name == "train":
        # Stories are named on the command line for the tiny recipe; a stand-in source lets every one validate.
        config = load_config(path, ["data=[path/to/stories]"])
        assert config.output_dir.startswith("runs/")  # every ImageChain output lands under runs/
    else:
        recipe = load_recipe(path)
        assert recipe.name == path.stem and str(recipe.out).startswith("runs/")
