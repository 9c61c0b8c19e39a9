"""``blip-caption`` and ``blip-vqa``: BLIP captioning and generative visual question answering.

Both decode greedily (deterministic). Batches are built so that an item's output does not
depend on the other items in its batch:

* captioning groups the images by prompt and runs one ``generate`` per distinct prompt, since
  BLIP's ``generate`` overwrites the first token with the decoder start token and drops the
  last one, which only works when every prompt in the batch has the same length;
* VQA batches together only questions of the same token length: BLIP's answer decoder
  cross-attends to the encoded question with no padding mask (``generate`` passes all ones,
  and in transformers 5.24 ``BlipTextSelfAttention`` drops ``encoder_attention_mask``
  anyway), so padding a short question to a long one's length would change its answer.

A caption is decoded like the Hugging Face examples do (special tokens skipped), so with a
prompt ("a photograph of") the caption starts with the prompt it continues.

VQA scores are sequence probabilities: the product of the probabilities the decoder gave
each generated token, end token included (``exp`` of the summed log-probabilities).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from transformers import (
    AutoImageProcessor,
    AutoTokenizer,
    BlipForConditionalGeneration,
    BlipForQuestionAnswering,
)

from mmserve.media.sizes import ImageInput, image_input_of
from mmserve.models.device import as_rgb, placement_for
from mmserve.models.hf import HuggingFaceBackend
from mmserve.models.roles import CaptionItem, VqaItem
from mmserve.models.sources.resolve import from_pretrained, load_model, resolve_source
from mmserve.models.spec import Answer, ModelSpec

if TYPE_CHECKING:
    from PIL.Image import Image

_GREEDY: dict[str, Any] = {"do_sample": False, "num_beams": 1}


class _Blip(HuggingFaceBackend):
    def __init__(self, spec: ModelSpec, model_class: Any) -> None:
        self.spec = spec
        self._placement = placement_for(spec)
        resolved = resolve_source(spec.source, revision=spec.revision)
        self._images = from_pretrained(AutoImageProcessor, resolved)
        self._tokenizer = from_pretrained(AutoTokenizer, resolved)
        self._model = load_model(model_class, resolved, self._placement)

    @property
    def image_input(self) -> ImageInput | None:
        """The input size of the image processor (images are reduced to it beforehand)."""
        return image_input_of(self._images)

    def _pixels(self, images: Sequence[Image]) -> dict[str, Any]:
        return self._placement.move(self._images(images=as_rgb(images), return_tensors="pt"))

    def _text(self, texts: list[str]) -> dict[str, Any]:
        batch = self._tokenizer(
            texts, padding=True, truncation=True, return_token_type_ids=False, return_tensors="pt"
        )
        return self._placement.move(batch)


class BlipCaptionBackend(_Blip):
    """Image captioning with BlipForConditionalGeneration, optionally from a text prompt."""

    roles: ClassVar[frozenset[str]] = frozenset({"captioner"})

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__(spec, BlipForConditionalGeneration)

    def caption(self, items: Sequence[CaptionItem]) -> list[str]:
        """One caption per item; an item's ``prompt`` (if any) is the start of its caption.
        Items without a prompt take the unconditional path."""
        groups: dict[str | None, list[int]] = {}
        for index, item in enumerate(items):
            prompt = item.prompt.strip() if item.prompt and item.prompt.strip() else None
            groups.setdefault(prompt, []).append(index)
        captions = [""] * len(items)
        for prompt, indices in groups.items():
            texts = self._generate([items[i].image for i in indices], prompt)
            for index, text in zip(indices, texts, strict=True):
                captions[index] = text
        return captions

    def _generate(self, images: list[Image], prompt: str | None) -> list[str]:
        inputs = self._pixels(images)
        if prompt is not None:
            inputs |= self._text([prompt] * len(images))
        with torch.inference_mode():
            out = self._model.generate(**inputs, max_new_tokens=self.spec.max_new_tokens, **_GREEDY)
        return [
            text.strip() for text in self._tokenizer.batch_decode(out, skip_special_tokens=True)
        ]


class BlipVqaBackend(_Blip):
    """Generative VQA with BlipForQuestionAnswering; score = the answer's sequence probability."""

    roles: ClassVar[frozenset[str]] = frozenset({"vqa"})

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__(spec, BlipForQuestionAnswering)

    def answer(self, items: Sequence[VqaItem]) -> list[Answer]:
        """One generated answer per (image, question) item."""
        if not items:
            return []
        # Questions are tokenised one by one and batched only with questions of the same
        # token length, so no batch ever holds padding (see the module docstring).
        encoded = [self._tokenizer(item.question, truncation=True)["input_ids"] for item in items]
        groups: dict[int, list[int]] = {}
        for index, ids in enumerate(encoded):
            groups.setdefault(len(ids), []).append(index)
        answers: list[Answer | None] = [None] * len(items)
        for indices in groups.values():
            ids = torch.tensor([encoded[i] for i in indices], dtype=torch.long)
            group = self._generate([items[i].image for i in indices], ids)
            for index, answer in zip(indices, group, strict=True):
                answers[index] = answer
        return [answer for answer in answers if answer is not None]

    def _generate(self, images: list[Image], input_ids: torch.Tensor) -> list[Answer]:
        inputs = self._pixels(images)
        inputs |= self._placement.move(
            {"input_ids": input_ids, "attention_mask": torch.ones_like(input_ids)}
        )
        with torch.inference_mode():
            out = self._model.generate(
                **inputs,
                max_new_tokens=self.spec.max_new_tokens,
                output_logits=True,
                return_dict_in_generate=True,
                **_GREEDY,
            )
        texts = self._tokenizer.batch_decode(out.sequences, skip_special_tokens=True)
        end_token = self._model.config.text_config.sep_token_id
        scores = _sequence_probabilities(out.sequences[:, 1:], out.logits, end_token)
        return [
            Answer(text=text.strip(), score=score)
            for text, score in zip(texts, scores, strict=True)
        ]


def _sequence_probabilities(
    generated: torch.Tensor, logits: Sequence[torch.Tensor], eos_token_id: int
) -> list[float]:
    """exp(sum of log p(token)) over each generated sequence, up to and including its end
    token (the padding that follows a finished sequence is not part of the answer)."""
    steps = torch.stack([step.float() for step in logits], dim=1)  # (N, T, vocab)
    log_probs = torch.log_softmax(steps, dim=-1)
    chosen = log_probs.gather(-1, generated[:, : steps.shape[1]].unsqueeze(-1)).squeeze(-1)
    is_end = (generated[:, : steps.shape[1]] == eos_token_id).int()
    after_end = (is_end.cumsum(dim=1) - is_end) > 0
    total = chosen.masked_fill(after_end, 0.0).sum(dim=1)
    return [float(value) for value in torch.exp(total).tolist()]


__all__ = ["BlipCaptionBackend", "BlipVqaBackend"]
