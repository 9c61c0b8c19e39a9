"""What both gateways do to an item before a model call: its images reduced to the model's input.

A role method whose items carry images that the model reads through an image processor says
so (``RoleMethod.model_images``); the model states its input size (its backend's
``image_input``, see :mod:`mmserve.media.sizes`). Both together, the item's images are
reduced, off the event loop, before they reach the model (served: before they leave the
ingress). Items of any other method, and models that state no size, pass as they are.
"""

from __future__ import annotations

import asyncio
from functools import partial
from typing import Any

from PIL.Image import Image

from mmserve.media.sizes import ImageInput, for_model
from mmserve.models.roles import RoleMethod


def _reduce(value: Any, needs: ImageInput) -> Any:
    return for_model(value, needs) if isinstance(value, Image) else value


def reduce_item_sync(role_method: RoleMethod, item: Any, needs: ImageInput | None) -> Any:
    """``item`` with its model images reduced to ``needs`` (blocking)."""
    if needs is None or role_method.model_images is None:
        return item
    return role_method.model_images(item, partial(_reduce, needs=needs))


async def reduce_item(role_method: RoleMethod, item: Any, needs: ImageInput | None) -> Any:
    """:func:`reduce_item_sync` in a worker thread (a resize, maybe a decode)."""
    if needs is None or role_method.model_images is None:
        return item
    return await asyncio.to_thread(reduce_item_sync, role_method, item, needs)


__all__ = ["reduce_item", "reduce_item_sync"]
