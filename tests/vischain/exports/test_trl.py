"""`--format trl` read by trl's own code: its vision-language collator over the tiny LLaVA-NeXT and
Qwen2-VL processors (every example alone, then all in one batch), and one SFTTrainer step."""

import pytest
import torch
from datasets import load_dataset
from trl import SFTConfig, SFTTrainer
from trl.trainer.sft_trainer import DataCollatorForVisionLanguageModeling

from agents.backends.hf_loading import load_model, load_processor

PROCESSORS = {"llava-next": "llava_next", "qwen2-vl": "qwen2_vl"}


@pytest.fixture(scope="module")
def dataset(exported):
    # The loader the README gives: datasets' imagefolder reads metadata.jsonl and opens images/ beside it.
    return load_dataset("imagefolder", data_dir=str(exported("trl")), split="train")


def test_rows_have_images_in_the_order_of_the_image_parts(dataset, exported):
    assert set(dataset.column_names) >= {"images", "messages", "kind", "task_id", "domain"}
    for row in dataset:
        parts = [part for message in row["messages"] for part in message["content"]]
        assert sum(part["type"] == "image" for part in parts) == len(row["images"]) > 0
        assert all(message["role"] == role for message, role in zip(row["messages"], ["user", "assistant"] * 99))
        assert all(m["content"][0]["text"].startswith("ANSWER: ") for m in row["messages"][1::2])


@pytest.mark.parametrize("name", PROCESSORS)
def test_trls_collator_takes_every_example_and_a_batch(dataset, tiny_models, name):
    processor = load_processor(str(tiny_models[name]), PROCESSORS[name])
    collator = DataCollatorForVisionLanguageModeling(processor)
    image_token_id = processor.tokenizer.convert_tokens_to_ids(processor.image_token)
    for row in dataset:
        batch = collator([dict(row)])
        images = len(row["images"])
        if name == "qwen2-vl":
            assert batch["image_grid_thw"].shape[0] == images
        else:
            assert batch["pixel_values"].shape[0] == images
        assert (batch["input_ids"] == image_token_id).sum() >= images  # each image part expanded to its tokens
    batch = collator([dict(row) for row in dataset])
    assert batch["input_ids"].shape[0] == len(dataset)
    assert (batch["labels"] != -100).sum() > 0


def test_one_sft_trainer_step_changes_the_tiny_models_weights(dataset, tiny_models, tmp_path):
    loaded = load_model(str(tiny_models["qwen2-vl"]))
    before = {name: p.detach().clone() for name, p in loaded.model.named_parameters()}
    args = SFTConfig(output_dir=str(tmp_path), max_steps=1, per_device_train_batch_size=len(dataset),
                     learning_rate=1e-3, max_length=None, report_to="none", save_strategy="no", use_cpu=True,
                     logging_strategy="no", disable_tqdm=True)
    trainer = SFTTrainer(model=loaded.model, processing_class=loaded.processor, train_dataset=dataset, args=args)
    result = trainer.train()
    assert result.global_step == 1 and torch.isfinite(torch.tensor(result.training_loss))
    changed = [name for name, p in loaded.model.named_parameters() if not torch.equal(before[name], p.detach())]
    assert changed
