"""``score``: how well an image matches a text, as CLIPScore.

CLIPScore (Hessel et al., 2021; as torchmetrics computes it) is ``max(100 * cos(image,
text), 0)`` in a joint image/text embedding space such as CLIP's: 0 for unrelated, about 30
for a good caption with CLIP ViT-B/32. Used to check a generated image against its prompt.
"""

from __future__ import annotations

import numpy as np
from pydantic import Field

from mmserve.errors import EmbeddingSpaceMismatchError
from mmserve.media import ImageValue
from mmserve.registry import register_step
from mmserve.workflow.run.context import StepContext
from mmserve.workflow.steps.step import Step, StepInputs, StepOutputs

#: CLIPScore's weight on the cosine similarity (torchmetrics' convention).
CLIP_SCORE_WEIGHT = 100.0


@register_step("score")
class Score(Step):
    """CLIPScore of an image and a text: max(100 * cosine similarity, 0)."""

    class Inputs(StepInputs):
        image: ImageValue
        text: str = Field(min_length=1)
        image_model: str | None = Field(default=None, description="An image_encoder model.")
        text_model: str | None = Field(
            default=None, description="A text_encoder model in the image model's space."
        )

    class Outputs(StepOutputs):
        score: float = Field(ge=0, description="CLIPScore, in [0, 100].")
        similarity: float = Field(description="The raw cosine similarity, in [-1, 1].")

    async def run(self, inputs: Inputs, ctx: StepContext) -> Outputs:
        gateway = ctx.gateway
        image_model = gateway.model_for("image_encoder", inputs.image_model)
        text_model = gateway.model_for("text_encoder", inputs.text_model)
        image_space, text_space = await gateway.space(image_model), await gateway.space(text_model)
        if image_space != text_space:
            raise EmbeddingSpaceMismatchError(left=str(image_space), right=str(text_space))
        image_vector = ctx.record(await gateway.call(image_model, "embed_images", inputs.image))
        text_vector = ctx.record(await gateway.call(text_model, "embed_texts", inputs.text))
        similarity = float(
            np.dot(
                np.asarray(image_vector.value, dtype=np.float64),
                np.asarray(text_vector.value, dtype=np.float64),
            )
        )
        similarity = max(-1.0, min(1.0, similarity))
        return self.Outputs(score=max(CLIP_SCORE_WEIGHT * similarity, 0.0), similarity=similarity)


__all__ = ["CLIP_SCORE_WEIGHT", "Score"]
