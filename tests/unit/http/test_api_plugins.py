"""``GET /v1/plugins`` with a third-party step whose schema cannot be generated (no Ray)."""

from __future__ import annotations

import pytest
from api_support import build_api
from fastapi.testclient import TestClient
from PIL import Image

from mmserve.registry import Registry, registry
from mmserve.workflow.run.context import StepContext
from mmserve.workflow.steps.step import Step, StepInputs, StepOutputs

pytestmark = pytest.mark.unit


class RawImageStep(Step):
    """Counts pixels; its input is typed as a raw PIL image, which JSON Schema cannot say."""

    class Inputs(StepInputs):
        image: Image.Image

    class Outputs(StepOutputs):
        pixels: int

    async def run(self, inputs: Inputs, ctx: StepContext) -> Outputs:
        return self.Outputs(pixels=inputs.image.width * inputs.image.height)


def test_a_step_without_a_json_schema_is_listed_as_broken_and_the_rest_still_are() -> None:
    plugins = Registry()  # the built-ins plus the third-party step, the global one untouched
    for info in registry.plugins():
        plugins.register(info.kind, info.name, info.target, meta=info.meta)
    plugins.register("step", "raw_pixels", RawImageStep)
    with TestClient(build_api(plugins=plugins)) as client:
        response = client.get("/v1/plugins")
        assert response.status_code == 200, response.text
        body = response.json()
    broken = {b["name"]: b for b in body["broken"]}
    assert "raw_pixels" in broken
    assert broken["raw_pixels"]["error"].startswith("cannot describe the plugin: ")
    listed = {(p["kind"], p["name"]): p for p in body["plugins"]}
    assert ("step", "raw_pixels") not in listed
    assert "image" in listed[("step", "caption")]["inputs"]["properties"]
