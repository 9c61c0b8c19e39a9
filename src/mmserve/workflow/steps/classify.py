"""Zero-shot classification through a joint image/text space (CLIP)."""

from __future__ import annotations

import numpy as np
from pydantic import Field, field_validator

from mmserve.errors import EmbeddingSpaceMismatchError
from mmserve.media import ImageValue
from mmserve.registry import register_step
from mmserve.workflow.run.context import StepContext
from mmserve.workflow.steps.step import Step, StepInputs, StepOutputs

#: CLIP's learned logit scale saturates at 100; using it turns cosines into CLIP's own softmax.
_LOGIT_SCALE = 100.0


class LabelScore(StepOutputs):
    """One label and its probability (``classify``'s ``scores``)."""

    label: str
    score: float = Field(description="Softmax probability over the given labels.")


@register_step("classify")
class Classify(Step):
    """Pick the label whose text best matches an image, zero-shot (CLIP-style)."""

    deterministic = True  # encoders only: same inputs, same scores

    class Inputs(StepInputs):
        image: ImageValue
        labels: list[str] = Field(min_length=1, max_length=1000)
        template: str = Field(
            default="a photo of a {}",
            description="How each label is phrased for the text encoder; '{}' is the label.",
        )
        image_model: str | None = None
        text_model: str | None = None

        @field_validator("labels")
        @classmethod
        def _distinct(cls, labels: list[str]) -> list[str]:
            if any(not label.strip() for label in labels):
                raise ValueError("labels must be non-empty strings")
            if len(set(labels)) != len(labels):
                raise ValueError(f"labels must be distinct, got {labels!r}")
            return labels

        @field_validator("template")
        @classmethod
        def _has_slot(cls, template: str) -> str:
            if "{}" not in template:
                raise ValueError(f"template must contain '{{}}' for the label, got {template!r}")
            return template

    class Outputs(StepOutputs):
        label: str = Field(description="The best-matching label.")
        score: float = Field(description="Its probability.")
        scores: list[LabelScore] = Field(description="Every label, best first.")

    async def run(self, inputs: Inputs, ctx: StepContext) -> Outputs:
        gateway = ctx.gateway
        image_model = gateway.model_for("image_encoder", inputs.image_model)
        text_model = gateway.model_for("text_encoder", inputs.text_model)
        image_space, text_space = await gateway.space(image_model), await gateway.space(text_model)
        if image_space != text_space:
            raise EmbeddingSpaceMismatchError(left=str(image_space), right=str(text_space))
        prompts = [inputs.template.replace("{}", label) for label in inputs.labels]
        image_vector = ctx.record(await gateway.call(image_model, "embed_images", inputs.image))
        text_vectors = ctx.record(await gateway.call_batch(text_model, "embed_texts", prompts))
        similarities = np.stack(text_vectors.items) @ np.asarray(image_vector.value)
        logits = _LOGIT_SCALE * similarities.astype(np.float64)
        probabilities = np.exp(logits - logits.max())
        probabilities /= probabilities.sum()
        ranked = sorted(
            zip(inputs.labels, probabilities.tolist(), strict=True), key=lambda p: -p[1]
        )
        scores = [LabelScore(label=label, score=score) for label, score in ranked]
        return self.Outputs(label=scores[0].label, score=scores[0].score, scores=scores)
