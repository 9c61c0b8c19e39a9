"""The commands of docs/cluster.md's "Tracing" section, run as written: the extra they install
exists, and `mmserve run` on the tiny profile with ``OTEL_EXPORTER_OTLP_ENDPOINT`` (pointed at
a receiver of the test's own) exports the run's spans over OTLP when it exits."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from otlp_receiver import otlp_receiver, tracing_docs

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
MMSERVE_RUN = [sys.executable, "-m", "mmserve", "run"]
RUN_SPANS = ("workflow caption", "step caption", "model captioner.caption")


def _docs_section() -> str:
    return tracing_docs((ROOT / "docs" / "cluster.md").read_text(encoding="utf-8"))


def test_the_tracing_docs_commands_install_the_extra_and_export_a_runs_spans() -> None:
    (block,) = re.findall(r"^```bash\n(.*?)^```", _docs_section(), re.MULTILINE | re.DOTALL)
    install, export, run = block.strip().splitlines()
    # pip install 'mmserve[tracing]': the extra exists and holds the exporters used
    extra = re.fullmatch(r"pip install 'mmserve\[(\w+)\]'", install)
    assert extra is not None
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    wanted = project["optional-dependencies"][extra.group(1)]
    assert any(d.startswith("opentelemetry-exporter-otlp-proto-http") for d in wanted)
    assert any(d.startswith("opentelemetry-exporter-otlp-proto-grpc") for d in wanted)
    # export OTEL_EXPORTER_OTLP_ENDPOINT=...; then the run, sent to a receiver of ours
    name, _ = export.removeprefix("export ").split("=", 1)
    assert name == "OTEL_EXPORTER_OTLP_ENDPOINT"
    command = shlex.split(run)
    assert command[:2] == ["mmserve", "run"]
    with otlp_receiver() as receiver:
        done = subprocess.run(
            [*MMSERVE_RUN, *command[2:]],
            capture_output=True,
            text=True,
            env={**os.environ, name: receiver.url},
            cwd=ROOT,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr
        found = receiver.spans()
    assert sorted(span.name for span in found) == sorted(RUN_SPANS)
    assert {span.resource["service.name"] for span in found} == {"mmserve"}
