"""The ``vqa`` role: ``answer`` (image, question) -> Answer (text, score)."""

from __future__ import annotations

from PIL.Image import Image
from pydantic import BaseModel, ConfigDict, Field

from mmserve.models.roles.role import RoleMethod, image_field, register_role
from mmserve.models.roles.samples import sample_image
from mmserve.models.spec import Answer


class VqaItem(BaseModel):
    """One question about one image."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    image: Image
    question: str = Field(min_length=1)


VQA = register_role(
    "vqa",
    description="Answer a question about an image (visual question answering).",
    methods={
        "answer": RoleMethod(
            item=VqaItem,
            result=Answer,
            description="One answer (text, score) per item.",
            model_images=image_field,
        )
    },
    sample_items={"answer": [VqaItem(image=sample_image(), question="what colour is the ball?")]},
)

__all__ = ["VQA", "VqaItem"]
