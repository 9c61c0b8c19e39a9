"""The generation benchmark's harness (no model, no Ray): its app configs are valid and
its report renders every point."""

from __future__ import annotations

from pathlib import Path

import pytest

# The harness needs the [bench] extra (psutil); without it there is nothing to check here.
pytest.importorskip("psutil")

REPO_ROOT = Path(__file__).resolve().parents[3]

from benchmarks.generation import _config, markdown  # noqa: E402

from mmserve.config import AppConfig  # noqa: E402

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("max_batch", [1, 4])
def test_served_configs_are_valid_app_configs(tmp_path: Path, max_batch: int) -> None:
    config = AppConfig.load(_config(tmp_path, 8123, max_batch))
    model = config.models["image_generator"]
    assert (model.backend, model.source) == ("diffusion", "random://sd-turbo")
    assert model.batch.max_size == max_batch and model.cpus == 2
    assert [path.name for path in config.workflow_paths()] == ["generate.yaml"]


def test_the_report_has_one_row_per_point() -> None:
    point = {"items": 3, "throughput": 0.01, "p50_ms": 100_000.0}
    document = {
        "command": "python -m benchmarks.generation",
        "machine": {
            "cpu": "cpu",
            "logical_cores": 2,
            "memory_gb": 24,
            "load_average_at_start": [1.0, 1.0, 1.0],
        },
        "points": [
            {"system": "bare", "batch": 1, **point},
            {"system": "mmserve", "batch": 2, "concurrency": 2, "mean_batch": 1.5, **point},
        ],
    }
    text = markdown(document)
    assert "| bare | 1 | 1 | 3 | 0.0100 | 100.0 | 1 |" in text
    assert "| mmserve | 2 | 2 | 3 | 0.0100 | 100.0 | 1.5 |" in text
