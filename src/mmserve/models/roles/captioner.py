"""The ``captioner`` role: ``caption`` (image, prompt?) -> text."""

from __future__ import annotations

from PIL.Image import Image
from pydantic import BaseModel, ConfigDict, Field

from mmserve.models.roles.role import RoleMethod, image_field, register_role
from mmserve.models.roles.samples import sample_image


class CaptionItem(BaseModel):
    """One image to caption, optionally continuing a text prompt."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    image: Image
    prompt: str | None = Field(
        default=None, description="Text the caption starts with; None: unconditional."
    )


CAPTIONER = register_role(
    "captioner",
    description="Describe an image in words, optionally continuing a prompt.",
    methods={
        "caption": RoleMethod(
            item=CaptionItem,
            result=str,
            description="One caption per item; a batch without any prompt is unconditional.",
            model_images=image_field,
        )
    },
    # Both paths: an unconditional caption and one continuing a prompt.
    sample_items={
        "caption": [
            CaptionItem(image=sample_image()),
            CaptionItem(image=sample_image(), prompt="a picture of"),
        ]
    },
)

__all__ = ["CAPTIONER", "CaptionItem"]
