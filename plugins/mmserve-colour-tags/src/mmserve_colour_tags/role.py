"""The ``image_tagger`` role: what any image tagger model does, whatever its backend.

Two batched methods; a backend serving the role implements both, each taking a list of items
and returning one result per item, in order.
"""

from __future__ import annotations

from PIL.Image import Image
from pydantic import BaseModel, ConfigDict, Field

from mmserve.models.roles import RoleMethod, register_role, sample_image


class TagItem(BaseModel):
    """One image to tag."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    image: Image
    top_k: int = Field(default=3, ge=1, le=20, description="Most tags to return.")
    min_share: float = Field(
        default=0.05, ge=0, le=1, description="Least share of the image a tag must cover."
    )


class Tag(BaseModel):
    """One tag and the share of the image it covers."""

    name: str
    share: float = Field(ge=0, le=1)


class FingerprintItem(BaseModel):
    """One image to fingerprint (difference hash of ``hash_size`` x ``hash_size`` bits)."""

    model_config = ConfigDict(extra="forbid", frozen=True, arbitrary_types_allowed=True)

    image: Image
    hash_size: int = Field(default=8, ge=2, le=16)


IMAGE_TAGGER = register_role(
    "image_tagger",
    description="Tags that describe an image, and a perceptual fingerprint of it.",
    methods={
        "tag": RoleMethod(
            item=TagItem, result=list[Tag], description="The image's tags, largest share first."
        ),
        "fingerprint": RoleMethod(
            item=FingerprintItem,
            result=str,
            # Images are hashed together as one array, which needs one hash size per batch.
            batch_key=lambda item: item.hash_size,
            description="A difference hash as hex: near-duplicate images get near-equal hashes.",
        ),
    },
    # Served replicas run these before they report ready (warm-up); two hash sizes, as
    # items of different batch keys are warmed in batches of their own.
    sample_items={
        "tag": [TagItem(image=sample_image())],
        "fingerprint": [
            FingerprintItem(image=sample_image()),
            FingerprintItem(image=sample_image(), hash_size=16),
        ],
    },
)

__all__ = ["IMAGE_TAGGER", "FingerprintItem", "Tag", "TagItem"]
