"""One rank of the two-process DDP check in test_train.py, which starts two of them:

    python -m torch.distributed.run --standalone --nproc_per_node 2 tests/imagechain/train/ddp_worker.py \
        STORYFRAMES_DIR OUT_DIR

Trains two optimizer steps of the tiny LLaVA-NeXT on CPU over gloo, then each rank saves its LoRA
weights and its view of the run to OUT_DIR/rank<N>.pt for the test to compare.
"""

import sys

import torch

from imagechain.train.config import load_config
from imagechain.train.trainer import TrainRecipe


def main(storyframes: str, out: str) -> None:
    config = load_config("imagechain/recipes/train/tiny-llava.yaml", [
        f"data=[{storyframes}]", f"output_dir={out}/run", "per_device_batch_size=1", "max_steps=2",
        "epochs=1", "resume=false", "learning_rate=5e-3", "log_every=1"])
    recipe = TrainRecipe(config).setup()
    initial = _lora(recipe)
    recipe.train()
    accelerator = recipe.accelerator
    torch.save({"rank": accelerator.process_index, "world": accelerator.num_processes,
                "steps": recipe.global_step, "initial": initial, "final": _lora(recipe),
                "records": getattr(recipe, "last_records", [])}, f"{out}/rank{accelerator.process_index}.pt")


def _lora(recipe) -> dict:
    model = recipe.accelerator.unwrap_model(recipe.model)
    return {name: param.detach().clone() for name, param in model.named_parameters() if param.requires_grad}


if __name__ == "__main__":
    main(*sys.argv[1:3])
