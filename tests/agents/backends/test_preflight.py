"""The preflight counts a run's largest prompts with the model's own processor and chat template, and
refuses one that does not fit with one line naming the task, its tokens and the limit."""

import shutil
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from agents.backends.chat import BackendError, normalize_messages
from agents.backends.factory import ModelSpec
from agents.backends.preflight import Prompt, TokenCounter, preflight
from benchmark_data import EXAMPLE_RUN, PROFILES_DIR
from schemas.task import load_tasks
from vischain.cli import app
from vischain.commands.evaluate import last_turn_prompts


@pytest.fixture(scope="module")
def prompts(tmp_path_factory):
    return last_turn_prompts(load_tasks(EXAMPLE_RUN), tmp_path_factory.mktemp("labels"), max_tokens=256)


@pytest.mark.parametrize("name", ["qwen2-vl", "llava-next"])
def test_the_count_is_what_the_in_process_backend_encodes(tiny_models, prompts, name):
    from agents.backends.transformers_local import TransformersBackend

    backend = TransformersBackend(f"tiny:{name}")
    counter = TokenCounter(f"tiny:{name}")
    for prompt in prompts:
        encoded = backend._encode(normalize_messages(prompt.messages))
        assert counter.count(prompt.messages) == encoded["input_ids"].shape[-1]
    assert counter.context == backend.max_length


def test_a_text_model_counts_with_its_tokenizer(tiny_models):
    counter = TokenCounter("tiny:llama")
    short = counter.count([{"role": "user", "content": "hi"}])
    longer = counter.count([{"role": "user", "content": [{"type": "text", "text": "hi " * 50}]}])
    assert 0 < short < longer
    with pytest.raises(BackendError, match="text-only model is given an image"):
        counter.count([{"role": "user", "content": [{"type": "image", "path": "x.png"}]}])


def test_a_prompt_over_the_limit_is_one_line_naming_task_tokens_and_limit(tiny_models, prompts):
    measured = preflight(ModelSpec("tiny:qwen2-vl"), prompts)
    largest = max(measured, key=lambda m: m.tokens)
    assert largest.tokens == max(TokenCounter("tiny:qwen2-vl").count(p.messages) + p.reply_tokens for p in prompts)
    with pytest.raises(BackendError) as error:
        preflight(ModelSpec("tiny:qwen2-vl", max_model_len=largest.tokens - 1), prompts)
    assert str(error.value) == (f"tiny:qwen2-vl: {largest.name} needs {largest.tokens} tokens (prompt and replies), "
                                f"over the model's limit of {largest.tokens - 1} (max_model_len); shorten the task "
                                "or raise the limit")
    preflight(ModelSpec("tiny:qwen2-vl", max_model_len=largest.tokens), prompts)  # exactly fits


def test_a_vllm_server_limit_on_images_is_checked(tiny_models, prompts):
    most = max(sum(p["type"] == "image" for m in prompt.messages if isinstance(m["content"], list)
                   for p in m["content"]) for prompt in prompts)
    with pytest.raises(BackendError, match=rf"has {most} images in one prompt, over the server's limit of {most - 1}"):
        preflight(ModelSpec("tiny:qwen2-vl", backend="vllm", max_images_per_prompt=most - 1), prompts)
    assert preflight(ModelSpec("tiny:qwen2-vl", backend="vllm", max_images_per_prompt=most), prompts)


def test_an_openai_endpoint_is_not_counted():
    spec = ModelSpec("some-model", backend="openai", base_urls=("http://127.0.0.1:9/v1",))
    assert preflight(spec, [Prompt("task x", [{"role": "user", "content": "hi"}])]) == []


def test_eval_refuses_before_any_call_when_a_task_does_not_fit(tiny_models, tmp_path):
    profile = yaml.safe_load((PROFILES_DIR / "demo.yaml").read_text())
    profile["models"]["verifiers"] = [{"model": "tiny:qwen2-vl", "max_model_len": 300}]
    (tmp_path / "small.yaml").write_text(yaml.safe_dump(profile))
    run = tmp_path / "run"
    shutil.copytree(EXAMPLE_RUN, run)
    result = CliRunner().invoke(app, ["eval", str(run), "--profile", str(tmp_path / "small.yaml")],
                                env={"COLUMNS": "300"})
    assert result.exit_code == 2
    assert "error: tiny:qwen2-vl: task " in result.output and "over the model's limit of 300" in result.output
    assert not Path(run / "verify" / "answers.jsonl").exists()
