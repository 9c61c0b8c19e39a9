"""The roles that make images: ``image_generator`` (``generate``: a prompt and settings ->
an image) and ``image_editor`` (``edit``: an image and an instruction -> an image).

One item is one image to make. Items that cannot share a model call (a diffusion pipeline
runs a batch at one size, one step count and one guidance scale) have different batch keys,
so batching never mixes them. Every item carries its own seed: a backend draws each item's
noise from its own generator, so the same item gives the same image whatever else rides in
its batch.
"""

from __future__ import annotations

from typing import Any

from PIL import Image as PILImage
from PIL.Image import Image
from pydantic import BaseModel, ConfigDict, Field, field_validator

from mmserve.models.roles.role import RoleMethod, register_role

#: The seed range (``torch.Generator.manual_seed`` takes 64-bit seeds; JSON readers 53-bit).
MAX_SEED = 2**53 - 1


def _not_blank(text: str, what: str) -> str:
    if not text.strip():
        raise ValueError(f"the {what} is empty (only whitespace)")
    return text


class GenerateItem(BaseModel):
    """One text-to-image request."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    prompt: str = Field(min_length=1, description="What to draw.")
    negative_prompt: str | None = Field(
        default=None, description="What to keep out of the image (used when guidance > 1)."
    )
    width: int = Field(default=512, ge=1, description="Image width in pixels.")
    height: int = Field(default=512, ge=1, description="Image height in pixels.")
    steps: int = Field(default=4, ge=1, description="Denoising steps (1-4 for turbo models).")
    guidance: float = Field(
        default=0.0,
        ge=0,
        le=50,
        description="Classifier-free guidance scale; 0 (or 1) turns guidance off, as turbo "
        "models want.",
    )
    seed: int = Field(default=0, ge=0, le=MAX_SEED, description="Same seed, same image.")

    @field_validator("prompt")
    @classmethod
    def _prompt(cls, prompt: str) -> str:
        return _not_blank(prompt, "prompt")


class EditItem(BaseModel):
    """One instruction-guided edit of an image (InstructPix2Pix)."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    image: Image = Field(description="The image to edit.")
    instruction: str = Field(min_length=1, description="What to change, e.g. 'make it snow'.")
    steps: int = Field(default=10, ge=1, description="Denoising steps.")
    guidance: float = Field(
        default=7.5, ge=0, le=50, description="How strongly to follow the instruction."
    )
    image_guidance: float = Field(
        default=1.5, ge=0, le=50, description="How closely to stay with the input image."
    )
    seed: int = Field(default=0, ge=0, le=MAX_SEED, description="Same seed, same image.")

    @field_validator("instruction")
    @classmethod
    def _instruction(cls, instruction: str) -> str:
        return _not_blank(instruction, "instruction")


def generate_batch_key(item: GenerateItem) -> tuple[Any, ...]:
    """Items sharing one pipeline call: same size, steps and guidance scale."""
    return (item.width, item.height, item.steps, item.guidance)


def edit_batch_key(item: EditItem) -> tuple[Any, ...]:
    """Items sharing one pipeline call: same input size, steps and both guidance scales."""
    return (item.image.size, item.steps, item.guidance, item.image_guidance)


IMAGE_GENERATOR = register_role(
    "image_generator",
    description="Text-to-image generation (diffusion): a prompt and settings to an image.",
    methods={
        "generate": RoleMethod(
            item=GenerateItem,
            result=Image,
            batch_key=generate_batch_key,
            description="One image per item, width x height, the same for the same seed.",
        )
    },
    sample_items={"generate": [GenerateItem(prompt="a red circle", width=64, height=64, steps=1)]},
)

IMAGE_EDITOR = register_role(
    "image_editor",
    description="Instruction-guided image editing: an image and an instruction to an image.",
    methods={
        "edit": RoleMethod(
            item=EditItem,
            result=Image,
            batch_key=edit_batch_key,
            description="One edited image per item, at the input's size rounded down to the "
            "model's multiple (8 pixels for Stable Diffusion).",
        )
    },
    sample_items={
        "edit": [
            EditItem(
                image=PILImage.new("RGB", (64, 64), (200, 30, 30)),
                instruction="make it blue",
                steps=1,
            )
        ]
    },
)

__all__ = [
    "IMAGE_EDITOR",
    "IMAGE_GENERATOR",
    "MAX_SEED",
    "EditItem",
    "GenerateItem",
    "edit_batch_key",
    "generate_batch_key",
]
