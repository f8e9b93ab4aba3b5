"""Tiny random-weight models built from configs, for tests and the offline demo.

Nothing is downloaded: a byte-level BPE tokenizer is trained on a few sentences, the models are
built from small configs, and each is saved with `save_pretrained` so that it loads back through
the same `from_pretrained(path)` path a real model id takes. Their text is meaningless by design.

    paths = ensure_tiny_models()          # built once into ~/.cache/vischain/tiny-v1, then reused
    paths["llava-next"], paths["qwen2-vl"], paths["llama"]
    ensure_tiny_models(names=("sd",))["sd"]   # a tiny Stable Diffusion pipeline, for the painter

Each builder imports torch, tokenizers, transformers or diffusers itself: `resolve_model_id`, which
the painter and the command line use, must not load them.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from agents.backends.chat import ModelNotFound

# Bump when a builder changes, so stale caches are rebuilt rather than reused.
TINY_VERSION = "v1"
CHAT_NAMES = ("llava-next", "qwen2-vl", "llama")
NAMES = (*CHAT_NAMES, "sd")

SPECIAL_TOKENS = ["<unk>", "<s>", "</s>", "<pad>", "<image>", "<video>", "<|im_start|>", "<|im_end|>",
                  "<|vision_start|>", "<|vision_end|>", "<|image_pad|>", "<|video_pad|>", "<|endoftext|>"]

CORPUS = [
    "USER: What is happening in this image? ASSISTANT: A person tightens a bolt on a steel gear.",
    "Which image shows the next step? ANSWER: 2. The circuit board is soldered, then tested.",
    '{"task_kind": "itmr", "steps": [{"question": "Pick the tool", "keywords": ["wrench", "gear"]}]}',
    '{"verdict": "yes", "reason": "the image shows a red valve", "confidence": 7}',
    "The quick brown fox jumps over the lazy dog near the river bank at sunset.",
]

# Vicuna / LLaVA-v1.6 style; content is a string or a list of image/text parts.
VICUNA_TEMPLATE = (
    "{% for m in messages %}{% if m['role'] == 'system' %}"
    "{{ m['content'] if m['content'] is string else m['content'][0]['text'] }} "
    "{% else %}{{ 'USER: ' if m['role'] == 'user' else 'ASSISTANT: ' }}"
    "{% if m['content'] is string %}{{ m['content'] }}{% else %}{% for c in m['content'] %}"
    "{% if c['type'] == 'image' %}<image>\n{% elif c['type'] == 'text' %}{{ c['text'] }}{% endif %}"
    "{% endfor %}{% endif %}{{ '</s>' if m['role'] == 'assistant' else ' ' }}{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}ASSISTANT:{% endif %}"
)

# ChatML as Qwen2-VL-Instruct uses it, with its vision markers around each image.
CHATML_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n"
    "{% if m['content'] is string %}{{ m['content'] }}{% else %}{% for c in m['content'] %}"
    "{% if c['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif c['type'] == 'text' %}{{ c['text'] }}{% endif %}{% endfor %}{% endif %}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def default_cache_dir() -> Path:
    root = os.environ.get("VISCHAIN_CACHE") or Path.home() / ".cache" / "vischain"
    return Path(root) / f"tiny-{TINY_VERSION}"


def ensure_tiny_models(cache_dir: str | Path | None = None, names: tuple[str, ...] = CHAT_NAMES) -> dict[str, Path]:
    """Build any missing tiny model into `cache_dir` and return name -> folder."""
    root = Path(cache_dir) if cache_dir else default_cache_dir()
    builders = {"llava-next": build_llava_next, "qwen2-vl": build_qwen2_vl, "llama": build_llama, "sd": build_sd}
    paths = {}
    for name in names:
        target = root / name
        # model_index.json marks a diffusers pipeline, config.json a transformers model.
        if not any((target / marker).is_file() for marker in ("config.json", "model_index.json")):
            _build_atomically(target, builders[name])
        paths[name] = target
    return paths


def _build_atomically(target: Path, build) -> None:
    # Build in a sibling temp folder and rename, so a killed build never leaves a half model that
    # a later run would mistake for a finished one.
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        import torch

        torch.manual_seed(0)
        build(staging)
        try:
            staging.rename(target)
        except OSError:  # another process finished the same model first
            if not target.is_dir():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def train_tokenizer(chat_template: str, eos_token: str = "</s>"):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE(unk_token="<unk>"))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=SPECIAL_TOKENS,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    bpe.train_from_iterator(CORPUS, trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe, bos_token="<s>", eos_token=eos_token, unk_token="<unk>", pad_token="<pad>",
        extra_special_tokens={"image_token": "<image>"},
    )
    tokenizer.chat_template = chat_template
    return tokenizer


def _llama_text_config(tokenizer, eos_token_id: int, **extra):
    return dict(
        vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096,
        pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id, eos_token_id=eos_token_id,
        **extra,
    )


def build_llava_next(folder: Path) -> None:
    from transformers import (
        CLIPVisionConfig,
        LlamaConfig,
        LlavaNextConfig,
        LlavaNextForConditionalGeneration,
        LlavaNextImageProcessorPil,
        LlavaNextProcessor,
    )

    tokenizer = train_tokenizer(VICUNA_TEMPLATE)
    pinpoints = [[32, 64], [64, 32], [64, 64]]
    config = LlavaNextConfig(
        vision_config=CLIPVisionConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                                       num_attention_heads=4, image_size=32, patch_size=8, projection_dim=64),
        text_config=LlamaConfig(**_llama_text_config(tokenizer, tokenizer.eos_token_id)),
        image_token_index=tokenizer.convert_tokens_to_ids("<image>"),
        image_grid_pinpoints=pinpoints, vision_feature_select_strategy="default", vision_feature_layer=-2,
    )
    image_processor = LlavaNextImageProcessorPil(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32},
                                                 image_grid_pinpoints=pinpoints)
    # num_additional_image_tokens=1: the CLS token the "default" strategy drops is still counted.
    processor = LlavaNextProcessor(image_processor=image_processor, tokenizer=tokenizer, patch_size=8,
                                   vision_feature_select_strategy="default", chat_template=VICUNA_TEMPLATE,
                                   num_additional_image_tokens=1)
    LlavaNextForConditionalGeneration(config).save_pretrained(folder)
    processor.save_pretrained(folder)


def build_qwen2_vl(folder: Path) -> None:
    from transformers import Qwen2VLConfig, Qwen2VLForConditionalGeneration, Qwen2VLImageProcessorPil

    tokenizer = train_tokenizer(CHATML_TEMPLATE, eos_token="<|im_end|>")
    ids = {key: tokenizer.convert_tokens_to_ids(token) for key, token in {
        "image_token_id": "<|image_pad|>", "video_token_id": "<|video_pad|>",
        "vision_start_token_id": "<|vision_start|>", "vision_end_token_id": "<|vision_end|>"}.items()}
    # mrope_section must sum to head_dim / 2 = (64 / 4) / 2 = 8.
    rope = {"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [2, 3, 3]}
    config = Qwen2VLConfig(
        text_config=_llama_text_config(tokenizer, tokenizer.eos_token_id, rope_parameters=rope),
        vision_config=dict(depth=2, embed_dim=64, hidden_size=64, num_heads=4, mlp_ratio=2, patch_size=8,
                           spatial_merge_size=2, temporal_patch_size=2),
        **ids,
    )
    image_processor = Qwen2VLImageProcessorPil(size={"shortest_edge": 16 * 16 * 4, "longest_edge": 64 * 64},
                                               patch_size=8, merge_size=2, temporal_patch_size=2)
    Qwen2VLForConditionalGeneration(config).save_pretrained(folder)
    # Saved piecewise, as the hub's Qwen2-VL folders are: the loader assembles the processor.
    image_processor.save_pretrained(folder)
    tokenizer.save_pretrained(folder)


def build_llama(folder: Path) -> None:
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = train_tokenizer(VICUNA_TEMPLATE)
    LlamaForCausalLM(LlamaConfig(**_llama_text_config(tokenizer, tokenizer.eos_token_id))).save_pretrained(folder)
    tokenizer.save_pretrained(folder)


def resolve_model_id(model_id: str) -> str:
    """`tiny:NAME` names a tiny model (built on first use); anything else passes through unchanged."""
    if not model_id.startswith("tiny:"):
        return model_id
    name = model_id.removeprefix("tiny:")
    if name not in NAMES:
        raise ModelNotFound(f"unknown tiny model {model_id!r}; known: {', '.join('tiny:' + n for n in NAMES)}")
    return str(ensure_tiny_models(names=(name,))[name])


def build_sd(folder: Path) -> None:
    """A 64x64 Stable Diffusion pipeline (UNet 1M, VAE 0.7M, CLIP text 30k parameters)."""
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    bpe = Tokenizer(models.BPE(end_of_word_suffix="</w>", unk_token="<|endoftext|>"))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.train_from_iterator(CORPUS, trainers.BpeTrainer(
        vocab_size=300, end_of_word_suffix="</w>", special_tokens=["<|startoftext|>", "<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    # CLIPTokenizer wants vocab/merges objects (vocab_file= is silently ignored in transformers 5).
    merges = [tuple(m) for m in json.loads(bpe.to_str())["model"]["merges"]]
    tokenizer = CLIPTokenizer(vocab=bpe.get_vocab(), merges=merges, model_max_length=77)
    text_encoder = CLIPTextModel(CLIPTextConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, max_position_embeddings=77, projection_dim=32))
    unet = UNet2DConditionModel(
        block_out_channels=(32, 64), layers_per_block=1, sample_size=32, in_channels=4, out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32, attention_head_dim=8, norm_num_groups=32)
    vae = AutoencoderKL(block_out_channels=[32, 64], in_channels=3, out_channels=3, latent_channels=4,
                        norm_num_groups=32, down_block_types=["DownEncoderBlock2D"] * 2,
                        up_block_types=["UpDecoderBlock2D"] * 2, sample_size=64)
    scheduler = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                              clip_sample=False, set_alpha_to_one=False, steps_offset=1)
    StableDiffusionPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet, scheduler=scheduler,
                            safety_checker=None, feature_extractor=None,
                            requires_safety_checker=False).save_pretrained(folder)
