"""Built-in steps over the four model roles: embed_image, embed_text, caption, answer."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field

from mmserve.media import ImageValue
from mmserve.models.roles import CaptionItem, VqaItem
from mmserve.models.spec import Answer, EmbeddingSpace
from mmserve.registry import register_step
from mmserve.workflow.run.context import StepContext
from mmserve.workflow.steps.step import Step, StepInputs, StepOutputs


def _model_field() -> str | None:
    return Field(  # type: ignore[no-any-return]
        default=None,
        description="Config name of the model to use; the role's default model when omitted.",
    )


class Embedding(StepOutputs):
    """A unit-norm vector and the space it lives in."""

    vector: list[float] = Field(description="Unit-norm embedding.")
    space: EmbeddingSpace


class _Embed(Step):
    """One embedding step: the value of its ``Inputs``' field ``value_field``, embedded by
    the ``role``'s model with ``method`` (``embed_image`` and ``embed_text`` differ only in
    these and in their ``Inputs``)."""

    deterministic = True  # greedy decoding / a fixed encoder: same inputs, same result
    role: ClassVar[str]
    method: ClassVar[str]
    value_field: ClassVar[str]
    Outputs = Embedding

    async def run(self, inputs: Any, ctx: StepContext) -> Embedding:
        model = ctx.gateway.model_for(self.role, inputs.model)
        value = getattr(inputs, self.value_field)
        called = ctx.record(await ctx.gateway.call(model, self.method, value))
        space = await ctx.gateway.space(model)
        return Embedding(vector=[float(v) for v in called.value], space=space)


@register_step("embed_image")
class EmbedImage(_Embed):
    """Embed an image with the image encoder (a unit-norm vector in its space)."""

    role, method, value_field = "image_encoder", "embed_images", "image"

    class Inputs(StepInputs):
        image: ImageValue
        model: str | None = _model_field()


@register_step("embed_text")
class EmbedText(_Embed):
    """Embed a text with the text encoder (a unit-norm vector in its space)."""

    role, method, value_field = "text_encoder", "embed_texts", "text"

    class Inputs(StepInputs):
        text: str = Field(min_length=1)
        model: str | None = _model_field()


@register_step("caption")
class Caption(Step):
    """Describe an image in words (optionally continuing a text prompt)."""

    deterministic = True  # greedy decoding / a fixed encoder: same inputs, same result

    class Inputs(StepInputs):
        image: ImageValue
        prompt: str | None = Field(
            default=None, description="Text the caption should start with, e.g. 'a photo of'."
        )
        model: str | None = _model_field()

    class Outputs(StepOutputs):
        text: str = Field(description="The caption.")

    async def run(self, inputs: Inputs, ctx: StepContext) -> Outputs:
        model = ctx.gateway.model_for("captioner", inputs.model)
        prompt = inputs.prompt or None  # an empty prompt means unconditional captioning
        item = CaptionItem(image=inputs.image, prompt=prompt)
        called = ctx.record(await ctx.gateway.call(model, "caption", item))
        return self.Outputs(text=called.value)


@register_step("answer")
class AnswerQuestion(Step):
    """Answer a question about an image (visual question answering)."""

    deterministic = True  # greedy decoding / a fixed encoder: same inputs, same result

    class Inputs(StepInputs):
        image: ImageValue
        question: str = Field(min_length=1)
        model: str | None = _model_field()

    class Outputs(StepOutputs):
        answer: str
        score: float | None = Field(
            default=None, description="Model confidence in [0, 1] where the model gives one."
        )

    async def run(self, inputs: Inputs, ctx: StepContext) -> Outputs:
        model = ctx.gateway.model_for("vqa", inputs.model)
        item = VqaItem(image=inputs.image, question=inputs.question)
        called = ctx.record(await ctx.gateway.call(model, "answer", item))
        result: Answer = called.value
        return self.Outputs(answer=result.text, score=result.score)
