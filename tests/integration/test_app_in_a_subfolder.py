"""An app config in a subfolder of a checkout, with its own `workflows:` and no `agents:`.

The checkout's layout is rebuilt in a temporary folder: the repository's agents/ one level
above the app (its `assistant` agent calls the `generate` workflow and the `llm` model, which
this app has neither of). Left out, `agents:` must load the agents beside the app's config
(none here), not the checkout's, or the app refuses to start. It runs on the weight-free
``fake`` backend: in process (mmserve.testing), through the preflight `mmserve serve` runs
before Ray, and as `mmserve run --local` in a process of its own.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from mmserve.config import AppConfig
from mmserve.deploy.preflight import check_workflows
from mmserve.errors import AgentValidationError
from mmserve.testing import local_app, run_workflow

ROOT = Path(__file__).resolve().parents[2]
IMAGE = ROOT / "examples" / "images" / "red_circle.png"

APP_CONFIG = """\
models:
  captioner: {backend: fake, source: "fake://"}
store: {kind: memory}
workflows: [flows]
"""


@pytest.fixture
def app_config(tmp_path: Path) -> Path:
    """``checkout/app/app.yaml`` with ``checkout/app/flows/caption.yaml``, beside a copy of
    the repository's ``checkout/agents/`` and ``checkout/workflows/``."""
    checkout = tmp_path / "checkout"
    shutil.copytree(ROOT / "agents", checkout / "agents")
    shutil.copytree(ROOT / "workflows", checkout / "workflows")
    app = checkout / "app"
    (app / "flows").mkdir(parents=True)
    shutil.copy(ROOT / "workflows" / "caption.yaml", app / "flows" / "caption.yaml")
    file = app / "app.yaml"
    file.write_text(APP_CONFIG, encoding="utf-8")
    return file


def test_the_checkouts_agents_would_refuse_this_app(app_config: Path) -> None:
    # what the old default (`agents: [../agents]`) loaded: the layout reproduces the failure
    app_config.write_text(APP_CONFIG + "agents: [../agents]\n", encoding="utf-8")
    with pytest.raises(AgentValidationError, match="generate|llm"):
        check_workflows(AppConfig.load(app_config))


def test_it_loads_its_own_workflows_and_no_agents(app_config: Path) -> None:
    config = AppConfig.load(app_config)
    assert config.workflow_paths() == [app_config.parent / "flows"]
    assert config.agent_paths() == []
    # the preflight of `mmserve serve` (and of the served ingress): loads, one workflow
    assert check_workflows(config) == 1


def test_it_runs_a_workflow_in_process(app_config: Path) -> None:
    app = local_app(app_config)
    assert sorted(app.workflows) == ["caption"]
    with Image.open(IMAGE) as image:
        result = run_workflow(app, "caption", {"image": image.convert("RGB")})
    assert isinstance(result.outputs["caption"], str) and result.outputs["caption"]
    (entry,) = result.trace
    assert entry.step == "caption" and entry.status == "ok"


def test_mmserve_run_local_runs_it(app_config: Path, tmp_path: Path) -> None:
    result = subprocess.run(
        [
            *(sys.executable, "-m", "mmserve", "run", "caption", "--local"),
            *("--config", str(app_config), "--input", f"image=@{IMAGE}"),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,  # any working directory: paths resolve against the config file
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    output = json.loads(result.stdout)
    assert isinstance(output["outputs"]["caption"], str) and output["outputs"]["caption"]
    assert [entry["status"] for entry in output["trace"]] == ["ok"]
