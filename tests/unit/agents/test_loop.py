"""The agent loop with the fake llm and the fake models: tools, handles, errors, bounds."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageOps

from mmserve.agents import Agent, AgentResult, AgentRun, AgentSpec, tool_spec
from mmserve.config import AppConfig
from mmserve.errors import DeadlineExceededError, InputError
from mmserve.gateway.local import LocalGateway
from mmserve.media import ImageValue
from mmserve.models.backends.fake_llm import LOOP_MARKER
from mmserve.models.roles import ChatMessage
from mmserve.registry import Registry, registry
from mmserve.workflow import Engine, Workflow, load_workflows
from mmserve.workflow.run.context import StepContext
from mmserve.workflow.steps.step import Step, StepInputs, StepOutputs

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[3]
RED = Image.new("RGB", (16, 16), (220, 30, 30))
BLUE = Image.new("RGB", (16, 16), (30, 60, 220))
MIRROR = """\
name: mirror
description: Mirror an image left to right.
inputs:
  image: {type: image, description: The image to mirror.}
steps:
  flip: {uses: mirror, with: {image: "${inputs.image}"}}
outputs:
  image: ${flip.image}
"""


class Mirror(Step):
    """A step that makes an image (no built-in step does yet)."""

    class Inputs(StepInputs):
        image: ImageValue

    class Outputs(StepOutputs):
        image: Image.Image

    async def run(self, inputs: Inputs, ctx: StepContext) -> Outputs:
        return self.Outputs(image=ImageOps.mirror(inputs.image))


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[Engine, dict[str, Workflow]]:
    folder = tmp_path_factory.mktemp("agents")
    (folder / "mirror.yaml").write_text(MIRROR, encoding="utf-8")
    plugins = Registry()
    for info in registry.plugins():
        plugins.register(info.kind, info.name, info.target, meta=info.meta)
    plugins.register("step", "mirror", Mirror)
    fake = {"backend": "fake", "source": "fake://"}
    models: dict[str, Any] = {
        r: fake for r in ("image_encoder", "text_encoder", "captioner", "vqa")
    }
    models["llm"] = {"backend": "fake-llm", "source": "fake-llm://"}
    config = AppConfig.from_dict({"models": models, "store": {"kind": "memory"}})
    workflows = load_workflows([ROOT / "workflows", folder], registry=plugins)
    return Engine(LocalGateway(config), registry=plugins), workflows


def run(
    setup: tuple[Engine, dict[str, Workflow]],
    text: str,
    images: list[Image.Image],
    *,
    max_turns: int = 4,
    timeout_s: float = 30.0,
) -> tuple[AgentResult, AgentRun]:
    engine, workflows = setup
    spec = AgentSpec(
        name="t", model="llm", tools=["caption", "answer", "mirror"], max_turns=max_turns
    )
    agent_run = AgentRun(Agent(spec), engine, workflows)
    message = ChatMessage(role="user", content=text)
    result = asyncio.run(agent_run.run([message], images, timeout_s=timeout_s))
    return result, agent_run


def test_tools_run_in_order_on_the_images_named_and_the_answer_quotes_them(setup: Any) -> None:
    result, _ = run(setup, 'caption and answer question="what colour?" about image_2', [RED, BLUE])
    assert result.status == "ok"
    assert result.turns == 2
    assert [(t.tool, t.arguments, t.status) for t in result.trace] == [
        ("caption", {"image": "image_2"}, "ok"),
        ("answer", {"image": "image_2", "question": "what colour?"}, "ok"),
    ]
    assert result.trace[0].result == {"caption": "a blue image"}
    assert [step.step for step in result.trace[0].trace] == ["caption"]
    assert result.message.content == (
        'caption: {"caption": "a blue image"}; answer: {"answer": "blue", "score": 1.0}'
    )


def test_an_image_a_tool_makes_becomes_a_new_handle(setup: Any) -> None:
    half = Image.new("RGB", (20, 10), (220, 30, 30))
    half.paste(Image.new("RGB", (10, 10), (30, 60, 220)), (10, 0))
    result, _ = run(setup, "mirror image_1", [half])
    assert result.trace[0].result == {"image": "image_2"}
    made = result.images["image_2"]
    assert made.getpixel((0, 0)) == (30, 60, 220)  # the blue half is now on the left
    assert list(result.images) == ["image_2"]  # the user's own image is not "made"
    assert result.message.content == 'mirror: {"image": "image_2"}'


def test_tool_errors_go_back_to_the_llm_as_results(setup: Any) -> None:
    # caption with no image handle in the conversation: the workflow refuses the input
    result, _ = run(setup, "caption please", [])
    assert result.status == "ok"
    assert result.trace[0].status == "error"
    assert "image" in (result.trace[0].error or "")
    assert result.message.content.startswith('caption: {"error": ')
    # an image argument that names no handle is an error result too, not a crash
    result, _ = run(setup, "caption image=cat", [RED])
    assert result.trace[0].status == "error"
    assert "'cat' is not an image handle; handles: image_1" in (result.trace[0].error or "")


def test_a_model_that_keeps_calling_tools_stops_at_max_turns(setup: Any) -> None:
    result, _ = run(setup, f"caption image_1 {LOOP_MARKER}", [RED], max_turns=3)
    assert result.status == "max_turns"
    assert result.turns == 3
    assert len(result.trace) == 3
    assert result.message.tool_calls[0].name == "caption"


def test_bad_conversations_are_input_errors_and_the_deadline_bounds_the_run(setup: Any) -> None:
    with pytest.raises(InputError, match="at least one message"):
        asyncio.run(
            AgentRun(Agent(AgentSpec(name="t", model="llm")), *setup).run([], [], timeout_s=5)
        )
    with pytest.raises(InputError, match="'image_2'.*sent 1 image"):
        run(setup, "caption image_2", [RED])
    with pytest.raises(DeadlineExceededError, match="deadline"):
        run(setup, f"caption image_1 {LOOP_MARKER}", [RED], max_turns=50, timeout_s=1e-9)


def test_a_workflow_as_a_tool_takes_images_by_handle(setup: Any) -> None:
    spec = tool_spec(setup[1]["caption"])
    assert spec.name == "caption"
    assert spec.parameters["properties"]["image"]["type"] == "string"
    assert "image handle" in spec.parameters["properties"]["image"]["description"]
    assert spec.parameters["required"] == ["image"]
