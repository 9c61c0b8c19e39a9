"""The metrics' docs and dashboard say what the code defines: the table in docs/cluster.md,
the Grafana dashboard's queries (every series one mmserve or Ray Serve defines), the KubeRay
PodMonitor and the `ray start` flag the docs give."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import ray
import yaml

from mmserve.serve.metrics import METRICS, MetricSpec

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[3]
DASHBOARD = ROOT / "deployments" / "grafana-mmserve.json"
_SUFFIXES = {"counter": ("",), "gauge": ("",), "histogram": ("_bucket", "_count", "_sum")}
#: A metric made in Ray Serve's source: ``Counter("serve_x", ...)`` (also ``name=f"..."``).
_SERVE_METRIC = re.compile(
    r'\b(Counter|Gauge|Histogram)\(\s*(?:name\s*=\s*)?f?"(serve_[a-z_{}]+)"', re.DOTALL
)
#: A series selector in PromQL: a name followed by its label matchers.
_SELECTOR = re.compile(r"([A-Za-z_:][\w:]*)\s*\{")


def _scraped(kind: str, name: str) -> set[str]:
    """The sample names Ray's endpoint shows for a metric made as ``name`` in Ray."""
    base = f"ray_{name}" if kind != "counter" or name.endswith("_total") else f"ray_{name}_total"
    return {base + suffix for suffix in _SUFFIXES[kind.lower()]}


def _mmserve_names(spec: MetricSpec) -> set[str]:
    return _scraped(spec.kind, spec.name)


@cache
def _serve_names() -> frozenset[str]:
    """Every sample name Ray Serve's own metrics have, read from the installed Ray's source."""
    names: set[str] = set()
    for path in (Path(ray.__file__).parent / "serve").rglob("*.py"):
        for kind, name in _SERVE_METRIC.findall(path.read_text(encoding="utf-8")):
            for protocol in ("http", "grpc"):
                names |= _scraped(kind.lower(), name.replace("{protocol_name}", protocol))
    return frozenset(names)


def _dashboard_queries() -> list[str]:
    data: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return [
        target["expr"]
        for panel in data["panels"]
        if panel["type"] != "row"
        for target in panel["targets"]
    ]


def test_the_serve_names_are_read_from_ray() -> None:
    # a few names the dashboard relies on, to show the source reading finds them
    assert {
        "ray_serve_num_http_requests_total",
        "ray_serve_actual_batch_size_bucket",
        "ray_serve_deployment_replica_healthy",
    } <= _serve_names()


def test_every_dashboard_series_is_defined_and_every_mmserve_metric_is_shown() -> None:
    queries = _dashboard_queries()
    assert queries
    mmserve = {name for spec in METRICS.values() for name in _mmserve_names(spec)}
    used: set[str] = set()
    for expr in queries:
        names = set(_SELECTOR.findall(expr)) | set(re.findall(r"\bray_\w+", expr))
        assert names, expr
        unknown = names - mmserve - _serve_names()
        assert not unknown, f"{sorted(unknown)} in {expr!r}: neither mmserve's nor Ray Serve's"
        used |= names
    for spec in METRICS.values():
        assert used & _mmserve_names(spec), f"the dashboard shows nothing of {spec.name}"


def test_the_dashboard_is_importable_grafana_json() -> None:
    data = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    assert data["uid"] and data["title"]
    variables = {v["name"] for v in data["templating"]["list"]}
    assert {"datasource", "application"} <= variables
    panel_ids = [panel["id"] for panel in data["panels"]]
    assert len(panel_ids) == len(set(panel_ids))
    for panel in data["panels"]:
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
            assert all(t["refId"] and t["expr"] for t in panel["targets"]), panel["title"]


def _metrics_section() -> str:
    text = (ROOT / "docs" / "cluster.md").read_text(encoding="utf-8")
    return text.split("\n## Metrics\n", 1)[1].split("\n## ", 1)[0]


def test_the_docs_table_lists_every_metric_with_its_labels() -> None:
    rows = {}
    for line in _metrics_section().splitlines():
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        if line.startswith("| `ray_mmserve_"):
            rows[cells[0].strip("`")] = (cells[1], re.findall(r"`(\w+)`", cells[2]))
    expected = {spec.exported: (spec.kind, list(spec.labels)) for spec in METRICS.values()}
    assert rows == expected


def test_the_podmonitor_selects_every_ray_pod_by_its_metrics_port() -> None:
    path = ROOT / "deployments" / "kuberay" / "podmonitor.yaml"
    monitor = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert (monitor["apiVersion"], monitor["kind"]) == ("monitoring.coreos.com/v1", "PodMonitor")
    spec = monitor["spec"]
    assert spec["selector"]["matchLabels"] == {"ray.io/is-ray-node": "yes"}
    assert [endpoint["port"] for endpoint in spec["podMetricsEndpoints"]] == ["metrics"]
    # docs/cluster.md shows this very file (tests/unit/test_docs_snippets.py compares them)
    assert "# deployments/kuberay/podmonitor.yaml" in _metrics_section()


def test_ray_start_takes_the_metrics_port_the_docs_give() -> None:
    command = re.search(r"^ray start .*$", _metrics_section(), re.MULTILINE)
    assert command is not None
    flags = re.findall(r"(--[\w-]+)=", command.group(0))
    ray_cli = Path(sys.executable).with_name("ray")
    shown = subprocess.run(
        [str(ray_cli), "start", "--help"], capture_output=True, text=True, check=True
    ).stdout
    for flag in flags:
        assert flag in shown, flag
