"""Steps that make images: ``generate_image`` (role ``image_generator``) and ``edit_image``
(role ``image_editor``).

What any model needs is checked here, as the inputs are validated (an empty prompt or
instruction, a negative seed: 422). What depends on the model -- sizes off its multiple,
over its ``max_pixels``, steps over its ``max_steps`` -- is checked against the model's config
entry by the gateway the step calls, before the model is loaded or called
(:mod:`mmserve.models.image_limits`), and comes back as the same kind of error.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, Field, field_validator

from mmserve.media import ImageValue
from mmserve.models.roles.images import MAX_SEED, EditItem, GenerateItem
from mmserve.registry import register_step
from mmserve.workflow.run.context import StepContext
from mmserve.workflow.steps.step import Step, StepInputs, StepOutputs

_DEFAULTS_GENERATE = GenerateItem.model_fields
_DEFAULTS_EDIT = EditItem.model_fields


def _not_blank(text: str, what: str) -> str:
    if not text.strip():
        raise ValueError(f"the {what} is empty (only whitespace)")
    return text


def _model_field() -> str | None:
    return Field(  # type: ignore[no-any-return]
        default=None,
        description="Config name of the model to use; the role's default model when omitted.",
    )


def _seed_field() -> int:
    return Field(  # type: ignore[no-any-return]
        default=0, ge=0, le=MAX_SEED, description="Same seed, same image."
    )


class ImageOutput(StepOutputs):
    """An image a step made, with its size."""

    image: ImageValue = Field(description="The image made (PNG in JSON answers).")
    width: int
    height: int


class _MakeImage(Step):
    """One image-making step: its inputs become the ``Item`` the ``role``'s model takes
    (every field of the item is an input of the same name), sent with ``method``; the image
    it makes is the output. ``generate_image`` and ``edit_image`` differ only in these and in
    their ``Inputs``."""

    role: ClassVar[str]
    method: ClassVar[str]
    Item: ClassVar[type[BaseModel]]
    Outputs = ImageOutput

    async def run(self, inputs: Any, ctx: StepContext) -> ImageOutput:
        model = ctx.gateway.model_for(self.role, inputs.model)
        item = self.Item(**{name: getattr(inputs, name) for name in self.Item.model_fields})
        called = await ctx.gateway.call(model, self.method, item)
        ctx.record(called)
        image = called.value
        return ImageOutput(image=image, width=image.width, height=image.height)


@register_step("generate_image")
class GenerateImage(_MakeImage):
    """Draw an image from a text prompt (text-to-image diffusion)."""

    role, method, Item = "image_generator", "generate", GenerateItem

    class Inputs(StepInputs):
        prompt: str = Field(min_length=1, description="What to draw.")
        negative_prompt: str | None = Field(
            default=None, description="What to keep out (used when guidance > 1)."
        )
        width: int = Field(default=_DEFAULTS_GENERATE["width"].default, ge=1)
        height: int = Field(default=_DEFAULTS_GENERATE["height"].default, ge=1)
        steps: int = Field(
            default=_DEFAULTS_GENERATE["steps"].default,
            ge=1,
            description="Denoising steps (1-4 for turbo models, 20-50 for SD 1.5).",
        )
        guidance: float = Field(
            default=_DEFAULTS_GENERATE["guidance"].default,
            ge=0,
            le=50,
            description="Classifier-free guidance; 0 for turbo models, ~7.5 for SD 1.5.",
        )
        seed: int = _seed_field()
        model: str | None = _model_field()

        @field_validator("prompt")
        @classmethod
        def _prompt(cls, prompt: str) -> str:
            return _not_blank(prompt, "prompt")


@register_step("edit_image")
class EditImage(_MakeImage):
    """Edit an image following a text instruction (InstructPix2Pix). The result has the
    input's size rounded down to a multiple of what the model needs (8 pixels for SD)."""

    role, method, Item = "image_editor", "edit", EditItem

    class Inputs(StepInputs):
        image: ImageValue
        instruction: str = Field(min_length=1, description="What to change, e.g. 'make it snow'.")
        steps: int = Field(default=_DEFAULTS_EDIT["steps"].default, ge=1)
        guidance: float = Field(default=_DEFAULTS_EDIT["guidance"].default, ge=0, le=50)
        image_guidance: float = Field(
            default=_DEFAULTS_EDIT["image_guidance"].default,
            ge=0,
            le=50,
            description="How closely to stay with the input image.",
        )
        seed: int = _seed_field()
        model: str | None = _model_field()

        @field_validator("instruction")
        @classmethod
        def _instruction(cls, instruction: str) -> str:
            return _not_blank(instruction, "instruction")


__all__ = ["EditImage", "GenerateImage", "ImageOutput"]
