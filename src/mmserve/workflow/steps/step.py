"""The contract of a workflow step plugin.

A step is a class registered with :func:`mmserve.registry.register_step` that declares

* ``Inputs``  -- a pydantic model: the names, types and constraints of its ``with:`` block;
* ``Outputs`` -- a pydantic model: the fields later steps may reference as ``${step.field}``;
* ``async run(self, inputs, ctx) -> Outputs``.

A step that changes something outside its outputs in a way repeating it would change again
(sends a message, appends to a log, charges a card) declares ``side_effects = True``: the
clients then never send a run of a workflow using it twice after a failure mid-request
(steps calling models are pure; ``index`` writes, but upserts by content-hash id, so a
repeat adds nothing twice).

Optionally, a classmethod ``async check_ahead(known, ctx)`` lets a step refuse a run before
any step runs (the ``retrieve`` step: an unknown collection), given those of its inputs that
come only from the workflow's inputs and literals.

The loader type-checks workflow references against these models before anything runs, so
annotate them precisely (``list[str]``, ``float``, nested models). The engine constructs the
step class with no arguments for each run: keep ``__init__`` cheap and stateless, and reach
models only through ``ctx.gateway`` (never import the server or Ray from a step).

Quick start::

    from pydantic import BaseModel
    from mmserve.registry import register_step
    from mmserve.types import Step, StepContext   # the public names (docs/plugins.md)

    @register_step("word_count")
    class WordCount(Step):
        \"\"\"Count the words of a text.\"\"\"
        class Inputs(BaseModel):
            text: str
        class Outputs(BaseModel):
            count: int
        async def run(self, inputs: Inputs, ctx: StepContext) -> Outputs:
            return self.Outputs(count=len(inputs.text.split()))
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from mmserve.workflow.run.context import StepContext


class StepInputs(BaseModel):
    """Base for step ``Inputs``: unknown keys are errors, images allowed as field types."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)


class StepOutputs(BaseModel):
    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)


class Step(ABC):
    """Optional base class for step plugins (the registry checks the shape, not the base)."""

    Inputs: ClassVar[type[BaseModel]]
    Outputs: ClassVar[type[BaseModel]]
    #: True when running the step twice has effects running it once does not (see above).
    side_effects: ClassVar[bool] = False
    #: Whether the same inputs always give the same result, so ``cache: true`` may reuse it:
    #: True/False, or a function of the validated inputs (e.g. generation: only with a seed).
    deterministic: ClassVar[bool | Callable[[Any], bool]] = False
    #: Part of the cache key: bump it when a change gives other results for the same inputs.
    version: ClassVar[str | None] = None

    @abstractmethod
    async def run(self, inputs: Any, ctx: StepContext) -> BaseModel:
        """Do the work; return an ``Outputs`` instance."""


__all__ = ["Step", "StepContext", "StepInputs", "StepOutputs"]
