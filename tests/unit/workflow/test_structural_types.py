"""A step's output model fed into a plugin step that declares a dict or a same-shaped model:
accepted by the checker and handed over by the engine (issue 17: `list[dict[str, Any]]` fed by
`${retrieve.matches}` was refused)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pydantic import BaseModel

from mmserve.errors import WorkflowValidationError
from mmserve.registry import Registry
from mmserve.types import RetrievedMatch
from mmserve.workflow import Engine, load_workflow_text
from mmserve.workflow.language.typecheck import mismatch
from mmserve.workflow.run.context import StepContext

pytestmark = pytest.mark.unit


class MyMatch(BaseModel):
    text: str
    score: float


class Texts:
    """Take matches as plain dicts."""

    class Inputs(BaseModel):
        matches: list[dict[str, Any]]

    class Outputs(BaseModel):
        texts: list[str]

    async def run(self, inputs: Inputs, ctx: StepContext) -> Outputs:
        assert all(isinstance(m, dict) for m in inputs.matches)
        return self.Outputs(texts=[str(m["text"]) for m in inputs.matches])


class Best:
    """Take matches as the plugin's own model."""

    class Inputs(BaseModel):
        matches: list[MyMatch]

    class Outputs(BaseModel):
        best: str

    async def run(self, inputs: Inputs, ctx: StepContext) -> Outputs:
        return self.Outputs(best=max(inputs.matches, key=lambda m: m.score).text)


class Scores:
    """Take something of another shape."""

    class Inputs(BaseModel):
        matches: list[dict[str, int]]

    class Outputs(BaseModel):
        n: int

    async def run(self, inputs: Inputs, ctx: StepContext) -> Outputs:
        return self.Outputs(n=len(inputs.matches))


FLOW = """
name: structural
inputs:
  query: {type: string}
steps:
  search: {uses: search, with: {query: "${inputs.query}", n: 3}}
  texts: {uses: texts, with: {matches: "${search.matches}"}}
  best: {uses: best, with: {matches: "${search.matches}"}}
outputs:
  texts: ${texts.texts}
  best: ${best.best}
"""


@pytest.fixture
def plugins(test_registry: Registry) -> Registry:
    for name, cls in {"texts": Texts, "best": Best, "scores": Scores}.items():
        test_registry.register("step", name, cls)
    return test_registry


def test_a_model_fits_a_dict_whose_values_take_its_fields() -> None:
    assert mismatch(list[RetrievedMatch], list[dict[str, Any]]) is None
    assert mismatch(RetrievedMatch, dict[str, Any]) is None
    assert mismatch(list[RetrievedMatch], list[dict[str, int]]) is not None


def test_a_model_fits_another_model_of_the_same_shape_only() -> None:
    class Same(BaseModel):
        text: str
        score: float
        note: str = ""

    class Narrower(BaseModel):
        text: str

    class Stricter(BaseModel):
        text: str
        score: float
        rank: int

    assert mismatch(MyMatch, Same) is None  # every field fits; `note` has a default
    assert mismatch(MyMatch, Narrower) is not None  # `score` has nowhere to go
    assert mismatch(MyMatch, Stricter) is not None  # `rank` is required and missing


def test_plugin_steps_take_matches_as_dicts_or_their_own_model(
    plugins: Registry, gateway: Any
) -> None:
    workflow = load_workflow_text(FLOW, registry=plugins)
    result = asyncio.run(Engine(gateway, registry=plugins).run(workflow, {"query": "cat"}))
    assert result.outputs == {"texts": ["cat #0", "cat #1", "cat #2"], "best": "cat #0"}


def test_a_shape_that_does_not_fit_is_still_refused(plugins: Registry) -> None:
    text = FLOW.replace("uses: texts", "uses: scores").replace("${texts.texts}", "${texts.n}")
    with pytest.raises(WorkflowValidationError) as info:
        load_workflow_text(text, registry=plugins)
    [issue] = info.value.issues
    assert "list[Match]" in issue.message
    assert "mmserve plugins STEP_NAME" in (issue.hint or "")
