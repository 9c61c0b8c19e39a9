"""GET /v1/plugins lists every role with its batched methods, like any other plugin."""

from __future__ import annotations

import pytest
from api_support import build_api
from fastapi.testclient import TestClient

pytestmark = pytest.mark.unit


def test_plugins_lists_the_roles_with_their_methods() -> None:
    with TestClient(build_api(workflows=[])) as client:
        body = client.get("/v1/plugins").json()
    roles = {p["name"]: p for p in body["plugins"] if p["kind"] == "role"}
    assert {"image_encoder", "text_encoder", "captioner", "vqa"} <= set(roles)
    assert roles["image_encoder"]["methods"] == {
        "embed_images": {
            "item": "PIL.Image.Image",
            "result": "numpy.ndarray",
            "batched_by_key": False,
            "description": "One unit-norm vector per image.",
        }
    }
    assert roles["vqa"]["methods"]["answer"]["item"] == "mmserve.models.roles.vqa.VqaItem"
    assert all(r["origin"] == "builtin" and r["description"] for r in roles.values())
