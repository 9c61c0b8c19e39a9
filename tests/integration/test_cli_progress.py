"""`mmserve run` shows each step's start and end on stderr when stderr is a terminal (run
here under a pseudo-terminal), stays quiet when piped, and `--progress` forces the lines."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
RED = ROOT / "examples" / "images" / "red_circle.png"
FAKE = {"backend": "fake", "source": "fake://"}


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Weight-free fake models and the shipped workflows."""
    path = tmp_path_factory.mktemp("progress") / "app.yaml"
    data = {
        "models": {role: FAKE for role in ("image_encoder", "text_encoder", "captioner", "vqa")},
        "store": {"kind": "memory"},
        "workflows": [str(ROOT / "workflows")],
    }
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    return path


def run_cli(config: Path, *extra: str, terminal: bool) -> tuple[int, str, str]:
    """`mmserve run describe` with stderr on a pseudo-terminal or a pipe: (code, out, err)."""
    command = [sys.executable, "-m", "mmserve", "run", "describe", "--config", str(config)]
    command += ["--input", f"image=@{RED}", *extra]
    if not terminal:
        done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=300)
        return done.returncode, done.stdout, done.stderr
    leader, follower = pty.openpty()
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=follower, cwd=ROOT, env=os.environ
    ) as process:
        os.close(follower)
        err = b""
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:  # the terminal closed: the process has exited
                break
            if not chunk:
                break
            err += chunk
        out = process.stdout.read() if process.stdout else b""
        code = process.wait(timeout=300)
    os.close(leader)
    return code, out.decode(), err.decode().replace("\r\n", "\n")


def _steps(config: Path) -> list[str]:
    spec = yaml.safe_load((ROOT / "workflows" / "describe.yaml").read_text())
    return list(spec["steps"])


def test_a_terminal_sees_each_step_start_and_end(config: Path) -> None:
    code, out, err = run_cli(config, terminal=True)
    assert code == 0, err
    outputs = json.loads(out)
    lines = [line for line in err.splitlines() if line.startswith("step ")]
    for step in _steps(config):
        uses = next(e["uses"] for e in outputs["trace"] if e["step"] == step)
        assert f"step {step}: started ({uses})" in lines
        ended = [line for line in lines if line.startswith(f"step {step}: ok in ")]
        assert len(ended) == 1, lines
    assert len(lines) == 2 * len(_steps(config))


def test_piped_stderr_stays_quiet_unless_asked(config: Path) -> None:
    code, out, err = run_cli(config, terminal=False)
    assert code == 0, err
    assert "step " not in err and json.loads(out)["outputs"]
    code, _, err = run_cli(config, "--progress", terminal=False)
    assert code == 0 and err.count("step ") == 2 * len(_steps(config))
    code, _, err = run_cli(config, "--no-progress", terminal=True)
    assert code == 0 and "step " not in err
