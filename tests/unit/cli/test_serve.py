"""`mmserve build` prints the capacity table for the cluster its file is meant for (no Ray)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from mmserve.cli.main import app as cli

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[3]


def _write(folder: Path, models: dict[str, Any]) -> Path:
    path = folder / "app.yaml"
    data = {"models": models, "store": {"kind": "memory"}, "workflows": []}
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def _build(*args: str) -> Any:
    return CliRunner().invoke(cli, ["build", *args])


def _rows(text: str) -> dict[str, str]:
    """The table's rows by their first cell (a deployment, or ``all``)."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("deployment "))
    return {line.split()[0]: line for line in lines[start + 1 :] if line and line[0] != "("}


def test_build_refuses_a_config_too_large_for_the_given_nodes(tmp_path: Path) -> None:
    config = _write(tmp_path, {"captioner": {"backend": "fake", "source": "fake://", "cpus": 6}})
    output = tmp_path / "serve.yaml"
    result = _build("--config", str(config), "--node", "count=2,cpus=4", "-o", str(output))
    assert result.exit_code == 1, result.output
    assert not output.exists()
    assert result.stdout == ""
    assert result.stderr.startswith(
        "error: the config does not fit the --node cluster (2 nodes: CPU 8, GPU 0)"
    )
    rows = _rows(result.stderr)
    assert set(rows) == {"captioner", "all"}
    assert rows["captioner"].split()[:5] == ["captioner", "1", "CPU", "6", "CPU"]
    assert rows["captioner"].endswith("one replica needs CPU 6, the largest node has CPU 4")
    assert "Traceback" not in result.output

    result = _build(
        "--config", str(config), "--node", "count=2,cpus=4", "--allow-pending", "-o", str(output)
    )
    assert result.exit_code == 0, result.output
    assert result.stderr.startswith("warning: the config does not fit the --node cluster")
    assert yaml.safe_load(output.read_text())["applications"]


def test_build_prints_the_whole_table_when_it_fits(tmp_path: Path) -> None:
    config = _write(
        tmp_path,
        {
            "captioner": {"backend": "fake", "source": "fake://", "cpus": 2, "gpus": 0.5},
            "vqa": {"backend": "fake", "source": "fake://", "resources": {"accel": 1}},
        },
    )
    nodes = ["--node", "cpus=4,gpus=1", "--node", "cpus=2,accel=1"]
    result = _build("--config", str(config), *nodes)
    assert result.exit_code == 0, result.output
    assert yaml.safe_load(result.stdout)["applications"]  # the file, alone on stdout
    assert result.stderr.startswith(
        "capacity on the --node cluster (2 nodes: CPU 6, GPU 1, accel 1)"
    )
    rows = _rows(result.stderr)
    assert set(rows) == {"ingress", "captioner", "vqa", "store", "jobs", "all"}
    assert all(row.endswith("fits") for row in rows.values())
    assert "CPU 6 (node max 4), GPU 1" in rows["captioner"]

    bad = _build("--config", str(config), "--node", "cpus=lots")
    assert bad.exit_code == 2
    assert "--node 'cpus=lots'" in bad.stderr


def test_build_without_nodes_prints_what_each_deployment_asks_for(tmp_path: Path) -> None:
    config = _write(
        tmp_path, {"captioner": {"backend": "fake", "source": "fake://", "replicas": 2}}
    )
    result = _build("--config", str(config))
    assert result.exit_code == 0, result.output
    assert result.stderr.startswith("capacity (pass --node to check a cluster):")
    rows = _rows(result.stderr)
    assert rows["captioner"].split() == ["captioner", "2", "CPU", "1", "CPU", "2"]
    assert rows["jobs"].split() == ["jobs", "1", "CPU", "0.1", "CPU", "0.1"]
    assert rows["all"].split() == ["all", "5", "CPU", "2.85"]


def test_build_kuberay_checks_the_manifests_node_groups(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    args = ["--config", "deployments/cluster.yaml", "--kuberay", "--app-root", "/app"]
    result = _build(*args, "-o", str(tmp_path / "rayservice.yaml"))
    assert result.exit_code == 0, result.output
    assert result.stderr.startswith(
        "capacity on the RayService's node groups (5 nodes: CPU 32, GPU 4"
    )
    assert _rows(result.stderr)["all"].endswith("fits")
    both = _build(*args, "--node", "cpus=8")
    assert both.exit_code == 2
    assert "--kuberay" in both.stderr


def test_build_writes_a_models_memory_for_ray(tmp_path: Path) -> None:
    from ray.serve.schema import ServeDeploySchema

    fake = {"backend": "fake", "source": "fake://"}
    config = _write(tmp_path, {"captioner": {**fake, "memory": "512Mi"}})
    output = tmp_path / "serve.yaml"
    result = _build("--config", str(config), "--node", "cpus=4,memory=256Mi", "-o", str(output))
    assert result.exit_code == 1
    assert _rows(result.stderr)["captioner"].endswith(
        "one replica needs memory 512MiB, the largest node has memory 256MiB"
    )
    result = _build("--config", str(config), "--node", "cpus=4,memory=1Gi", "-o", str(output))
    assert result.exit_code == 0, result.output
    built = yaml.safe_load(output.read_text())
    ServeDeploySchema.model_validate(built)
    (captioner,) = [d for d in built["applications"][0]["deployments"] if d["name"] == "captioner"]
    assert captioner["ray_actor_options"]["memory"] == 512 * 2**20
