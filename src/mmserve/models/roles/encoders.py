"""The encoder roles: ``image_encoder`` (embed_images) and ``text_encoder`` (embed_texts).

A result is one unit-norm float32 vector; a backend returns a (N, dim) array (one row per
item) and exposes the ``space`` (an :class:`~mmserve.models.spec.EmbeddingSpace`) its vectors
live in.
"""

from __future__ import annotations

import numpy as np
from PIL.Image import Image

from mmserve.models.roles.role import RoleMethod, register_role, the_image
from mmserve.models.roles.samples import sample_image

IMAGE_ENCODER = register_role(
    "image_encoder",
    description="Images to unit-norm vectors in the model's embedding space.",
    methods={
        "embed_images": RoleMethod(
            item=Image,
            result=np.ndarray,
            description="One unit-norm vector per image.",
            model_images=the_image,
        )
    },
    sample_items={"embed_images": [sample_image()]},
    has_space=True,
)

TEXT_ENCODER = register_role(
    "text_encoder",
    description="Texts to unit-norm vectors in the model's embedding space.",
    methods={
        "embed_texts": RoleMethod(
            item=str,
            result=np.ndarray,
            description="One unit-norm vector per text.",
        )
    },
    sample_items={"embed_texts": ["a photo of a cat", "a red ball on green grass"]},
    has_space=True,
)

__all__ = ["IMAGE_ENCODER", "TEXT_ENCODER"]
