"""Fixtures for the workflow tests: test step plugins on a fresh registry and a fake gateway."""

from __future__ import annotations

import asyncio
import textwrap
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pytest
from PIL import Image
from pydantic import BaseModel, Field

from mmserve.errors import ModelNotConfiguredError, WorkflowIssue, WorkflowValidationError
from mmserve.gateway.contract import Batched, Called
from mmserve.media import ImageValue
from mmserve.models.roles import CaptionItem
from mmserve.models.spec import EmbeddingSpace
from mmserve.registry import Registry
from mmserve.workflow import load_workflow
from mmserve.workflow.run.context import StepContext


class FakeGateway:
    """A ModelGateway with deterministic answers; remembers the calls it got."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []

    def model_for(self, role: str, name: str | None = None) -> str:
        if name not in (None, "fake"):
            raise ModelNotConfiguredError(f"no model {name!r}")
        return "fake"

    def models(self) -> dict[str, str]:
        return {"fake": "captioner"}

    async def space(self, model: str) -> EmbeddingSpace:
        return EmbeddingSpace(backend="fake", model_id=model, dim=3)

    async def call(self, model: str, method: str, item: Any) -> Called[Any]:
        batched = await self.call_batch(model, method, [item])
        return Called(batched.items[0], batched.batch_size)

    async def call_batch(self, model: str, method: str, items: Sequence[Any]) -> Batched[Any]:
        self.calls.append((method, len(items)))
        if method in ("embed_images", "embed_texts"):
            return Batched([np.ones(3, dtype=np.float32) for _ in items], len(items))
        if method == "caption":
            sizes = [item.image.size for item in items]
            return Batched([f"a {w}x{h} picture" for w, h in sizes], len(items))
        raise NotImplementedError(method)


class Match(BaseModel):
    text: str
    score: float


class Echo:
    """Return the text unchanged."""

    class Inputs(BaseModel):
        text: str

    class Outputs(BaseModel):
        text: str

    async def run(self, inputs: Inputs, ctx: StepContext) -> Outputs:
        return self.Outputs(text=inputs.text)


class Count:
    """Count words, with a bounded top_k."""

    class Inputs(BaseModel):
        text: str
        top_k: int = Field(default=5, ge=1, le=100)

    class Outputs(BaseModel):
        count: int

    async def run(self, inputs: Inputs, ctx: StepContext) -> Outputs:
        return self.Outputs(count=min(len(inputs.text.split()), inputs.top_k))


class Search:
    """Return n fake matches."""

    class Inputs(BaseModel):
        query: str
        n: int = 2

    class Outputs(BaseModel):
        matches: list[Match]
        best: Match | None = None

    async def run(self, inputs: Inputs, ctx: StepContext) -> Outputs:
        matches = [Match(text=f"{inputs.query} #{i}", score=1.0 / (i + 1)) for i in range(inputs.n)]
        return self.Outputs(matches=matches, best=matches[0] if matches else None)


class Caption:
    """Caption an image through the gateway."""

    class Inputs(BaseModel):
        image: ImageValue
        prompt: str | None = None

    class Outputs(BaseModel):
        text: str
        vector: Any = None

    async def run(self, inputs: Inputs, ctx: StepContext) -> Outputs:
        item = CaptionItem(image=inputs.image, prompt=inputs.prompt)
        called = ctx.record(await ctx.gateway.call("fake", "caption", item))
        vectors = await ctx.gateway.call_batch("fake", "embed_texts", [called.value])
        return self.Outputs(text=called.value, vector=vectors.items[0])


class Join:
    """Join texts."""

    class Inputs(BaseModel):
        parts: list[str]
        sep: str = " "
        mode: Literal["plain", "upper"] = "plain"

    class Outputs(BaseModel):
        text: str
        sizes: list[int]

    async def run(self, inputs: Inputs, ctx: StepContext) -> Outputs:
        text = inputs.sep.join(inputs.parts)
        text = text.upper() if inputs.mode == "upper" else text
        return self.Outputs(text=text, sizes=[len(p) for p in inputs.parts])


class Add:
    """Add two numbers."""

    class Inputs(BaseModel):
        a: float
        b: float = 0.0

    class Outputs(BaseModel):
        total: float

    async def run(self, inputs: Inputs, ctx: StepContext) -> Outputs:
        return self.Outputs(total=inputs.a + inputs.b)


class Boom:
    """Always fails with a plain exception."""

    class Inputs(BaseModel):
        text: str = ""

    class Outputs(BaseModel):
        text: str

    async def run(self, inputs: Inputs, ctx: StepContext) -> Outputs:
        raise RuntimeError("kaboom")


class Gate:
    """Sets its own event, then waits for the partner's: two gates only finish if they run
    concurrently (run one after the other, the first waits forever)."""

    events: dict[str, asyncio.Event] = {}

    class Inputs(BaseModel):
        name: str
        partner: str | None = None
        after: Any = None

    class Outputs(BaseModel):
        name: str

    async def run(self, inputs: Inputs, ctx: StepContext) -> Outputs:
        self.events.setdefault(inputs.name, asyncio.Event()).set()
        if inputs.partner is not None:
            await self.events.setdefault(inputs.partner, asyncio.Event()).wait()
        return self.Outputs(name=inputs.name)


TEST_STEPS: dict[str, type] = {
    "echo": Echo,
    "count": Count,
    "search": Search,
    "caption": Caption,
    "join": Join,
    "add": Add,
    "boom": Boom,
    "gate": Gate,
}


@pytest.fixture
def test_registry() -> Registry:
    """A fresh registry holding only the test steps (no built-ins are needed)."""
    reg = Registry()
    reg._builtins_loaded = True  # the built-in steps belong to another part of the code
    reg._entry_points_loaded = True
    for name, cls in TEST_STEPS.items():
        reg.register("step", name, cls)
    Gate.events = {}
    return reg


@pytest.fixture
def gateway() -> FakeGateway:
    return FakeGateway()


@pytest.fixture
def write(tmp_path: Path) -> Callable[..., Path]:
    """Write dedented YAML text to a file and return its path."""

    def _write(text: str, name: str = "wf.yaml") -> Path:
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
        return path

    return _write


@pytest.fixture
def png_bytes() -> bytes:
    import io

    buffer = io.BytesIO()
    Image.new("RGB", (8, 6), (200, 10, 10)).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture
def issues_for(
    write: Callable[..., Path], test_registry: Registry
) -> Callable[[str], list[WorkflowIssue]]:
    """Write a broken workflow, load it, and return the issues it was refused with."""

    def _issues(text: str) -> list[WorkflowIssue]:
        path = write(text)
        with pytest.raises(WorkflowValidationError) as info:
            load_workflow(path, registry=test_registry)
        assert info.value.issues, "a refused workflow must carry its issues"
        assert all(i.location.file == str(path) for i in info.value.issues)
        return info.value.issues

    return _issues


def _find_issue(issues: list[WorkflowIssue], line: int, column: int) -> WorkflowIssue:
    for issue in issues:
        if (issue.location.line, issue.location.column) == (line, column):
            return issue
    listing = "\n".join(str(i) for i in issues)
    raise AssertionError(f"no issue at {line}:{column}; issues:\n{listing}")


@pytest.fixture
def find_issue() -> Callable[[list[WorkflowIssue], int, int], WorkflowIssue]:
    """``find_issue(issues, line, column)``: the issue there, or a failure listing them all."""
    return _find_issue
