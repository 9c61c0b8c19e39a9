"""The workflow language at run time (fake gateway): for_each, when, retry, cache, sub-workflows."""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

import pytest
from PIL import Image
from pydantic import BaseModel

from mmserve.errors import DeadlineExceededError, InputError, ServiceUnavailableError
from mmserve.registry import Registry
from mmserve.workflow import Engine, RunResult, load_workflow_text, load_workflows, trace_of
from mmserve.workflow.run.cache import StepCache

pytestmark = pytest.mark.unit


class Flaky:
    """Fails with a failure that may pass (or bad input) the first ``fail`` times per text."""

    failures: ClassVar[dict[str, int]] = {}
    calls: ClassVar[list[str]] = []

    class Inputs(BaseModel):
        text: str
        fail: int = 0
        kind: str = "unavailable"

    class Outputs(BaseModel):
        text: str

    async def run(self, inputs: Inputs, ctx: Any) -> Outputs:
        self.calls.append(inputs.text)
        seen = self.failures.get(inputs.text, 0)
        self.failures[inputs.text] = seen + 1
        if seen < inputs.fail:
            if inputs.kind == "unavailable":
                raise ServiceUnavailableError("model 'fake' is unavailable: replica gone")
            if inputs.kind == "slow":
                await asyncio.sleep(5)
            raise InputError("bad input")
        return self.Outputs(text=inputs.text.upper())


class Shout:
    """Deterministic: upper-cases a text, counting its runs."""

    deterministic = True
    runs: ClassVar[int] = 0

    class Inputs(BaseModel):
        text: str
        image: Any = None

    class Outputs(BaseModel):
        text: str

    async def run(self, inputs: Inputs, ctx: Any) -> Outputs:
        type(self).runs += 1
        return self.Outputs(text=inputs.text.upper())


class Seeded:
    """Deterministic only with a seed (like generation)."""

    runs: ClassVar[int] = 0

    @staticmethod
    def deterministic(inputs: Any) -> bool:
        return inputs.seed is not None

    class Inputs(BaseModel):
        text: str
        seed: int | None = None

    class Outputs(BaseModel):
        text: str

    async def run(self, inputs: Inputs, ctx: Any) -> Outputs:
        type(self).runs += 1
        return self.Outputs(text=f"{inputs.text}/{inputs.seed}")


class Score:
    """A label and a confidence."""

    class Inputs(BaseModel):
        text: str
        score: float

    class Outputs(BaseModel):
        label: str
        score: float
        sure: bool

    async def run(self, inputs: Inputs, ctx: Any) -> Outputs:
        return self.Outputs(label=inputs.text, score=inputs.score, sure=inputs.score > 0.5)


@pytest.fixture
def reg(test_registry: Registry) -> Registry:
    for name, cls in {"flaky": Flaky, "shout": Shout, "seeded": Seeded, "score": Score}.items():
        test_registry.register("step", name, cls)
    Flaky.failures, Flaky.calls = {}, []
    Shout.runs = Seeded.runs = 0
    return test_registry


def run(engine: Engine, workflow: Any, inputs: dict[str, Any], **kwargs: Any) -> RunResult:
    return asyncio.run(engine.run(workflow, inputs, **kwargs))


@pytest.fixture
def engine(gateway, reg) -> Engine:
    return Engine(gateway, registry=reg, cache=StepCache())


FOR_EACH = """
name: each
inputs:
  query: {type: string, default: cat}
  n: {type: integer, default: 3}
steps:
  search: {uses: search, with: {query: "${inputs.query}", n: "${inputs.n}"}}
  shout:
    uses: echo
    for_each: ${search.matches}
    as: match
    with: {text: "${match.text}!"}
  first: {uses: echo, with: {text: "${shout[0].text}"}}
outputs:
  texts: ${shout[*].text}
  first: ${first.text}
  scores: ${search.matches[*].score}
"""


def test_for_each_runs_once_per_item_and_collects_a_list(engine, reg):
    result = run(engine, load_workflow_text(FOR_EACH, registry=reg), {})
    assert result.outputs["texts"] == ["cat #0!", "cat #1!", "cat #2!"]
    assert result.outputs["first"] == "cat #0!"
    assert result.outputs["scores"] == pytest.approx([1.0, 0.5, 1 / 3])
    entry = result.trace[1]
    assert (entry.step, entry.status, entry.items) == ("shout", "ok", 3)
    assert entry.item_status == ["ok", "ok", "ok"]


def test_for_each_over_an_empty_list_gives_an_empty_list(engine, reg):
    text = FOR_EACH.replace("  first: {uses: echo", "  # first").replace(
        "  first: ${first.text}", ""
    )
    result = run(engine, load_workflow_text(text, registry=reg), {"n": 0})
    assert result.outputs["texts"] == [] and result.trace[1].items == 0


PAIRS = """
name: pairs
inputs:
  pairs:
    type: array
    items: {type: array, items: {type: string}}
    default: [[a, b], [b, a]]
steps:
  gates:
    uses: gate
    for_each: ${inputs.pairs}
    CONCURRENCY
    with: {name: "${item[0]}", partner: "${item[1]}"}
outputs: {names: "${gates[*].name}"}
"""


def test_for_each_items_run_concurrently(engine, reg):
    # each gate waits for its partner: the two items only finish when they run at once
    workflow = load_workflow_text(PAIRS.replace("CONCURRENCY", ""), registry=reg)
    assert run(engine, workflow, {}, timeout_s=10).outputs["names"] == ["a", "b"]


def test_for_each_concurrency_bounds_the_items_running_at_once(engine, reg):
    workflow = load_workflow_text(PAIRS.replace("CONCURRENCY", "concurrency: 1"), registry=reg)
    with pytest.raises(DeadlineExceededError) as info:
        run(engine, workflow, {}, timeout_s=0.5)  # one at a time: the first waits forever
    entry = trace_of(info.value)[0]
    assert entry.status == "cancelled" and entry.item_status == ["cancelled", "cancelled"]


def test_a_failing_item_fails_the_step_with_per_item_status(engine, reg):
    text = """
    name: each
    inputs:
      texts: {type: array, items: {type: string}}
    steps:
      f:
        uses: flaky
        for_each: ${inputs.texts}
        with: {text: "${item}", fail: 1, kind: bad}
    outputs: {t: "${f[*].text}"}
    """
    with pytest.raises(InputError) as info:
        run(engine, load_workflow_text(text, registry=reg), {"texts": ["x"]})
    entry = trace_of(info.value)[0]
    assert entry.status == "error" and entry.item_status == ["error"] and entry.items == 1


WHEN = """
name: gate
inputs:
  score: {type: number}
  label: {type: string, default: cat}
steps:
  judge: {uses: score, with: {text: "${inputs.label}", score: "${inputs.score}"}}
  answer:
    uses: echo
    when: ${judge.score} >= 0.5 and ${judge.label} in ['cat', 'dog']
    with: {text: "yes, a ${judge.label}"}
  after: {uses: echo, with: {text: "${answer.text}!"}}
  sure:
    uses: echo
    when: not ${judge.sure}
    with: {text: unsure}
outputs:
  label: ${judge.label}
  answer: ${answer.text}
  after: ${after.text}
  unsure: ${sure.text}
"""


def test_when_true_runs_the_step(engine, reg):
    result = run(engine, load_workflow_text(WHEN, registry=reg), {"score": 0.9})
    assert result.outputs == {
        "label": "cat",
        "answer": "yes, a cat",
        "after": "yes, a cat!",
        "unsure": None,
    }
    assert [e.status for e in result.trace] == ["ok", "ok", "ok", "skipped"]
    assert result.trace[3].error == "when: not ${judge.sure} is false"


def test_when_false_skips_the_step_and_its_dependants_with_null_outputs(engine, reg):
    result = run(engine, load_workflow_text(WHEN, registry=reg), {"score": 0.2})
    assert result.outputs == {"label": "cat", "answer": None, "after": None, "unsure": "unsure"}
    statuses = {e.step: (e.status, e.error) for e in result.trace}
    assert statuses["answer"] == (
        "skipped",
        "when: ${judge.score} >= 0.5 and ${judge.label} in ['cat', 'dog'] is false",
    )
    assert statuses["after"] == ("skipped", "it needs 'answer', which did not run")
    # a label outside the list: the `in` side decides
    other = run(engine, load_workflow_text(WHEN, registry=reg), {"score": 0.9, "label": "car"})
    assert other.outputs["answer"] is None


RETRY = """
name: retry
inputs:
  fail: {type: integer, default: 2}
  kind: {type: string, default: unavailable}
steps:
  f:
    uses: flaky
    timeout_s: 0.2
    retry: {attempts: 3, backoff_s: 0.01}
    with: {text: hi, fail: "${inputs.fail}", kind: "${inputs.kind}"}
outputs: {t: "${f.text}"}
"""


def test_retry_survives_failures_that_may_pass(engine, reg):
    result = run(engine, load_workflow_text(RETRY, registry=reg), {})
    assert result.outputs == {"t": "HI"}
    assert (result.trace[0].status, result.trace[0].attempts) == ("ok", 3)


def test_retry_covers_the_steps_own_timeout(engine, reg):
    result = run(engine, load_workflow_text(RETRY, registry=reg), {"fail": 1, "kind": "slow"})
    assert result.outputs == {"t": "HI"} and result.trace[0].attempts == 2


def test_retry_gives_up_after_its_attempts(engine, reg):
    with pytest.raises(ServiceUnavailableError) as info:
        run(engine, load_workflow_text(RETRY, registry=reg), {"fail": 5})
    assert trace_of(info.value)[0].attempts == 3 and len(Flaky.calls) == 3


def test_retry_never_repeats_bad_input(engine, reg):
    with pytest.raises(InputError):
        run(engine, load_workflow_text(RETRY, registry=reg), {"kind": "bad"})
    assert Flaky.calls == ["hi"]


CACHE = """
name: cached
inputs:
  text: {type: string}
  image: {type: image, default: null}
steps:
  s:
    uses: shout
    cache: true
    with: {text: "${inputs.text}", image: "${inputs.image}"}
outputs: {t: "${s.text}"}
"""


def test_cache_reuses_results_for_identical_inputs(engine, reg):
    workflow = load_workflow_text(CACHE, registry=reg)
    red = Image.new("RGB", (4, 4), (255, 0, 0))
    first = run(engine, workflow, {"text": "a", "image": red})
    again = run(engine, workflow, {"text": "a", "image": red.copy()})  # same pixels
    assert first.outputs == again.outputs == {"t": "A"}
    assert (first.trace[0].cached, again.trace[0].cached, Shout.runs) == (False, True, 1)
    blue = Image.new("RGB", (4, 4), (0, 0, 255))
    other = run(engine, workflow, {"text": "a", "image": blue})
    assert other.trace[0].cached is False and Shout.runs == 2
    bypass = run(engine, workflow, {"text": "a", "image": red}, use_cache=False)
    assert bypass.trace[0].cached is False and Shout.runs == 3


def test_cache_is_bounded(gateway, reg):
    engine = Engine(gateway, registry=reg, cache=StepCache(max_entries=2))
    workflow = load_workflow_text(CACHE, registry=reg)
    for text in ("a", "b", "c", "a"):
        run(engine, workflow, {"text": text})
    assert len(engine.cache) == 2 and Shout.runs == 4  # "a" was evicted by "c"


def test_cache_of_a_step_deterministic_only_for_some_inputs(engine, reg):
    text = """
    name: seeded
    inputs:
      seed: {type: integer, default: null}
    steps:
      g: {uses: seeded, cache: true, with: {text: x, seed: "${inputs.seed}"}}
    outputs: {t: "${g.text}"}
    """
    workflow = load_workflow_text(text, registry=reg)
    for _ in range(2):
        unseeded = run(engine, workflow, {})
    assert unseeded.trace[0].cached is None and Seeded.runs == 2
    for _ in range(2):
        seeded = run(engine, workflow, {"seed": 7})
    assert seeded.trace[0].cached is True and Seeded.runs == 3


def test_for_each_items_are_cached_one_by_one(engine, reg):
    text = """
    name: each
    inputs:
      texts: {type: array, items: {type: string}}
    steps:
      s: {uses: shout, cache: true, for_each: "${inputs.texts}", with: {text: "${item}"}}
    outputs: {t: "${s[*].text}"}
    """
    workflow = load_workflow_text(text, registry=reg)
    run(engine, workflow, {"texts": ["a"]})
    result = run(engine, workflow, {"texts": ["a", "b"]})
    assert result.outputs == {"t": ["A", "B"]}
    assert result.trace[0].item_status == ["cached", "ok"] and result.trace[0].cached is False


def test_sub_workflow_runs_as_a_step(engine, reg, write, tmp_path):
    write(
        """
        name: inner
        inputs:
          text: {type: string}
          suffix: {type: string, default: "!"}
        steps:
          s: {uses: shout, with: {text: "${inputs.text}${inputs.suffix}"}}
        outputs: {loud: "${s.text}"}
        """,
        "inner.yaml",
    )
    write(
        """
        name: outer
        inputs:
          texts: {type: array, items: {type: string}}
        steps:
          each: {uses: "workflow:inner", for_each: "${inputs.texts}", with: {text: "${item}"}}
          one: {uses: "workflow:inner", cache: true, with: {text: "x", suffix: "?"}}
        outputs:
          all: ${each[*].loud}
          one: ${one.loud}
        """,
        "outer.yaml",
    )
    workflows = load_workflows([tmp_path], registry=reg)
    result = run(engine, workflows["outer"], {"texts": ["a", "b"]})
    assert result.outputs == {"all": ["A!", "B!"], "one": "X?"}
    assert result.trace[0].uses == "workflow:inner" and result.trace[0].items == 2


def test_the_event_hook_hears_each_item_then_the_step_and_skipped_steps(engine, reg):
    events: list[Any] = []
    later = "  later: {uses: echo, when: '${inputs.n} > 5', with: {text: x}}\n"
    text = FOR_EACH.replace("outputs:\n", later + "outputs:\n  later: ${later.text}\n")
    result = run(engine, load_workflow_text(text, registry=reg), {}, on_event=events.append)
    shout = [e for e in events if getattr(e, "step", None) == "shout"]
    assert [e.type for e in shout] == ["step_started"] + ["item_progress"] * 3 + ["step_finished"]
    items = [e for e in shout if e.type == "item_progress"]
    assert sorted(e.index for e in items) == [0, 1, 2]
    assert [e.done for e in items] == [1, 2, 3] and {e.total for e in items} == {3}
    assert {e.status for e in items} == {"ok"}
    skipped = [e for e in events if getattr(e, "step", None) == "later"]
    assert [(e.type, e.entry.status) for e in skipped] == [("step_finished", "skipped")]
    assert result.outputs["later"] is None
