"""Steps over the ``image_tagger`` role: ``tag_image`` and ``fingerprint_image``.

A step reaches the model only through ``ctx.gateway``: locally the call runs in process,
served it rides in a batch of the model's own deployment. ``ctx.record`` puts the batch
size in the run's trace.
"""

from __future__ import annotations

from pydantic import Field

from mmserve.media import ImageValue
from mmserve.registry import register_step
from mmserve.workflow.run.context import StepContext
from mmserve.workflow.steps.step import Step, StepInputs, StepOutputs
from mmserve_colour_tags.role import FingerprintItem, Tag, TagItem


@register_step("tag_image")
class TagImage(Step):
    """Tag an image with the colours that cover most of it (an image_tagger model)."""

    class Inputs(StepInputs):
        image: ImageValue
        top_k: int = Field(default=3, ge=1, le=20)
        min_share: float = Field(default=0.05, ge=0, le=1)
        model: str | None = Field(default=None, description="Config name of the tagger.")

    class Outputs(StepOutputs):
        tags: list[str] = Field(description="Tag names, largest share first.")
        shares: list[float] = Field(description="The share of the image each tag covers.")

    async def run(self, inputs: Inputs, ctx: StepContext) -> Outputs:
        model = ctx.gateway.model_for("image_tagger", inputs.model)
        item = TagItem(image=inputs.image, top_k=inputs.top_k, min_share=inputs.min_share)
        called = ctx.record(await ctx.gateway.call(model, "tag", item))
        tags: list[Tag] = called.value
        return self.Outputs(tags=[t.name for t in tags], shares=[t.share for t in tags])


@register_step("fingerprint_image")
class FingerprintImage(Step):
    """A perceptual fingerprint of an image (difference hash, hex)."""

    class Inputs(StepInputs):
        image: ImageValue
        hash_size: int = Field(default=8, ge=2, le=16)
        model: str | None = Field(default=None, description="Config name of the tagger.")

    class Outputs(StepOutputs):
        fingerprint: str

    async def run(self, inputs: Inputs, ctx: StepContext) -> Outputs:
        model = ctx.gateway.model_for("image_tagger", inputs.model)
        item = FingerprintItem(image=inputs.image, hash_size=inputs.hash_size)
        called = ctx.record(await ctx.gateway.call(model, "fingerprint", item))
        return self.Outputs(fingerprint=called.value)
