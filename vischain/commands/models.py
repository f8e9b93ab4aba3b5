"""`vischain tiny`, `vischain chat`, `vischain serve`: models on their own, outside any pipeline."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from agents.backends.chat import SamplingParams
from agents.backends.factory import ModelSpec, open_backend
from schemas.errors import UsageError
from vischain.error_lines import one_line_errors

console = Console(emoji=False)


def tiny(cache_dir: Annotated[Optional[Path], typer.Option(help="Where to build; default ~/.cache/vischain")] = None):
    """Build the tiny random-weight models (LLaVA-NeXT, Qwen2-VL, Llama) used by tests and the demo."""
    from agents.backends.tiny_models import ensure_tiny_models  # here: building loads torch and transformers

    paths = ensure_tiny_models(cache_dir)
    table = Table("model id", "folder")
    for name, path in paths.items():
        table.add_row(f"tiny:{name}", str(path))
    console.print(table)


def chat(
    prompt: Annotated[str, typer.Argument(help="The user message.")],
    model: Annotated[str, typer.Option(help="Hub id, local folder or tiny:NAME.")] = "tiny:qwen2-vl",
    backend: Annotated[str, typer.Option(help="transformers, openai or vllm.")] = "transformers",
    base_url: Annotated[Optional[list[str]], typer.Option(help="openai backend: endpoint(s) ending in /v1.")] = None,
    image: Annotated[Optional[list[Path]], typer.Option(help="Image file(s) sent before the prompt.")] = None,
    schema: Annotated[Optional[Path], typer.Option(help="JSON Schema file: the reply must match it.")] = None,
    max_tokens: Annotated[int, typer.Option(min=1)] = 256,
    temperature: Annotated[float, typer.Option(min=0.0)] = 0.0,
    seed: Optional[int] = None,
):
    """Send one message (with images) to a model and print the reply."""
    with one_line_errors():
        schema_value = _read_schema(schema) if schema else None
        content = [{"type": "image", "path": str(p)} for p in image or []] + [{"type": "text", "text": prompt}]
        spec = ModelSpec(model=model, backend=backend, base_urls=tuple(base_url or ()))
        params = SamplingParams(max_tokens=max_tokens, temperature=temperature, seed=seed)

        async def run():
            client = open_backend(spec)
            try:
                return await client.chat([{"role": "user", "content": content}], schema=schema_value, params=params)
            finally:
                await client.aclose()

        try:
            result = asyncio.run(run())
        except ValueError as err:  # message-shape errors name the part that is wrong
            raise UsageError(str(err)) from None
    console.print(result.text, markup=False, highlight=False)
    console.print(f"[dim]{result.usage.prompt_tokens} prompt + {result.usage.completion_tokens} completion tokens[/]")


def _read_schema(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise UsageError(f"--schema: file not found: {path}") from None
    except json.JSONDecodeError as err:
        raise UsageError(f"--schema: {path} is not JSON: {err.msg} at line {err.lineno}") from None


def serve(
    model: Annotated[str, typer.Option(help="Hub id, local folder or tiny:NAME.")],
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8000,
    host: str = "127.0.0.1",
    device: str = "cpu",
):
    """Serve one in-process model over the OpenAI chat protocol (for machines without vLLM)."""
    from agents.backends.openai_server import main as serve_main

    with one_line_errors():
        serve_main(["--model", model, "--port", str(port), "--host", host, "--device", device])
