"""The workflow listing says whether a run may be repeated after a failure mid-request: yes
unless a step declares ``side_effects = True`` (model steps are pure; ``index`` upserts by
content-hash id, so a repeat adds nothing twice)."""

from __future__ import annotations

from pathlib import Path

import pytest
from api_support import AUTH, build_api
from fastapi.testclient import TestClient

from mmserve.registry import Registry, registry
from mmserve.workflow.run.context import StepContext
from mmserve.workflow.steps.step import Step, StepInputs, StepOutputs

pytestmark = pytest.mark.unit

WORKFLOWS = {
    "caption_and_notify.yaml": """
name: caption_and_notify
inputs: {image: {type: image}}
steps:
  describe: {uses: caption, with: {image: "${inputs.image}"}}
  tell: {uses: notify, with: {text: "${describe.text}"}}
outputs: {sent: "${tell.sent}"}
""",
    "remember.yaml": """
name: remember
inputs: {text: {type: string}}
steps:
  add: {uses: index, with: {collection: notes, text: "${inputs.text}"}}
outputs: {count: "${add.count}"}
""",
    "notify_twice.yaml": """
name: notify_twice
inputs: {image: {type: image}}
steps:
  inner: {uses: "workflow:caption_and_notify", with: {image: "${inputs.image}"}}
outputs: {sent: "${inner.sent}"}
""",
}


class Notify(Step):
    """Sends a message: running it twice sends two."""

    side_effects = True

    class Inputs(StepInputs):
        text: str

    class Outputs(StepOutputs):
        sent: bool

    async def run(self, inputs: Inputs, ctx: StepContext) -> Outputs:
        return self.Outputs(sent=True)


def test_a_workflow_with_a_side_effect_step_is_listed_as_not_repeatable(tmp_path: Path) -> None:
    for name, text in WORKFLOWS.items():
        (tmp_path / name).write_text(text)
    plugins = Registry()  # the built-ins plus the notify step, the global one untouched
    for info in registry.plugins():
        plugins.register(info.kind, info.name, info.target, meta=info.meta)
    plugins.register("step", "notify", Notify)
    with TestClient(build_api(workflows=[str(tmp_path)], plugins=plugins)) as client:
        listed = {
            w["name"]: w for w in client.get("/v1/workflows", headers=AUTH).json()["workflows"]
        }
        one = client.get("/v1/workflows/caption_and_notify", headers=AUTH).json()
    assert listed["caption_and_notify"]["repeatable"] is False
    assert listed["caption_and_notify"]["side_effects"] == ["tell"]
    assert one["repeatable"] is False and one["side_effects"] == ["tell"]
    assert listed["remember"]["repeatable"] is True
    assert listed["remember"]["side_effects"] == []
    # a sub-workflow with a side effect makes the step that uses it one
    assert listed["notify_twice"]["side_effects"] == ["inner"]


def test_every_shipped_workflow_is_repeatable() -> None:
    with TestClient(build_api()) as client:
        listing = client.get("/v1/workflows").json()["workflows"]
    assert listing and all(w["repeatable"] for w in listing)
