"""docs/cluster.md's "Sizing a cluster": its `mmserve build` command prints exactly the table
the section shows, and the `mmserve` options it names exist."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from mmserve.cli.main import app as cli

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[3]
_FENCE = re.compile(r"^```(\w+)\n(.*?)^```", re.MULTILINE | re.DOTALL)


def _section() -> str:
    text = (ROOT / "docs" / "cluster.md").read_text(encoding="utf-8")
    start = text.index("## Sizing a cluster")
    end = text.find("\n## ", start + 1)
    return text[start : end if end > 0 else len(text)]


def _blocks(language: str) -> list[str]:
    return [m.group(2) for m in _FENCE.finditer(_section()) if m.group(1) == language]


def test_the_shown_table_is_what_the_command_prints(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (command,) = [line for block in _blocks("bash") for line in block.splitlines()]
    (shown,) = _blocks("text")
    args = shlex.split(command)
    assert args[:2] == ["mmserve", "build"]
    args[args.index("-o") + 1] = str(tmp_path / "serve.yaml")
    monkeypatch.chdir(ROOT)
    result = CliRunner().invoke(cli, args[1:])
    assert result.exit_code == 1  # the example does not fit: nothing is written
    assert result.stderr == shown
    assert not (tmp_path / "serve.yaml").exists()


def test_the_options_the_section_names_exist() -> None:
    commands = typer.main.get_command(cli).commands  # type: ignore[attr-defined]
    options = {
        name: {opt for param in command.params for opt in getattr(param, "opts", [])}
        for name, command in commands.items()
    }
    section = _section()
    for name, flag in re.findall(r"`mmserve (\w+)[^`]*?(--[\w-]+)", section):
        assert flag in options[name], f"mmserve {name} has no {flag}"
    flags = set(re.findall(r"[`\s](--[\w-]+)", section))
    assert {"--allow-pending", "--node", "--kuberay", "--address"} <= flags
    for flag in flags:
        assert any(flag in found for found in options.values()), flag
