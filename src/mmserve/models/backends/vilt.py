"""``vilt-vqa``: ViLT visual question answering, a classifier over a fixed answer vocabulary.

ViLT-VQA was trained with a multi-label (sigmoid) objective over its answers, so the answer is
the label with the highest logit and its score is that label's sigmoid probability (scores of
different answers do not sum to 1).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import torch
from transformers import AutoProcessor, ViltForQuestionAnswering

from mmserve.media.sizes import ImageInput, image_input_of
from mmserve.models.device import as_rgb, placement_for
from mmserve.models.hf import HuggingFaceBackend
from mmserve.models.roles import VqaItem
from mmserve.models.sources.resolve import from_pretrained, load_model, resolve_source
from mmserve.models.spec import Answer, ModelSpec

#: ViLT's processor caps the longest edge at this ratio of the shortest (1333 / 800).
_MAX_LONGER_EDGE, _MAX_SHORTER_EDGE = 1333, 800


class ViltVqaBackend(HuggingFaceBackend):
    """Answers a question about an image with one label of the model's answer vocabulary."""

    roles: ClassVar[frozenset[str]] = frozenset({"vqa"})

    def __init__(self, spec: ModelSpec) -> None:
        self.spec = spec
        self._placement = placement_for(spec)
        resolved = resolve_source(spec.source, revision=spec.revision)
        self._processor = from_pretrained(AutoProcessor, resolved)
        self._model = load_model(ViltForQuestionAnswering, resolved, self._placement)
        config = self._model.config
        self._labels: dict[int, str] = {int(k): str(v) for k, v in config.id2label.items()}
        # Text positions are learned embeddings: longer questions cannot be represented.
        self._max_length = min(
            int(config.max_position_embeddings), int(self._processor.tokenizer.model_max_length)
        )

    @property
    def image_input(self) -> ImageInput | None:
        """The input size of the image processor: ViLT caps the longest edge at 1333/800 of
        the shortest and rounds both down to ``size_divisor``."""
        images = self._processor.image_processor
        shortest = getattr(images.size, "shortest_edge", None)
        divisor = getattr(images, "size_divisor", None)
        if not shortest or not isinstance(divisor, int):
            return None
        longest = int(_MAX_LONGER_EDGE / _MAX_SHORTER_EDGE * shortest)
        return image_input_of(images, longest_edge=longest, size_divisor=divisor)

    def answer(self, items: Sequence[VqaItem]) -> list[Answer]:
        """One answer per (image, question) item, score = sigmoid probability of the label."""
        if not items:
            return []
        # Images of different sizes are padded to a common size; pixel_mask hides the
        # padding from the model, so each answer is independent of its batch.
        batch = self._processor(
            images=as_rgb([item.image for item in items]),
            text=[item.question for item in items],
            padding=True,
            truncation=True,
            max_length=self._max_length,
            return_tensors="pt",
        )
        with torch.inference_mode():
            logits = self._model(**self._placement.move(batch)).logits.float()
        probs = torch.sigmoid(logits)
        best = probs.argmax(dim=-1).tolist()
        return [
            Answer(text=self._labels[index], score=float(probs[row, index]))
            for row, index in enumerate(best)
        ]


__all__ = ["ViltVqaBackend"]
