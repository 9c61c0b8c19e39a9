"""What the ingress records for runs, steps and model calls (mmserve.serve.metered), read
from a recorder that keeps the observations, with real runs on the fake models in process.
(tests/serve/test_metrics_served.py reads the same off Ray's Prometheus endpoint.)"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from api_support import ROOT

from mmserve.config import AppConfig
from mmserve.errors import MmserveError
from mmserve.gateway.local import LocalGateway
from mmserve.models.backends.fake import FAIL_MARKER
from mmserve.serve.metered import MeteredEngine, MeteredGateway
from mmserve.serve.metrics import METRICS, RayRecorder
from mmserve.workflow import Workflow, load_workflows
from mmserve.workflow.run.cache import StepCache

pytestmark = pytest.mark.unit

CAPTION_EACH = {
    "name": "caption_each",
    "inputs": {
        "image": {"type": "image"},
        "prompts": {"type": "array", "items": {"type": "string"}},
    },
    "steps": {
        "captions": {
            "uses": "caption",
            "for_each": "${inputs.prompts}",
            "as": "prompt",
            "cache": True,
            "with": {"image": "${inputs.image}", "prompt": "${prompt}"},
        }
    },
    "outputs": {"captions": "${captions[*].text}"},
}


class Tally:
    """A recorder keeping what it is given: counter sums, observations, gauge values."""

    def __init__(self) -> None:
        self.counts: dict[tuple[str, frozenset[tuple[str, str]]], float] = defaultdict(float)
        self.observed: dict[tuple[str, frozenset[tuple[str, str]]], list[float]] = defaultdict(list)
        self.gauges: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}

    def add(self, name: str, tags: Mapping[str, str], value: float = 1.0) -> None:
        self._check(name, "counter", tags)
        self.counts[name, frozenset(tags.items())] += value

    def observe(self, name: str, tags: Mapping[str, str], value: float) -> None:
        self._check(name, "histogram", tags)
        self.observed[name, frozenset(tags.items())].append(value)

    def set(self, name: str, tags: Mapping[str, str], value: float) -> None:
        self._check(name, "gauge", tags)
        self.gauges[name, frozenset(tags.items())] = value

    @staticmethod
    def _check(name: str, kind: str, tags: Mapping[str, str]) -> None:
        spec = METRICS[name]  # only documented metrics, with exactly their labels
        assert (spec.kind, set(spec.labels)) == (kind, set(tags)), (name, tags)

    def count(self, name: str, **tags: str) -> float:
        return self.counts.get((name, frozenset(tags.items())), 0.0)

    def seen(self, name: str, **tags: str) -> list[float]:
        return self.observed.get((name, frozenset(tags.items())), [])


@pytest.fixture
def app(tmp_path: Path) -> tuple[MeteredEngine, dict[str, Workflow], Tally]:
    tally = Tally()
    engine, workflows = _metered_app(tmp_path, tally)
    return engine, workflows, tally


def _metered_app(tmp_path: Path, recorder: Any) -> tuple[MeteredEngine, dict[str, Workflow]]:
    (tmp_path / "caption_each.yaml").write_text(yaml.safe_dump(CAPTION_EACH), encoding="utf-8")
    fake = {"backend": "fake", "source": "fake://"}
    config = AppConfig.from_dict(
        {
            "models": {"captioner": fake},
            "workflows": [str(ROOT / "workflows" / "caption.yaml"), str(tmp_path)],
        },
        base_dir=ROOT,
    )
    gateway = MeteredGateway(LocalGateway(config), config, recorder=recorder)
    engine = MeteredEngine(gateway, cache=StepCache(), recorder=recorder)
    return engine, load_workflows(config.workflow_paths())


def _image() -> Any:
    from PIL import Image

    return Image.new("RGB", (8, 8), (220, 30, 30))


def test_runs_steps_and_model_calls_are_recorded(
    app: tuple[MeteredEngine, dict[str, Workflow], Tally],
) -> None:
    engine, workflows, tally = app
    caption = workflows["caption"]
    asyncio.run(engine.run(caption, {"image": _image()}))
    with pytest.raises(MmserveError) as failed:
        asyncio.run(engine.run(caption, {"image": _image(), "prompt": FAIL_MARKER}))

    assert tally.count("mmserve_workflow_runs", workflow="caption") == 2
    assert tally.count("mmserve_workflow_errors", workflow="caption", code=failed.value.code) == 1
    assert len(tally.seen("mmserve_workflow_latency_ms", workflow="caption")) == 2
    step = {"workflow": "caption", "step": "caption"}
    assert tally.count("mmserve_step_runs", **step, status="ok") == 1
    assert tally.count("mmserve_step_runs", **step, status="error") == 1
    assert len(tally.seen("mmserve_step_latency_ms", **step)) == 2
    captioner = {"model": "captioner", "method": "caption"}
    assert tally.count("mmserve_model_calls", **captioner) == 2
    # the fake model's ValueError, as the local gateway raises it
    assert sum(v for (n, _), v in tally.counts.items() if n == "mmserve_model_errors") == 1
    assert tally.seen("mmserve_model_batch_size", **captioner) == [1]  # the call that worked
    # nothing left in progress
    assert set(tally.gauges.values()) == {0}
    assert ("mmserve_workflow_ongoing", frozenset({("workflow", "caption")})) in tally.gauges


def test_cache_hits_and_misses_are_counted_per_item(
    app: tuple[MeteredEngine, dict[str, Workflow], Tally],
) -> None:
    engine, workflows, tally = app
    each = workflows["caption_each"]
    asyncio.run(engine.run(each, {"image": _image(), "prompts": ["a", "b"]}))
    asyncio.run(engine.run(each, {"image": _image(), "prompts": ["a", "b", "c"]}))
    step = {"workflow": "caption_each", "step": "captions"}
    assert tally.count("mmserve_step_cache_misses", **step) == 3  # a, b, then c
    assert tally.count("mmserve_step_cache_hits", **step) == 2  # a and b again
    assert tally.count("mmserve_model_items", model="captioner", method="caption") == 3


class Broken(Tally):
    """A metrics backend that fails on every update."""

    def add(self, name: str, tags: Mapping[str, str], value: float = 1.0) -> None:
        raise RuntimeError("the metrics backend is down")

    observe = set = add  # type: ignore[assignment]


def test_a_failing_recorder_never_fails_a_run(tmp_path: Path) -> None:
    engine, workflows = _metered_app(tmp_path, Broken())
    result = asyncio.run(engine.run(workflows["caption"], {"image": _image()}))
    assert result.outputs["caption"] == "a red image"
    with pytest.raises(MmserveError, match="on purpose"):  # the run's own error, not the backend's
        asyncio.run(engine.run(workflows["caption"], {"image": _image(), "prompt": FAIL_MARKER}))


def test_a_skipped_step_is_counted_but_not_timed() -> None:
    from mmserve.serve.metrics import record_run
    from mmserve.workflow import TraceEntry

    tally = Tally()
    trace = [
        TraceEntry(step="a", uses="caption", status="error", wall_ms=3.0, error="boom"),
        TraceEntry(step="b", uses="caption", status="skipped", wall_ms=0.0, error="needs a"),
    ]
    record_run(tally, "w", trace, wall_ms=4.0, error=asyncio.CancelledError())
    assert tally.count("mmserve_workflow_errors", workflow="w", code="cancelled") == 1
    assert tally.count("mmserve_step_runs", workflow="w", step="b", status="skipped") == 1
    assert tally.seen("mmserve_step_latency_ms", workflow="w", step="a") == [3.0]
    assert tally.seen("mmserve_step_latency_ms", workflow="w", step="b") == []


def test_ray_metric_objects_are_made_once_per_process() -> None:
    recorder = RayRecorder()
    first = recorder._metric("mmserve_workflow_runs")
    recorder.add("mmserve_workflow_runs", {"workflow": "w"})  # outside Ray: not exported
    assert recorder._metric("mmserve_workflow_runs") is first
    assert recorder._metric("mmserve_model_batch_size").boundaries[0] == 1.0


def test_gateway_wrappers_stacked_hide_nothing_the_step_cache_reads(tmp_path: Path) -> None:
    """The ingress stacks the traced gateway over the metered one: the step cache still keys
    results by the config's model entries (``config``, an attribute beyond the protocol)."""
    from mmserve.tracing import TracedGateway
    from mmserve.workflow.run.cache import models_fingerprint

    engine, _ = _metered_app(tmp_path, Tally())
    metered = engine.gateway
    traced = TracedGateway(metered)
    assert traced.config is metered.config  # type: ignore[attr-defined]
    assert models_fingerprint(traced) == models_fingerprint(metered)
    assert models_fingerprint(traced) == {"captioner": ["fake", "fake://", None]}
