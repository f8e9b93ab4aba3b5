import pytest

from agents.backends import tiny_models as tm
from agents.backends.hf_loading import load_model


def test_built_once_and_reused(tiny_models):
    stamps = {name: (path / "model.safetensors").stat().st_mtime_ns for name, path in tiny_models.items()}
    again = tm.ensure_tiny_models()
    assert again == tiny_models
    assert {n: (p / "model.safetensors").stat().st_mtime_ns for n, p in again.items()} == stamps


def test_every_tiny_model_loads_through_from_pretrained(tiny_models):
    kinds = {name: load_model(str(path)) for name, path in tiny_models.items()}
    assert type(kinds["llava-next"].model).__name__ == "LlavaNextForConditionalGeneration"
    assert type(kinds["qwen2-vl"].model).__name__ == "Qwen2VLForConditionalGeneration"
    assert type(kinds["llama"].model).__name__ == "LlamaForCausalLM"
    assert kinds["qwen2-vl"].processor.image_processor is not None  # not just the tokenizer
    assert not kinds["llama"].is_vision


def test_a_failed_build_leaves_no_half_model(tmp_path, monkeypatch):
    def broken(folder):
        (folder / "config.json").write_text("{}")
        raise RuntimeError("killed mid-build")

    with pytest.raises(RuntimeError):
        tm._build_atomically(tmp_path / "llama", broken)
    assert list(tmp_path.iterdir()) == []
