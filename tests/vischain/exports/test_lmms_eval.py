"""`--format lmms-eval`: the task folder's YAML, data and utils.py as lmms-eval uses them. lmms-eval's
own TaskManager loads the folder in bench/check_lmms_eval.py (its dependencies pull CUDA torch 2.14,
so it runs in its own environment); here the shipped utils.py runs on every document."""

import importlib.util

import pytest
import yaml
from datasets import load_dataset

from agents.protocol.turns import parse_answer
from schemas.task import load_tasks, task_turns
from tests.vischain.exports.conftest import SOURCE_RUN


class FunctionTags(yaml.SafeLoader):
    """lmms-eval's YAML: `!function utils.NAME` names a function of utils.py beside it."""


FunctionTags.add_constructor("!function", lambda loader, node: ("function", loader.construct_scalar(node)))


@pytest.fixture(scope="module")
def task(exported):
    folder = exported("lmms-eval")
    (config_file,) = folder.glob("*.yaml")
    config = yaml.load(config_file.read_text(), Loader=FunctionTags)
    spec = importlib.util.spec_from_file_location("vischain_lmms_utils", folder / "utils.py")
    utils = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(utils)
    docs = load_dataset(config["dataset_path"], data_files={k: str(folder / v) for k, v in
                                                            config["dataset_kwargs"]["data_files"].items()},
                        split=config["test_split"])
    return folder, config, utils, docs


def test_the_yaml_names_functions_that_utils_defines(task):
    folder, config, utils, _ = task
    assert config["task"] == folder.glob("*.yaml").__next__().stem and config["output_type"] == "generate_until"
    named = [value[1] for value in config.values() if isinstance(value, tuple)]
    named += [m["aggregation"][1] for m in config["metric_list"]]
    assert named and all(callable(getattr(utils, name.removeprefix("utils."))) for name in named)
    assert [m["metric"] for m in config["metric_list"]] == ["ca", "tc", "format_error_rate"]


def test_one_document_per_question_with_its_images_in_order(task):
    _, _, utils, docs = task
    questions = sum(sum(not t.example for t in task_turns(i.kind, i.task)) for i in load_tasks(SOURCE_RUN))
    assert len(docs) == questions
    for doc in docs:
        visuals = utils.doc_to_visual(doc)
        assert len(visuals) == utils.doc_to_text(doc).count("<image>") > 0
        messages = utils.doc_to_messages(doc)
        assert [m["role"] for m in messages][-1] == "user"
        assert sum(p["type"] == "image" for m in messages for p in m["content"]) == len(visuals)
        assert all(m["content"][0]["text"].startswith("ANSWER: ") for m in messages if m["role"] == "assistant")


def test_metrics_are_the_protocols_ca_tc_and_format_errors(task):
    _, config, utils, docs = task
    aggregate = {m["metric"]: getattr(utils, m["aggregation"][1].removeprefix("utils.")) for m in config["metric_list"]}

    def scores(reply_for):
        results = [utils.process_results(doc, [reply_for(doc)]) for doc in docs]
        return {metric: aggregate[metric]([r[metric] for r in results]) for metric in aggregate}

    assert scores(lambda doc: f"Reasoning... ANSWER: {doc['truth']}") == {"ca": 1.0, "tc": 1.0, "format_error_rate": 0}
    assert scores(lambda doc: "I cannot tell.") == {"ca": 0, "tc": 0, "format_error_rate": 1.0}
    first_wrong = scores(lambda doc: "ANSWER: X" if doc["question"] == 1 else f"ANSWER: {doc['truth']}")
    assert first_wrong["tc"] == 0 and 0 < first_wrong["ca"] < 1
    for reply in ["ANSWER: 2", "answer: [3]", "ANSWER: 1 then ANSWER: 2", "ANSWER: B", "", "ANSWER: 02"]:
        for labels in (["1", "2", "3"], ["A", "B"]):
            assert utils.parse_answer(reply, labels) == parse_answer(reply, labels)
