"""Training-step throughput: scene averaging vs every frame as its own image.

    .venv/bin/python bench/train_throughput.py                    # tiny LLaVA-NeXT on CPU, K = 8
    .venv/bin/python bench/train_throughput.py --device cuda      # LLaVA-NeXT at 7B size, random weights
    .venv/bin/python bench/train_throughput.py --image-mode single-tile   # one 576-token tile per frame

Both paths train the same LoRA on the same stories (scenes of K frames each, ImageChain variant):
- averaged: each scene is one image position; its K frames go through the vision tower and their
  per-patch mean is placed there (imagechain.train.scene_features, the paper's V-bar);
- per-frame: each user turn carries K images, one per frame, so the language model sees K times the
  image tokens.
A step is forward + backward + AdamW on pre-collated batches (frame preprocessing is excluded, it is
the same for both). Prints tokens/s (language-model tokens), samples/s, and the samples/s ratio
averaged / per-frame against the target K/2. On CUDA it also prints MFU (imagechain.train.mfu).

The CUDA model is LLaVA-v1.6-Vicuna-7B's architecture (CLIP ViT-L/14-336, Vicuna-7B, any-resolution
grid) built from a config with random weights: nothing is downloaded. Its tokenizer is the tiny
models' (ids fit the 32k vocabulary), which changes nothing about the cost of a step.
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import torch
from PIL import Image

from imagechain.data.conversation import build_conversation
from imagechain.data.image_modes import IMAGE_MODES
from imagechain.data.story import Scene, Story
from imagechain.train.config import LANGUAGE_MODEL_LINEARS
from imagechain.train.data import ChainDataset, Collator, sample_from_conversation
from imagechain.train.mfu import ParamCounts, mfu, step_flops, vision_tokens
from imagechain.train.scene_features import SceneChainModel, family_of


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--frames", type=int, default=8, help="K: frames per scene")
    parser.add_argument("--scenes", type=int, default=3, help="scenes per story")
    parser.add_argument("--batch", type=int, default=None, help="stories per step (default: 4 CPU, 1 CUDA)")
    parser.add_argument("--steps", type=int, default=None, help="timed steps (default: 5 CPU, 10 CUDA)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    parser.add_argument("--lora-r", type=int, default=None, help="LoRA rank (default: 8 CPU, 128 CUDA)")
    parser.add_argument("--threads", type=int, default=None,
                        help="CPU threads for torch (default 1 on CPU: the tiny model's small ops gain nothing from "
                             "more, and on a busy machine extra threads oversubscribe the cores)")
    parser.add_argument("--image-mode", choices=IMAGE_MODES, default="native",
                        help="native (LLaVA-NeXT any-resolution tiles) or single-tile (the public code's 576 tokens)")
    parser.add_argument("--frame-size", type=int, nargs=2, default=None, metavar=("W", "H"),
                        help="frame size in pixels (default: 64 48 CPU, 336 336 CUDA)")
    args = parser.parse_args()
    cuda = args.device == "cuda"
    args.batch = args.batch or (1 if cuda else 4)
    args.steps = args.steps or (10 if cuda else 5)
    args.lora_r = args.lora_r or (128 if cuda else 8)
    args.frame_size = tuple(args.frame_size or ((336, 336) if cuda else (64, 48)))
    return args


# ---- models ------------------------------------------------------------------------------------


def tiny_model():
    from agents.backends.hf_loading import load_model
    from agents.backends.tiny_models import ensure_tiny_models

    loaded = load_model(str(ensure_tiny_models(names=("llava-next",))["llava-next"]))
    return loaded.model, loaded.processor


def llava_7b_model():
    """LLaVA-v1.6-Vicuna-7B's architecture with random bf16 weights, built on the GPU."""
    from transformers import (
        CLIPVisionConfig,
        LlamaConfig,
        LlavaNextConfig,
        LlavaNextForConditionalGeneration,
        LlavaNextImageProcessorPil,
        LlavaNextProcessor,
    )

    _, tiny_processor = tiny_model()
    tokenizer = tiny_processor.tokenizer
    pinpoints = [[336, 672], [672, 336], [672, 672], [1008, 336], [336, 1008]]
    config = LlavaNextConfig(
        vision_config=CLIPVisionConfig(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24,
                                       num_attention_heads=16, image_size=336, patch_size=14, projection_dim=768),
        text_config=LlamaConfig(vocab_size=32064, hidden_size=4096, intermediate_size=11008, num_hidden_layers=32,
                                num_attention_heads=32, num_key_value_heads=32, max_position_embeddings=32768,
                                pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
                                eos_token_id=tokenizer.eos_token_id),
        image_token_index=tokenizer.convert_tokens_to_ids("<image>"), image_grid_pinpoints=pinpoints,
        vision_feature_select_strategy="default", vision_feature_layer=-2)
    torch.set_default_dtype(torch.bfloat16)
    with torch.device("cuda"):
        model = LlavaNextForConditionalGeneration(config)
    torch.set_default_dtype(torch.float32)
    image_processor = LlavaNextImageProcessorPil(size={"shortest_edge": 336}, crop_size={"height": 336, "width": 336},
                                                 image_grid_pinpoints=pinpoints)
    processor = LlavaNextProcessor(image_processor=image_processor, tokenizer=tokenizer, patch_size=14,
                                   vision_feature_select_strategy="default", chat_template=tokenizer.chat_template,
                                   num_additional_image_tokens=1)
    return model, processor


def with_lora(model, rank: int, gradient_checkpointing: bool, image_mode: str = "native"):
    from peft import LoraConfig, get_peft_model

    for param in model.parameters():
        param.requires_grad_(False)
    if gradient_checkpointing:
        model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    config = LoraConfig(r=rank, lora_alpha=2 * rank, lora_dropout=0.05, target_modules=LANGUAGE_MODEL_LINEARS)
    return SceneChainModel(get_peft_model(model, config), image_mode)


# ---- data --------------------------------------------------------------------------------------


def stories(count: int, scenes: int, frames: int, size: tuple[int, int]) -> list[Story]:
    generator = torch.Generator().manual_seed(0)
    made = []
    for index in range(count):
        made.append(Story(f"bench-{index}", "bench", [
            Scene([_noise(size, generator) for _ in range(frames)], f"Story {index}: in scene {s + 1} a person moves.")
            for s in range(scenes)]))
    return made


def _noise(size: tuple[int, int], generator) -> Image.Image:
    return Image.fromarray((torch.rand(size[1], size[0], 3, generator=generator) * 255).byte().numpy())


def per_frame(conversation):
    """Every frame its own image: each placeholder becomes one per frame of its scene."""
    frames = iter(conversation.scene_frames)
    messages = []
    for message in conversation.messages:
        content = message["content"]
        if isinstance(content, list):
            content = [part for p in content for part in ([p] * len(next(frames)) if p.get("type") == "image" else [p])]
        messages.append({**message, "content": content})
    singles = [[frame] for scene in conversation.scene_frames for frame in scene]
    return dataclasses.replace(conversation, messages=messages, scene_frames=singles)


def batches(model, processor, story_list, batch: int, expand: bool, max_length: int,
            image_mode: str = "native") -> list[dict]:
    """Pre-collated batches of the averaged (expand=False) or per-frame (expand=True) conversations."""
    family = family_of(model.config, image_mode)
    samples = []
    for story in story_list:
        conversation = build_conversation(story, "ImageChain")
        conversation = per_frame(conversation) if expand else conversation
        samples.append(sample_from_conversation(conversation, processor, "chat", "all-text", "mean", max_length,
                                                image_mode))
    dataset = ChainDataset(samples, processor, family)
    collate = Collator(family, processor.tokenizer.pad_token_id, processor)
    return [collate([dataset[i] for i in range(start, start + batch)]) for start in range(0, len(samples), batch)]


# ---- timing ------------------------------------------------------------------------------------


def time_steps(model, batch_list: list[dict], steps: int, warmup: int, device: str) -> dict:
    """Seconds, samples, LM tokens and vision tokens of `steps` timed training steps."""
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)
    model.train()
    totals = {"seconds": 0.0, "samples": 0, "tokens": 0, "vision_tokens": 0, "sequence": 0}
    for step in range(warmup + steps):
        batch = {k: v.to(device) for k, v in batch_list[step % len(batch_list)].items()}
        _sync(device)
        start = time.perf_counter()
        with torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=device == "cuda"):
            loss = model(**batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        _sync(device)
        if step >= warmup:
            totals["seconds"] += time.perf_counter() - start
            totals["samples"] += int(batch["input_ids"].shape[0])
            totals["tokens"] += int(batch["attention_mask"].sum())
            totals["vision_tokens"] += vision_tokens(model.model.get_base_model().config, batch)
            totals["sequence"] = max(totals["sequence"], int(batch["input_ids"].shape[1]))
    return totals


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def report(name: str, totals: dict, model, device: str) -> dict:
    result = {"path": name, "samples_per_s": totals["samples"] / totals["seconds"],
              "tokens_per_s": totals["tokens"] / totals["seconds"],
              "lm_tokens_per_sample": totals["tokens"] / totals["samples"]}
    if device == "cuda":
        text_config = model.model.get_base_model().config.text_config
        flops = step_flops(ParamCounts.of(model), text_config, totals["tokens"], totals["sequence"],
                           totals["vision_tokens"])
        result["mfu"] = mfu(flops, totals["seconds"])
    line = (f"{name:>10}: {result['samples_per_s']:8.3f} samples/s  {result['tokens_per_s']:10.1f} tokens/s  "
            f"({result['lm_tokens_per_sample']:.0f} LM tokens per story)")
    if result.get("mfu") is not None:
        line += f"  MFU {result['mfu']:.1%}"
    print(line, flush=True)
    return result


def main() -> None:
    args = parse_args()
    torch.manual_seed(0)
    if args.threads or args.device == "cpu":
        torch.set_num_threads(args.threads or 1)
    model, processor = llava_7b_model() if args.device == "cuda" else tiny_model()
    model = with_lora(model, args.lora_r, gradient_checkpointing=args.device == "cuda", image_mode=args.image_mode)
    if args.device == "cpu":
        model = model.float()
    base = model.model.get_base_model()
    max_length = base.config.text_config.max_position_embeddings
    story_list = stories(args.batch * 2, args.scenes, args.frames, args.frame_size)
    print(f"{args.device}: LLaVA-NeXT {sum(p.numel() for p in model.parameters()) / 1e6:.1f} M params, LoRA r="
          f"{args.lora_r}, K={args.frames} frames x {args.scenes} scenes of {args.frame_size[0]}x{args.frame_size[1]}, "
          f"batch {args.batch}, {args.steps} timed steps, image mode {args.image_mode}, "
          f"{torch.get_num_threads()} threads")
    results = {}
    for name, expand in (("averaged", False), ("per-frame", True)):
        batch_list = batches(base, processor, story_list, args.batch, expand, max_length, args.image_mode)
        results[name] = report(name, time_steps(model, batch_list, args.steps, args.warmup, args.device),
                               model, args.device)
    ratio = results["averaged"]["samples_per_s"] / results["per-frame"]["samples_per_s"]
    target = args.frames / 2
    print(f"ratio averaged / per-frame (samples/s): {ratio:.2f}x; target >= K/2 = {target:.1f}x: "
          f"{'met' if ratio >= target else 'NOT met'}")


if __name__ == "__main__":
    main()
