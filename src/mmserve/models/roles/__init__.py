"""Model roles: registered plugins (registry kind ``role``), see :mod:`.base`.

Importing this package registers the built-in roles (one submodule each): ``image_encoder``,
``text_encoder``, ``captioner``, ``vqa``, ``image_generator``, ``image_editor`` and
``llm``. A third-party role is registered the same way, with :func:`register_role`, from its
package's entry-point module.
"""

from mmserve.models.roles.captioner import CaptionItem
from mmserve.models.roles.encoders import IMAGE_ENCODER, TEXT_ENCODER
from mmserve.models.roles.images import IMAGE_EDITOR, IMAGE_GENERATOR, EditItem, GenerateItem
from mmserve.models.roles.llm import ChatItem, ChatMessage, ToolCall, ToolSpec
from mmserve.models.roles.role import RoleMethod, RoleSpec, register_role, role_spec, type_name
from mmserve.models.roles.samples import sample_image
from mmserve.models.roles.vqa import VqaItem

__all__ = [
    "IMAGE_EDITOR",
    "IMAGE_ENCODER",
    "IMAGE_GENERATOR",
    "TEXT_ENCODER",
    "CaptionItem",
    "ChatItem",
    "ChatMessage",
    "EditItem",
    "GenerateItem",
    "RoleMethod",
    "RoleSpec",
    "ToolCall",
    "ToolSpec",
    "VqaItem",
    "register_role",
    "role_spec",
    "sample_image",
    "type_name",
]
