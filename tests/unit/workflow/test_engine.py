"""The engine: DAG scheduling, concurrency, failures, deadlines, inputs, trace."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import pytest
from PIL import Image
from pydantic import BaseModel

from mmserve.errors import (
    DeadlineExceededError,
    InputError,
    InputTooLargeError,
    MmserveError,
    StepFailedError,
)
from mmserve.workflow import Engine, RunResult, load_workflow_text, trace_of

pytestmark = pytest.mark.unit

DIAMOND = """
name: diamond
inputs:
  text: {type: string, default: go}
steps:
  start: {uses: gate, with: {name: start}}
  left: {uses: gate, with: {name: left, partner: right, after: "${start.name}"}}
  right: {uses: gate, with: {name: right, partner: left, after: "${start.name}"}}
  end:
    uses: join
    with: {parts: ["${left.name}", "${right.name}", "${inputs.text}"], sep: "+"}
outputs:
  joined: ${end.text}
"""


def run(engine: Engine, workflow: Any, inputs: dict[str, Any], **kwargs: Any) -> RunResult:
    return asyncio.run(engine.run(workflow, inputs, **kwargs))


@pytest.fixture
def engine(gateway, test_registry) -> Engine:
    return Engine(gateway, registry=test_registry)


def load(text: str, registry) -> Any:
    return load_workflow_text(text, registry=registry)


def test_diamond_runs_independent_steps_concurrently(engine, test_registry):
    # left waits for right's event and right for left's: sequential execution would hang,
    # which the deadline turns into a failure instead of a stuck test.
    workflow = load(DIAMOND, test_registry)
    result = run(engine, workflow, {}, timeout_s=10)
    assert result.outputs == {"joined": "left+right+go"}
    assert [(t.step, t.uses, t.status) for t in result.trace] == [
        ("start", "gate", "ok"),
        ("left", "gate", "ok"),
        ("right", "gate", "ok"),
        ("end", "join", "ok"),
    ]
    assert all(t.wall_ms >= 0 and t.error is None for t in result.trace)


def test_failure_skips_dependents_and_cancels_running_steps(engine, test_registry):
    workflow = load(
        """
        name: fails
        steps:
          bad: {uses: boom}
          after: {uses: echo, with: {text: "${bad.text}"}}
          waiting: {uses: gate, with: {name: w, partner: never}}
          later: {uses: echo, with: {text: "${waiting.name}"}}
        outputs: {t: "${after.text}", w: "${later.text}"}
        """,
        test_registry,
    )
    with pytest.raises(StepFailedError) as info:
        run(engine, workflow, {})
    error = info.value
    assert (error.step, error.uses) == ("bad", "boom")
    assert str(error) == "step 'bad' (boom) failed: RuntimeError: kaboom"
    assert isinstance(error.__cause__, RuntimeError)
    trace = {t.step: t for t in trace_of(error) or []}
    assert trace["bad"].status == "error"
    assert trace["bad"].error == "step 'bad' (boom) failed: RuntimeError: kaboom"
    assert trace["after"].status == "skipped"
    assert trace["after"].error == "dependency bad did not finish"
    assert trace["waiting"].status == "cancelled"
    assert trace["later"].status == "skipped"


def test_mmserve_errors_from_steps_propagate_unchanged(gateway, test_registry):
    class Refuses:
        class Inputs(BaseModel):
            pass

        class Outputs(BaseModel):
            pass

        async def run(self, inputs: Any, ctx: Any) -> Any:
            raise InputTooLargeError("input 'x': too big", name="x")

    test_registry.register("step", "refuses", Refuses)
    workflow = load("name: r\nsteps: {a: {uses: refuses}}\n", test_registry)
    with pytest.raises(InputTooLargeError, match="input 'x': too big") as info:
        run(Engine(gateway, registry=test_registry), workflow, {})
    assert [t.status for t in trace_of(info.value) or []] == ["error"]


def test_deadline_names_the_running_steps_and_cancels_them(engine, test_registry):
    workflow = load(
        """
        name: slow
        steps:
          quick: {uses: echo, with: {text: hi}}
          stuck: {uses: gate, with: {name: s, partner: never, after: "${quick.text}"}}
          next: {uses: echo, with: {text: "${stuck.name}"}}
        outputs: {t: "${next.text}"}
        """,
        test_registry,
    )
    with pytest.raises(DeadlineExceededError) as info:
        run(engine, workflow, {}, timeout_s=0.05)
    assert "workflow 'slow' ran past its deadline of 0.05s" in str(info.value)
    assert "still running: step 'stuck' (gate)" in str(info.value)
    statuses = {t.step: t.status for t in trace_of(info.value) or []}
    assert statuses == {"quick": "ok", "stuck": "cancelled", "next": "skipped"}


def test_per_step_timeout(engine, test_registry):
    workflow = load(
        """
        name: slow_step
        steps:
          stuck: {uses: gate, timeout_s: 0.05, with: {name: s, partner: never}}
        outputs: {t: "${stuck.name}"}
        """,
        test_registry,
    )
    with pytest.raises(DeadlineExceededError, match=r"step 'stuck' \(gate\) ran past its timeout"):
        run(engine, workflow, {})


SIMPLE_INPUTS = """
name: typed
inputs:
  image: image
  k: {type: integer, default: 2, minimum: 1, maximum: 5}
  ratio: {type: number, default: 0.5}
  loud: {type: boolean, default: false}
  tags: {type: array, items: string, default: []}
steps:
  c: {uses: caption, with: {image: "${inputs.image}"}}
  n: {uses: count, with: {text: "${c.text}", top_k: "${inputs.k}"}}
outputs:
  caption: ${c.text}
  count: ${n.count}
  settings: "k=${inputs.k} ratio=${inputs.ratio} loud=${inputs.loud} tags=${inputs.tags}"
"""


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ({}, "missing required input 'image' (image)"),
        ({"colour": 1}, "unexpected input 'colour'; this workflow takes: image, "),
        ({"k": "abc"}, "input 'k': expected an integer, got str 'abc'"),
        ({"k": True}, "input 'k': expected an integer, got bool True"),
        ({"k": 2.5}, "input 'k': expected an integer, got float 2.5"),
        ({"k": 0}, "input 'k': 0 is below the minimum 1"),
        ({"k": 9}, "input 'k': 9 is above the maximum 5"),
        ({"ratio": "nan"}, "input 'ratio': expected a number, got str 'nan'"),
        ({"loud": "maybe"}, "input 'loud': expected a boolean (true or false), got str 'maybe'"),
        ({"tags": ["a", 3]}, "input 'tags[1]': expected a string, got int 3"),
        ({"tags": "a"}, "input 'tags': expected a list, got str 'a'"),
        ({"image": b"not an image"}, "input 'image': the data is not an image in a known format"),
        ({"image": "%%%"}, "input 'image': expected an image as base64 text"),
        ({"image": 12}, "input 'image': expected an image (bytes, base64 text or PIL image)"),
    ],
)
def test_input_errors_name_the_input(engine, test_registry, png_bytes, inputs, message):
    workflow = load(SIMPLE_INPUTS, test_registry)
    values = {"image": png_bytes, **inputs} if inputs else {}
    with pytest.raises(InputError) as info:
        run(engine, workflow, values)
    assert str(info.value).startswith(message)
    assert "\n" not in str(info.value)
    assert info.value.name is not None


def test_inputs_are_coerced_and_interpolated(engine, gateway, test_registry, png_bytes):
    workflow = load(SIMPLE_INPUTS, test_registry)
    result = run(
        engine, workflow, {"image": png_bytes, "k": "1", "loud": "true", "tags": ["a", "b"]}
    )
    assert result.outputs == {
        "caption": "a 8x6 picture",
        "count": 1,
        "settings": "k=1 ratio=0.5 loud=true tags=a, b",
    }
    assert result.trace[0].batch_size == 1  # recorded by the caption step through ctx.record
    assert result.trace[1].batch_size is None
    assert gateway.calls == [("caption", 1), ("embed_texts", 1)]


def test_list_index_references_and_json_dump(engine, test_registry, png_bytes):
    workflow = load(
        """
        name: lists
        inputs: {image: image}
        steps:
          c: {uses: caption, with: {image: "${inputs.image}"}}
          s: {uses: search, with: {query: "${c.text}", n: 3}}
          j: {uses: join, with: {parts: ["${s.matches[2].text}", "${s.best.text}"], sep: " | "}}
        outputs:
          third: ${s.matches[2].text}
          second: ${s.matches[1]}
          joined: ${j.text}
          sizes: ${j.sizes}
          vector: ${c.vector}
          image: ${inputs.image}
        """,
        test_registry,
    )
    image = Image.new("RGB", (4, 3), (1, 2, 3))
    result = run(engine, workflow, {"image": image})
    assert result.outputs["third"] == "a 4x3 picture #2"
    assert result.outputs["second"].score == pytest.approx(0.5)
    assert result.outputs["joined"] == "a 4x3 picture #2 | a 4x3 picture #0"
    assert isinstance(result.outputs["vector"], np.ndarray)
    dumped = result.model_dump(mode="json")
    assert dumped["outputs"]["second"] == {"text": "a 4x3 picture #1", "score": 0.5}
    assert dumped["outputs"]["vector"] == [1.0, 1.0, 1.0]
    assert isinstance(dumped["outputs"]["image"], str)  # base64 PNG
    assert dumped["trace"][0] == {
        "step": "c",
        "uses": "caption",
        "status": "ok",
        "wall_ms": dumped["trace"][0]["wall_ms"],
        "batch_size": 1,
        "error": None,
        "attempts": None,
        "cached": None,
        "items": None,
        "item_status": None,
    }


def test_reference_past_the_end_of_a_list_fails_clearly(engine, test_registry):
    workflow = load(
        """
        name: empty
        steps:
          s: {uses: search, with: {query: q, n: 0}}
          e: {uses: echo, with: {text: "${s.matches[0].text}"}}
        outputs: {t: "${e.text}"}
        """,
        test_registry,
    )
    with pytest.raises(StepFailedError) as info:
        run(engine, workflow, {})
    assert str(info.value) == (
        "step 'e' (echo) failed: cannot resolve ${s.matches[0].text}: "
        "${s.matches} has 0 items, so there is no [0]"
    )


def test_step_input_validation_errors_name_step_and_field(engine, test_registry):
    workflow = load(
        """
        name: bounds
        inputs: {k: {type: integer, default: 1}}
        steps:
          n: {uses: count, with: {text: hi, top_k: "${inputs.k}"}}
        outputs: {t: "${n.count}"}
        """,
        test_registry,
    )
    with pytest.raises(InputError) as info:
        run(engine, workflow, {"k": 500})
    assert str(info.value) == (
        "step 'n' (count): input top_k: Input should be less than or equal to 100"
    )
    assert info.value.name == "k"


def test_a_step_returning_the_wrong_type_is_a_step_failure(gateway, test_registry):
    class Sloppy:
        class Inputs(BaseModel):
            pass

        class Outputs(BaseModel):
            text: str

        async def run(self, inputs: Any, ctx: Any) -> Any:
            return "just a string"

    test_registry.register("step", "sloppy", Sloppy)
    workflow = load(
        "name: s\nsteps: {a: {uses: sloppy}}\noutputs: {t: '${a.text}'}\n", test_registry
    )
    with pytest.raises(StepFailedError, match="run\\(\\) returned str, expected Outputs"):
        run(Engine(gateway, registry=test_registry), workflow, {})


def test_outer_cancellation_cancels_running_steps(engine, test_registry):
    workflow = load(
        "name: c\nsteps: {g: {uses: gate, with: {name: g, partner: never}}}\n", test_registry
    )

    async def scenario() -> list[str]:
        task = asyncio.create_task(engine.run(workflow, {}))
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        task.cancel()
        with pytest.raises(asyncio.CancelledError) as info:
            await task
        return [t.status for t in trace_of(info.value) or []]

    assert asyncio.run(scenario()) == ["cancelled"]


def test_errors_are_mmserve_errors_with_codes(engine, test_registry):
    workflow = load(DIAMOND, test_registry)
    with pytest.raises(MmserveError) as info:
        run(engine, workflow, {"text": 3})
    assert info.value.code == "invalid_input"


def test_bad_values_from_step_outputs_are_step_failures(engine, test_registry, png_bytes):
    # `best` is `Match | None` and `vector` is `Any`: both pass the static checks, and the
    # values met at run time (None, an array) fail the consuming step with a clear reason.
    workflow = load(
        """
        name: none_best
        steps:
          s: {uses: search, with: {query: q, n: 0}}
          e: {uses: echo, with: {text: "${s.best.text}"}}
        outputs: {t: "${e.text}"}
        """,
        test_registry,
    )
    with pytest.raises(StepFailedError) as info:
        run(engine, workflow, {})
    assert str(info.value) == (
        "step 'e' (echo) failed: cannot resolve ${s.best.text}: ${s.best} is null"
    )
    workflow = load(
        """
        name: vector_as_text
        inputs: {image: image}
        steps:
          c: {uses: caption, with: {image: "${inputs.image}"}}
          e: {uses: echo, with: {text: "${c.vector}"}}
        outputs: {t: "${e.text}"}
        """,
        test_registry,
    )
    with pytest.raises(StepFailedError) as info:
        run(engine, workflow, {"image": png_bytes})
    assert str(info.value) == "step 'e' (echo) failed: input text: Input should be a valid string"
