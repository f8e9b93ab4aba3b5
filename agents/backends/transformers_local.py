"""`transformers` backend: one model in this process, shared by every concurrent caller.

Generation runs in a worker thread under a lock, so the event loop keeps serving other tasks (HTTP
fetches, other models) while this model computes. Structured output is constrained with xgrammar,
the grammar engine vLLM uses, so both backends constrain alike and a schema call always yields
JSON of the schema's shape.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from pathlib import Path

import torch
from PIL import Image
from transformers.utils import logging as hf_logging

from agents.backends.chat import (
    BackendError,
    ChatResult,
    ContextOverflow,
    ModelNotFound,
    SamplingParams,
    Usage,
    apply_stop,
    normalize_messages,
)
from agents.backends.hf_loading import load_model
from agents.backends.structured import check_schema
from agents.backends.tiny_models import resolve_model_id

# Sampling draws from torch's one process-wide generator, and generate() takes no generator of its
# own: two models sampling in two threads would interleave their draws, and the same seed would give
# different text from run to run. Seeded sampling therefore holds this lock from seed to last token.
_SAMPLING = threading.Lock()


class TransformersBackend:
    backend = "transformers"

    def __init__(self, model_id: str, *, device: str = "cpu", dtype: str = "auto", adapter: str | None = None):
        """`adapter`: a LoRA folder as peft saves it, applied in memory; the model id becomes MODEL+ADAPTER."""
        hf_logging.disable_progress_bar()
        self.model_id = model_id
        self._loaded = load_model(resolve_model_id(model_id), device=device, dtype=dtype)
        config = self._loaded.model.config
        self.max_length = int(getattr(getattr(config, "text_config", config), "max_position_embeddings"))
        """Prompt tokens at which a call is refused with ContextOverflow."""
        if adapter:
            self._loaded.model = _with_adapter(self._loaded.model, adapter)
            self.model_id = f"{model_id}+{adapter}"
        self._lock = threading.Lock()
        self._grammars: dict[str, object] = {}
        self._grammar_compiler = None

    @property
    def model(self):
        return self._loaded.model

    @property
    def tokenizer(self):
        return self._loaded.tokenizer

    async def chat(self, messages, *, schema=None, params=SamplingParams()) -> ChatResult:
        check_schema(schema)
        messages = normalize_messages(messages)
        return await asyncio.to_thread(self.generate, messages, schema, params)

    async def aclose(self) -> None:
        return None

    def generate(self, messages: list[dict], schema: dict | None, params: SamplingParams) -> ChatResult:
        """Blocking generation on normalized messages; safe to call from several threads."""
        inputs = self._encode(messages).to(self.model.device)
        if inputs["input_ids"].shape[-1] >= self.max_length:  # not one token left to generate
            raise ContextOverflow(int(inputs["input_ids"].shape[-1]), self.max_length)
        kwargs = dict(max_new_tokens=params.max_tokens, do_sample=params.temperature > 0,
                      pad_token_id=self.tokenizer.pad_token_id or self.tokenizer.eos_token_id)
        if params.temperature > 0:
            kwargs.update(temperature=params.temperature, top_p=params.top_p)
        if params.stop:
            kwargs.update(stop_strings=list(params.stop), tokenizer=self.tokenizer)
        sampling = _SAMPLING if params.temperature > 0 else contextlib.nullcontext()
        with self._lock, sampling:  # one generate per model at a time: the grammar state is per call
            if schema is not None:
                # A new processor per call: xgrammar's matcher carries the parse state.
                kwargs["logits_processor"] = [self._logits_processor(schema)]
            if params.seed is not None:
                torch.manual_seed(params.seed)
            with torch.inference_mode():
                output = self.model.generate(**inputs, **kwargs)
        new_tokens = output[0, inputs["input_ids"].shape[1]:]
        text = self.tokenizer.decode(new_tokens, skip_special_tokens=True)
        completion = int((new_tokens != kwargs["pad_token_id"]).sum())
        return ChatResult(text=apply_stop(text, params.stop), model=self.model_id,
                          usage=Usage(inputs["input_ids"].shape[1], completion))

    def _encode(self, messages: list[dict]):
        if self._loaded.is_vision:
            hf_messages = [{"role": m["role"], "content": [_hf_part(p) for p in m["content"]]} for m in messages]
            return self._loaded.processor.apply_chat_template(
                hf_messages, add_generation_prompt=True, tokenize=True, return_dict=True, return_tensors="pt")
        for m in messages:
            if any(p["type"] == "image" for p in m["content"]):
                raise BackendError(f"{self.model_id} is a text-only model; the messages contain an image")
        text_messages = [{"role": m["role"], "content": "".join(p["text"] for p in m["content"])} for m in messages]
        return self.tokenizer.apply_chat_template(
            text_messages, add_generation_prompt=True, tokenize=True, return_dict=True, return_tensors="pt")

    def _logits_processor(self, schema: dict):
        import xgrammar

        key = json.dumps(schema, sort_keys=True)
        if key not in self._grammars:
            if self._grammar_compiler is None:
                vocab_size = self.model.get_output_embeddings().weight.shape[0]
                info = xgrammar.TokenizerInfo.from_huggingface(self.tokenizer, vocab_size=vocab_size)
                # cache_enabled=False: xgrammar 0.2.8's own cache crashes ("per_rule_fsm_hashes" check)
                # when one compiler compiles a second, different schema; we cache per schema above.
                self._grammar_compiler = xgrammar.GrammarCompiler(info, cache_enabled=False)
            # any_whitespace=False: a weak model otherwise spends its token budget on "\n\t" between
            # tokens and stops mid-object (1 of 3 calls on a random model, see notes/cpu-feasibility).
            self._grammars[key] = self._grammar_compiler.compile_json_schema(key, any_whitespace=False)
        return xgrammar.contrib.hf.LogitsProcessor(self._grammars[key])


def _hf_part(part: dict) -> dict:
    if part["type"] == "text":
        return part
    with Image.open(part["path"]) as image:
        return {"type": "image", "image": image.convert("RGB")}


def _with_adapter(model, adapter: str):
    if not (Path(adapter) / "adapter_config.json").is_file():
        raise ModelNotFound(f"adapter: no adapter_config.json in {adapter} (expected a folder saved by peft)")
    from peft import PeftModel  # here: peft is only needed when an adapter is applied

    return PeftModel.from_pretrained(model, adapter).eval()
