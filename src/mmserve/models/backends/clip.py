"""``clip``: CLIP joint image/text embeddings (``CLIPModel`` towers + projections).

Images and texts land in one space (the projection output, ``projection_dim`` wide), so a
caption can retrieve images and an image can retrieve captions. Vectors are L2-normalised,
so a dot product is the cosine similarity CLIP was trained with.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, ClassVar

import torch
from transformers import AutoImageProcessor, AutoTokenizer, CLIPModel

from mmserve.media.sizes import ImageInput, image_input_of
from mmserve.models.device import as_rgb, empty_vectors, placement_for, unit_rows
from mmserve.models.hf import HuggingFaceBackend
from mmserve.models.identity import model_identity
from mmserve.models.sources.resolve import from_pretrained, load_model, resolve_source
from mmserve.models.spec import EmbeddingSpace, ModelSpec, Vectors

if TYPE_CHECKING:
    from PIL.Image import Image


class ClipBackend(HuggingFaceBackend):
    """CLIP image and text encoder; one set of weights serves both roles."""

    roles: ClassVar[frozenset[str]] = frozenset({"image_encoder", "text_encoder"})

    def __init__(self, spec: ModelSpec) -> None:
        self.spec = spec
        self._placement = placement_for(spec)
        resolved = resolve_source(spec.source, revision=spec.revision)
        self._images = from_pretrained(AutoImageProcessor, resolved)
        self._tokenizer = from_pretrained(AutoTokenizer, resolved)
        self._model = load_model(CLIPModel, resolved, self._placement)
        dim = int(self._model.config.projection_dim)
        self._space = EmbeddingSpace(
            backend="clip", model_id=model_identity(spec.source, spec.revision), dim=dim
        )

    @property
    def space(self) -> EmbeddingSpace:
        return self._space

    @property
    def image_input(self) -> ImageInput | None:
        """The input size of the image processor (images are reduced to it beforehand)."""
        return image_input_of(self._images)

    def embed_images(self, images: Sequence[Image]) -> Vectors:
        """(N, dim) unit-norm image vectors."""
        if not images:
            return empty_vectors(self._space.dim)
        batch = self._images(images=as_rgb(images), return_tensors="pt")
        with torch.inference_mode():
            out = self._model.get_image_features(**self._placement.move(batch))
        return unit_rows(out.pooler_output)

    def embed_texts(self, texts: Sequence[str]) -> Vectors:
        """(N, dim) unit-norm text vectors; texts longer than the context are truncated."""
        if not texts:
            return empty_vectors(self._space.dim)
        # Right padding is safe: CLIP's text tower is causal and pools at the first EOS.
        batch = self._tokenizer(list(texts), padding=True, truncation=True, return_tensors="pt")
        with torch.inference_mode():
            out = self._model.get_text_features(**self._placement.move(batch))
        return unit_rows(out.pooler_output)


__all__ = ["ClipBackend"]
