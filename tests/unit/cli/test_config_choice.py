"""Which app config a command uses (``--config``, ``--profile``, ``$MMSERVE_CONFIG``, the
``local`` profile), and the one line a server-side command prints when an import of the
``server`` extra fails deeper down than its own check."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from cli_support import mmserve
from mmserve.cli.common import SERVER_EXTRA, config_file, friendly
from mmserve.config import profile_path

pytestmark = pytest.mark.unit


def test_the_config_is_the_flag_the_profile_the_variable_or_the_local_profile(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("MMSERVE_CONFIG", raising=False)
    assert config_file("mine.yaml") == "mine.yaml"
    assert config_file(profile="tiny") == str(profile_path("tiny"))
    assert config_file() == str(profile_path("local"))
    monkeypatch.setenv("MMSERVE_CONFIG", "theirs.yaml")
    assert config_file() == "theirs.yaml"
    assert config_file(profile="cluster") == str(profile_path("cluster"))


def test_config_and_profile_together_are_a_usage_error(tmp_path: Path) -> None:
    done = mmserve("index", "list", "--config", "a.yaml", "--profile", "tiny", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "usage error: use either --config FILE or --profile NAME, not both"
    )


def test_an_unknown_profile_names_the_profiles(tmp_path: Path) -> None:
    done = mmserve("index", "list", "--profile", "huge", cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr.startswith("error: unknown profile 'huge'; the profiles are: tiny (")
    assert "Traceback" not in done.stderr


def test_a_missing_server_package_deeper_down_is_one_line_naming_the_extra() -> None:
    app = typer.Typer()

    @app.command()
    @friendly
    def serve_thing() -> None:
        raise ModuleNotFoundError("No module named 'ray.serve'", name="ray.serve")

    done = CliRunner().invoke(app, [])
    assert done.exit_code == 1
    assert done.stderr.strip().splitlines() == [
        "error: this command runs the server side, which needs the server extra "
        f"(ray is not installed): {SERVER_EXTRA}"
    ]


def test_a_missing_module_of_no_extra_stays_an_unexpected_error() -> None:
    app = typer.Typer()

    @app.command()
    @friendly
    def thing() -> None:
        raise ModuleNotFoundError("No module named 'nothing_here'", name="nothing_here")

    done = CliRunner().invoke(app, [])
    assert done.exit_code == 1
    assert "unexpected ModuleNotFoundError" in done.stderr
    assert SERVER_EXTRA not in done.stderr
