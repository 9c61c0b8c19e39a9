"""``sentence``: BERT-family sentence embeddings, the sentence-transformers recipe.

Token embeddings of the last layer are averaged over the real (non-padding) tokens and the
result is L2-normalised -- exactly what ``SentenceTransformer(...).encode(...,
normalize_embeddings=True)`` computes for models such as all-MiniLM-L6-v2, without the
sentence-transformers dependency. Texts are truncated to the model's ``max_seq_length``
(from ``sentence_bert_config.json`` when the folder has one, as sentence-transformers does).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, ClassVar

import torch
from transformers import AutoModel, AutoTokenizer

from mmserve.models.device import empty_vectors, placement_for, unit_rows
from mmserve.models.hf import HuggingFaceBackend
from mmserve.models.identity import model_identity
from mmserve.models.sources.resolve import (
    ResolvedSource,
    from_pretrained,
    load_model,
    resolve_source,
)
from mmserve.models.spec import EmbeddingSpace, ModelSpec, Vectors


def _max_length(resolved: ResolvedSource, tokenizer: Any, config: Any) -> int:
    limits = [int(config.max_position_embeddings)]
    if resolved.folder is not None:
        settings = resolved.folder / "sentence_bert_config.json"
        if settings.is_file():
            limits.append(int(json.loads(settings.read_text("utf-8"))["max_seq_length"]))
    if isinstance(tokenizer.model_max_length, int) and tokenizer.model_max_length < 1_000_000:
        limits.append(tokenizer.model_max_length)
    return min(limits)


class SentenceBackend(HuggingFaceBackend):
    """Mean-pooled, unit-norm text embeddings from a BERT-family encoder (AutoModel)."""

    roles: ClassVar[frozenset[str]] = frozenset({"text_encoder"})

    def __init__(self, spec: ModelSpec) -> None:
        self.spec = spec
        self._placement = placement_for(spec)
        resolved = resolve_source(spec.source, revision=spec.revision)
        self._tokenizer = from_pretrained(AutoTokenizer, resolved)
        self._model = load_model(AutoModel, resolved, self._placement)
        self._max_length = _max_length(resolved, self._tokenizer, self._model.config)
        dim = int(self._model.config.hidden_size)
        self._space = EmbeddingSpace(
            backend="sentence", model_id=model_identity(spec.source, spec.revision), dim=dim
        )

    @property
    def space(self) -> EmbeddingSpace:
        return self._space

    def embed_texts(self, texts: Sequence[str]) -> Vectors:
        """(N, dim) unit-norm text vectors."""
        if not texts:
            return empty_vectors(self._space.dim)
        batch = self._tokenizer(
            list(texts),
            padding=True,
            truncation=True,
            max_length=self._max_length,
            return_tensors="pt",
        )
        moved = self._placement.move(batch)
        with torch.inference_mode():
            tokens = self._model(**moved).last_hidden_state.float()
        # Padding tokens must not count towards the mean, or a text's vector would depend
        # on the longest text in its batch.
        mask = moved["attention_mask"].unsqueeze(-1).to(tokens.dtype)
        pooled = (tokens * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
        return unit_rows(pooled)


__all__ = ["SentenceBackend"]
