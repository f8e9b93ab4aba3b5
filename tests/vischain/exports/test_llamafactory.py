"""`--format llamafactory` against LLaMA-Factory's documented sharegpt-with-images schema (its
data/README.md). LLaMA-Factory's own loader reads the folder in bench/check_llamafactory.py: its
dependencies (CUDA torch 2.14, trl<=0.24) clash with this environment, so it runs in its own."""

import json

from vischain.exports.llamafactory import DATA_FILE


def test_dataset_info_names_the_file_and_its_sharegpt_columns(exported):
    folder = exported("llamafactory")
    info = json.loads((folder / "dataset_info.json").read_text())
    (name, entry), = info.items()
    assert name.startswith("vischain_") and (folder / entry["file_name"]).is_file()
    assert entry["formatting"] == "sharegpt"
    assert entry["columns"] == {"messages": "messages", "images": "images"}
    assert entry["tags"] == {"role_tag": "role", "content_tag": "content", "user_tag": "user",
                             "assistant_tag": "assistant"}


def test_each_row_has_one_image_marker_per_image_and_alternating_turns(exported):
    folder = exported("llamafactory")
    for line in (folder / DATA_FILE).read_text().splitlines():
        row = json.loads(line)
        roles = [m["role"] for m in row["messages"]]
        assert roles == ["user", "assistant"] * (len(roles) // 2) and roles  # user first, ends on the answer
        assert all(isinstance(m["content"], str) for m in row["messages"])
        assert sum(m["content"].count("<image>") for m in row["messages"]) == len(row["images"])
        assert all("<image>" not in m["content"] for m in row["messages"][1::2])
        assert all((folder / image).is_file() for image in row["images"])  # relative to dataset_dir
