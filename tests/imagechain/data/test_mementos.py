"""Mementos loaders on files in the published layouts: each CSV's own header, frames in number order,
combined images, and bad files as one-line errors naming the file."""

import pytest
from PIL import Image

from imagechain.data.mementos import description_file, read_descriptions, read_sequences, sequence_story
from schemas.errors import DataError
from tests.imagechain.mementos_fixtures import PUBLISHED, write_mementos


@pytest.fixture(scope="module")
def mementos(tmp_path_factory):
    return write_mementos(tmp_path_factory.mktemp("Mementos"))


@pytest.mark.parametrize("domain, split", [(d, s) for d in ("comics", "dl", "robo") for s in ("val", "train")])
def test_every_published_csv_reads_with_its_own_header(mementos, domain, split):
    path = description_file(mementos, domain, split)
    rows = read_descriptions(path)
    assert [(row.image_name, row.description) for row in rows] == PUBLISHED[path.name][1]


def test_sequences_have_their_frames_in_number_order(mementos):
    robo = read_sequences(mementos, "robo")
    assert [s.image_name for s in robo] == ["rb_7.png", "rb_12.png"]
    frames = robo[0].frames
    assert [f.name for f in frames[:3]] == ["frame_1.png", "frame_2.png", "frame_3.png"]
    assert frames[-1].name == "frame_11.png"                      # 11 after 10 and 2, not after 1
    with Image.open(frames[9]) as tenth:
        assert tenth.getpixel((0, 0))[0] == 100
    assert robo[1].description == "The gripper opens the drawer,\nthen pushes it closed."
    combined = read_sequences(mementos, "comics", input_kind="combined", limit=1)
    assert [s.sequence_id for s in combined] == ["comics/cmc_10.png"]
    assert [f.name for f in combined[0].frames] == ["cmc_10.png"]


def test_a_sequence_is_a_story_of_one_scene_per_image(mementos):
    sequence = read_sequences(mementos, "comics")[0]
    story = sequence_story(sequence)
    assert story.story_id == "comics/cmc_10.png" and story.num_scenes == 3 and story.split == "val"
    assert [scene.frames for scene in story.scenes] == [[f] for f in sequence.frames]
    assert story.scenes[-1].description == sequence.description and story.metadata == {"domain": "comics"}


def test_bad_files_are_errors_naming_file_and_field(mementos, tmp_path):
    (tmp_path / "cmc_description.csv").write_text("image_name,caption\ncmc_1.png,x\n")
    with pytest.raises(DataError, match="cmc_description.csv: expected one description column .* "
                                        "in the header image_name,caption"):
        read_descriptions(tmp_path / "cmc_description.csv")
    (tmp_path / "dl_description.csv").write_text("image_name,description\nrw_1.png,\n")
    with pytest.raises(DataError, match="dl_description.csv:2: empty 'description'"):
        read_descriptions(tmp_path / "dl_description.csv")
    (tmp_path / "robo_description.csv").write_text("image,description\nrb_1.png,a\nrb_1.png,b\n")
    with pytest.raises(DataError, match="robo_description.csv:3: image 'rb_1.png' is listed twice"):
        read_descriptions(tmp_path / "robo_description.csv")
    (tmp_path / "images").mkdir()
    (tmp_path / "robo_description.csv").write_text("image,description\nrb_1.png,a\n")
    with pytest.raises(DataError, match="rb_1: frame folder of rb_1.png not found"):
        read_sequences(tmp_path, "robo")
    with pytest.raises(DataError, match="unknown Mementos domain 'cooking'"):
        description_file(mementos, "cooking")
    with pytest.raises(DataError, match="Mementos description file not found"):
        read_descriptions(tmp_path / "train_dl_description.csv")
