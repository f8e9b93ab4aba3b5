"""The dataset card's YAML: its licence states every term the images carry (retrieved and painted), and
the whole block passes the offline part of the Hub's metadata checks: huggingface_hub's card parser
(the Hub's own YAML block regex, a mapping, DatasetCardData) and datasets' checks of `configs`,
`size_categories` and `language` against the lists it ships."""

import json
from collections import Counter
from importlib import resources

import pytest
from datasets.utils.metadata import MetadataConfigs
from huggingface_hub import DatasetCard
from huggingface_hub.repocard import REGEX_YAML_BLOCK

from benchmark_data import PROFILES_DIR
from vischain.dataset_card import HF_LICENCE_IDS, MODEL_LICENCE_IDS, build_card
from vischain.hub_dataset import CONFIGS as CONFIGS_WRITTEN
from vischain.hub_dataset import build_dataset_folder

CONFIGS = {"itmr": 2, "icir": 1, "iomr": 1, "provenance": 30, "stories": 1}


def retrieved(licence_id: str, version: str = "4.0") -> dict:
    return {"file": f"tasks/itmr/t/{licence_id}.png", "synthetic": False, "creator": "A. Person",
            "licence": {"id": licence_id, "version": version, "url": f"https://example.org/{licence_id}",
                        "verified": True}}


def painted(model: str) -> dict:
    return {"file": f"tasks/itmr/t/{model.replace('/', '_')}.png", "synthetic": True, "licence": None,
            "generator": {"model": model, "seed": 1, "prompt": "a gear"}}


def run_with_painter(**painter) -> dict:
    return {"name": "eng", "config": {"profile_config": {"painter": painter}}}


def card_for(run: dict, provenance: list[dict]) -> DatasetCard:
    return build_card(run, Counter({("itmr", "engineering"): 2, ("icir", "engineering"): 1}), provenance, CONFIGS)


def check_offline(card: DatasetCard) -> dict:
    """What can be checked without the Hub; returns the YAML block as a mapping."""
    text = str(card)
    match = REGEX_YAML_BLOCK.search(text)  # the regex the Hub server uses to find the block
    assert match and text.startswith("---\n")
    parsed = DatasetCard(text, ignore_metadata_errors=False)
    data = parsed.data.to_dict()
    assert data == card.data.to_dict()
    configs = MetadataConfigs.from_dataset_card_data(parsed.data)  # datasets' own `configs` checks
    assert list(configs) == list(CONFIGS)
    shipped = resources.files("datasets.utils.resources")
    assert set(data["size_categories"]) <= set(json.loads(shipped.joinpath("size_categories.json").read_text()))
    assert set(data["language"]) <= set(json.loads(shipped.joinpath("languages.json").read_text()))
    licences = data["license"] if isinstance(data["license"], list) else [data["license"]]
    assert all(licence in HF_LICENCE_IDS | MODEL_LICENCE_IDS | {"other"} for licence in licences)
    if "other" in licences:  # the Hub wants a name and a link for a licence it has no id for
        assert data["license_name"] and data["license_link"]
    assert {"visual-question-answering", "image-text-to-text"} <= set(data["task_categories"])
    return data


def test_retrieved_images_only_give_their_most_restrictive_licence():
    data = check_offline(card_for(run_with_painter(model="tiny:sd", licence="apache-2.0"),
                                  [retrieved("cc0", "1.0"), retrieved("by-sa")]))
    assert data["license"] == "cc-by-sa-4.0" and "synthetic" not in data["tags"]


def test_painted_images_add_their_models_licence_from_the_profile():
    run = run_with_painter(model="stable-diffusion-v1-5/stable-diffusion-v1-5", licence="creativeml-openrail-m")
    data = check_offline(card_for(run, [retrieved("by"), painted("stable-diffusion-v1-5/stable-diffusion-v1-5")]))
    assert data["license"] == ["cc-by-4.0", "creativeml-openrail-m"] and "synthetic" in data["tags"]
    assert "license_name" not in data


def test_a_model_licence_the_hub_has_no_id_for_is_other_with_its_name_and_link():
    paper = (PROFILES_DIR / "paper.yaml").read_text()
    assert "licence: stabilityai-ai-community" in paper  # what the paper profile records for SD 3.5
    url = "https://huggingface.co/stabilityai/stable-diffusion-3.5-medium/blob/main/LICENSE.md"
    run = run_with_painter(model="stabilityai/stable-diffusion-3.5-medium", licence="stabilityai-ai-community",
                           licence_url=url)
    data = check_offline(card_for(run, [retrieved("by-nc"), painted("stabilityai/stable-diffusion-3.5-medium")]))
    assert data["license"] == ["cc-by-nc-4.0", "other"]
    assert (data["license_name"], data["license_link"]) == ("stabilityai-ai-community", url)


def test_all_painted_gives_only_the_generator_licence():
    data = check_offline(card_for(run_with_painter(model="tiny:sd", licence="apache-2.0"), [painted("tiny:sd")]))
    assert data["license"] == "apache-2.0"


def test_a_painter_whose_licence_the_run_does_not_record_is_not_called_cc0():
    data = check_offline(card_for({"name": "old", "config": {}}, [retrieved("cc0", "1.0"), painted("tiny-sd")]))
    assert data["license"] == ["cc0-1.0", "other"]
    assert data["license_name"] == "unknown-generator-licence" and data["license_link"] == "README.md"


def test_a_merged_run_lists_the_licence_of_each_sources_painter():
    run = {"name": "merged", "config": {"command": "merge", "sources": [
        {"folder": "a", "config": {"profile_config": {"painter": {"model": "m1", "licence": "openrail++"}}}},
        {"folder": "b", "config": {"profile_config": {"painter": {"model": "m2", "licence": "creativeml-openrail-m"}}}},
    ]}}
    data = check_offline(card_for(run, [painted("m1"), painted("m2")]))
    assert data["license"] == ["openrail++", "creativeml-openrail-m"]


@pytest.mark.parametrize("profile", ["demo", "local", "paper"])
def test_every_shipped_profile_names_its_painters_licence(profile):
    from graphs.profile import load_profile

    painter = load_profile(profile).painter
    assert painter.licence != "unknown"
    assert painter.licence in HF_LICENCE_IDS | MODEL_LICENCE_IDS or painter.licence_url


def test_a_published_folders_card_validates(tmp_path):
    from benchmark_data import EXAMPLE_RUN

    steps = []
    folder = build_dataset_folder(EXAMPLE_RUN, tmp_path / "dataset", step=lambda: steps.append(1))
    assert len(steps) == len(CONFIGS_WRITTEN)  # publish's progress bar: one step per config
    card = DatasetCard.load(folder.path / "README.md")
    text = str(card)
    assert REGEX_YAML_BLOCK.search(text)
    parsed = DatasetCard(text, ignore_metadata_errors=False)
    configs = MetadataConfigs.from_dataset_card_data(parsed.data)
    assert list(configs) == list(folder.rows)
    assert parsed.data.license == "cc0-1.0" and parsed.data.language == ["en"]
