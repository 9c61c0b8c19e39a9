"""mmserve's metrics on Ray's Prometheus endpoint after real runs of the shared app of the
weight-free ``fake`` models (shared_fake.py, its ``cached_answer`` workflow): per workflow,
step and model, with their labels and exact counts, a failing run counted under its error
code, and a cached step's hit and miss."""

from __future__ import annotations

import time
from collections.abc import Mapping

import httpx
import pytest
import ray
from prometheus_client.parser import text_string_to_metric_families
from serve_support import png_base64
from shared_fake import FakeApp

from mmserve.models.backends.fake import FAIL_MARKER
from mmserve.serve.metrics import METRICS

pytestmark = pytest.mark.serve

RED, GREEN, BLUE = (220, 30, 30), (40, 170, 60), (30, 60, 220)
Series = tuple[str, frozenset[tuple[str, str]]]


@pytest.fixture(scope="module")
def served(fake_app: FakeApp) -> str:
    # Ray reports metrics every 0.5 s here (10 s by default): see shared_ray.py
    return fake_app.url


def _endpoints() -> list[str]:
    """Every live node's Prometheus endpoint (what a scraper is pointed at)."""
    return [
        f"http://{node['NodeManagerAddress']}:{node['MetricsExportPort']}/metrics"
        for node in ray.nodes()
        if node["Alive"]
    ]


def _scrape() -> dict[Series, float]:
    """mmserve's samples of every node, summed over the labels not asked about later
    (replica, worker, node): keyed by sample name and its full label set."""
    samples: dict[Series, float] = {}
    for url in _endpoints():
        text = httpx.get(url, timeout=10).text
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name.startswith("ray_mmserve_"):
                    key = (sample.name, frozenset(sample.labels.items()))
                    samples[key] = samples.get(key, 0.0) + sample.value
    return samples


def _value(samples: Mapping[Series, float], name: str, **labels: str) -> float:
    """The sum of the ``name`` samples whose labels include ``labels``."""
    wanted = set(labels.items())
    return sum(v for (n, have), v in samples.items() if n == name and wanted <= have)


def _settled() -> dict[Series, float]:
    """A scrape that two scrapes a second apart agree on: the app is shared with the fuzz
    run, whose last calls may not be exported yet (at most 15 s)."""
    deadline = time.monotonic() + 15
    last = _scrape()
    while time.monotonic() < deadline:
        time.sleep(1.0)
        now = _scrape()
        if now == last:
            break
        last = now
    return last


def _since(samples: Mapping[Series, float], before: Mapping[Series, float]) -> dict[Series, float]:
    """What each series counted since ``before`` (the Ray and the app are shared with the
    serve modules that ran earlier, whose series are exported too)."""
    return {key: value - before.get(key, 0.0) for key, value in samples.items()}


def _wait_for(
    expected: list[tuple[str, dict[str, str], float]], before: Mapping[Series, float]
) -> dict[Series, float]:
    """Scrape until every expected series has counted its value since ``before`` (Ray
    exports with a delay); returns the series counted since then."""
    deadline = time.monotonic() + 120
    while True:
        samples = _since(_scrape(), before)
        wrong = [
            (name, labels, _value(samples, name, **labels))
            for name, labels, value in expected
            if _value(samples, name, **labels) != value
        ]
        if not wrong or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    names = {name for name, _, _ in wrong}
    seen = {
        (n, dict(labels).get("code", ""), v) for (n, labels), v in samples.items() if n in names
    }
    assert not wrong, f"other values than expected (name, labels, seen): {wrong}; seen: {seen}"
    return samples


def test_runs_steps_and_model_calls_are_counted_on_rays_endpoint(served: str) -> None:
    before = _settled()
    with httpx.Client(base_url=served, timeout=60) as http:
        for colour in (RED, GREEN, BLUE):
            ok = http.post(
                "/v1/workflows/caption/run", json={"inputs": {"image": png_base64(colour)}}
            )
            assert ok.status_code == 200, ok.text
        bad = {"image": png_base64(RED), "prompt": FAIL_MARKER}
        failed = http.post("/v1/workflows/caption/run", json={"inputs": bad})
        assert failed.status_code == 500, failed.text
        code = failed.json()["error"]["code"]
        question = {"image": png_base64(BLUE), "question": "is it blue?"}
        for _ in range(2):  # the second answer comes from the step cache
            answered = http.post("/v1/workflows/cached_answer/run", json={"inputs": question})
            assert answered.status_code == 200, answered.text
        # one job: counted by the job worker (a workflow of its own, on its own model)
        job = http.post(
            "/v1/workflows/slow_chain/jobs", json={"inputs": {"image": png_base64(RED)}}
        )
        assert job.status_code == 202, job.text
        deadline = time.monotonic() + 60
        while http.get(f"/v1/jobs/{job.json()['id']}").json()["status"] != "succeeded":
            assert time.monotonic() < deadline, "the job did not finish"
            time.sleep(0.2)

    caption = {"workflow": "caption"}
    caption_step = {**caption, "step": "caption"}
    answer_step = {"workflow": "cached_answer", "step": "answer"}
    captioner = {"model": "captioner", "method": "caption"}
    expected: list[tuple[str, dict[str, str], float]] = [
        ("ray_mmserve_workflow_runs_total", caption, 4),
        ("ray_mmserve_workflow_errors_total", {**caption, "code": code}, 1),
        ("ray_mmserve_workflow_latency_ms_count", caption, 4),
        ("ray_mmserve_workflow_ongoing", caption, 0),
        ("ray_mmserve_workflow_runs_total", {"workflow": "cached_answer"}, 2),
        ("ray_mmserve_workflow_errors_total", {"workflow": "cached_answer"}, 0),
        ("ray_mmserve_step_runs_total", {**caption_step, "status": "ok"}, 3),
        ("ray_mmserve_step_runs_total", {**caption_step, "status": "error"}, 1),
        ("ray_mmserve_step_latency_ms_count", caption_step, 4),
        ("ray_mmserve_step_cache_hits_total", answer_step, 1),
        ("ray_mmserve_step_cache_misses_total", answer_step, 1),
        ("ray_mmserve_model_calls_total", captioner, 4),
        ("ray_mmserve_model_items_total", captioner, 4),
        ("ray_mmserve_model_errors_total", captioner, 1),
        ("ray_mmserve_model_latency_ms_count", captioner, 4),
        ("ray_mmserve_model_batch_size_count", captioner, 3),
        ("ray_mmserve_model_ongoing", captioner, 0),
        ("ray_mmserve_model_calls_total", {"model": "vqa", "method": "answer"}, 1),
        ("ray_mmserve_jobs_finished_total", {"workflow": "slow_chain", "status": "succeeded"}, 1),
        ("ray_mmserve_job_wait_ms_count", {"workflow": "slow_chain"}, 1),
        ("ray_mmserve_job_run_ms_count", {"workflow": "slow_chain"}, 1),
        ("ray_mmserve_jobs_queued", {"workflow": "slow_chain"}, 0),
    ]
    samples = _wait_for(expected, before)
    codes = {
        dict(labels)["code"]
        for (n, labels), counted in samples.items()
        if n == "ray_mmserve_model_errors_total" and counted
    }
    # the fake model's ValueError in the replica: over gRPC (this app's transport) it reaches
    # the ingress as itself, and the handle gateway names it the model's failure
    assert codes == {"serving_error"}, codes

    # every metric has series, with its documented labels and Serve's (which app, deployment)
    for spec in METRICS.values():
        name = spec.exported + ("_count" if spec.kind == "histogram" else "")
        series = [dict(labels) for n, labels in samples if n == name]
        assert series, f"no {name} series"
        for labels in series:
            assert set(spec.labels) <= labels.keys(), (name, labels)
            assert labels["application"] == "mmserve", labels
            # runs and model calls are recorded where the engine runs: the ingress, and the
            # job worker (the jobs of test_jobs_served.py, on the same app)
            assert labels["deployment"] in ("ingress", "jobs"), labels
