"""mmserve as users install it (tests/wheel_site.py): the built sdist and wheel (its files, and
ranges rather than pins in its metadata), the thin client (`pip install mmserve`, no extras,
at the lower bounds of its dependencies) with none of the server packages, the one line its
server-side commands print, a step plugin on it, and the server extra
(`pip install "mmserve[server]"`) building the shipped tiny profile's app from an empty
directory. The thin install against a served app: tests/serve/test_thin_client_served.py;
its `chat --url` and `mcp --url`: tests/unit/cli/test_chat.py and test_mcp.py."""

from __future__ import annotations

import json
import os
import subprocess
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest
import yaml

from plugin_site import installed
from wheel_site import built, floors, installed_versions, venv

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
IMAGE = ROOT / "examples" / "images" / "red_circle.png"
#: What only the server extra brings (and its heaviest dependencies).
SERVER_ONLY = {"torch", "ray", "transformers", "diffusers", "lancedb", "scipy", "pyarrow"}
#: The one line a server-side command prints on the thin install.
EXTRA_LINE = 'pip install "mmserve[server]"'


@pytest.fixture(scope="module")
def thin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The venv of `pip install <wheel>`: the client and the remote CLI."""
    return venv(tmp_path_factory)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The venv of `pip install "<wheel>[server]"` (the one the shared app runs from)."""
    return venv(tmp_path_factory, extras="server")


def _run(
    command: list[str | Path], *, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(part) for part in command],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        stdin=subprocess.DEVNULL,
        check=False,
    )


def test_the_wheel_carries_the_page_the_profiles_and_ranges_not_pins(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    wheel = built(tmp_path_factory).wheel
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        metadata_name = next(n for n in names if n.endswith(".dist-info/METADATA"))
        metadata = Parser().parsestr(archive.read(metadata_name).decode())
    for shipped in (
        "mmserve/py.typed",
        "mmserve/http/web/index.html",
        "mmserve/profiles/tiny.yaml",
        "mmserve/profiles/local.yaml",
        "mmserve/profiles/cluster.yaml",
        "mmserve/profiles/workflows/caption.yaml",
        "mmserve/profiles/agents/assistant.yaml",
    ):
        assert shipped in names, shipped
    shipped_workflows = {n for n in names if n.startswith("mmserve/profiles/workflows/")}
    assert len(shipped_workflows) == len(list((ROOT / "workflows").glob("*.yaml")))
    requires = metadata.get_all("Requires-Dist") or []
    runtime = [r for r in requires if "extra ==" not in r]
    server = [r for r in requires if 'extra == "server"' in r]
    assert runtime and server
    for requirement in runtime + server:
        assert "==" not in requirement.split(";")[0], f"an exact pin: {requirement}"
    names_needed = {r.split(";")[0].split("[")[0].split(">")[0].split("<")[0] for r in runtime}
    assert not names_needed & SERVER_ONLY


def test_the_thin_install_has_the_client_and_no_server_packages(
    thin: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    # the thin venv holds the lower bounds of the package's dependencies (wheel_site.floors):
    # every test using it checks them
    pins = floors(built(tmp_path_factory).wheel)
    versions = installed_versions(thin)
    assert {name: versions.get(name) for name in pins} == pins
    assert "mmserve" in versions
    assert not versions.keys() & SERVER_ONLY, sorted(versions.keys() & SERVER_ONLY)
    done = _run(
        [
            thin / "bin" / "python",
            "-c",
            "import json, sys, mmserve; mmserve.Client, mmserve.AsyncClient, mmserve.ApiError; "
            "print(json.dumps(sorted(m for m in ('torch', 'ray', 'numpy') if m in sys.modules)))",
        ]
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == []  # the client imports none of them


def test_a_step_plugin_needs_only_the_thin_install(
    thin: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    site = installed(ROOT / "plugins" / "mmserve-keywords", tmp_path_factory)
    env = {"PYTHONPATH": str(site)}
    listed = _run([thin / "bin" / "mmserve", "plugins", "keywords", "--json"], env=env)
    assert listed.returncode == 0, listed.stderr
    (keywords,) = json.loads(listed.stdout)["plugins"]
    assert keywords["kind"] == "step" and keywords["origin"] != "builtin"
    checked = _run(
        [thin / "bin" / "mmserve", "validate", ROOT / "examples" / "tag_image.yaml"], env=env
    )
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.strip() == "ok: 1 workflow file(s) valid"


@pytest.mark.parametrize(
    "command",
    [
        ["serve"],
        ["serve", "--profile", "tiny"],
        ["build", "--profile", "cluster"],
        ["status"],
        ["run", "caption", "--profile", "tiny", "-i", f"image=@{IMAGE}"],
        ["index", "list", "--profile", "tiny"],
        ["chat", "assistant", "--profile", "tiny"],
    ],
    ids=lambda command: " ".join(command[:2]),
)
def test_server_commands_on_the_thin_install_name_the_extra(
    thin: Path, tmp_path: Path, command: list[str]
) -> None:
    done = _run([thin / "bin" / "mmserve", *command], cwd=tmp_path)
    assert done.returncode == 1
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert EXTRA_LINE in lines[0] and f"`mmserve {command[0]}" in lines[0]


def test_the_server_install_builds_the_tiny_profile_from_an_empty_directory(
    server: Path, tmp_path: Path
) -> None:
    empty, home = tmp_path / "empty", tmp_path / "home"
    empty.mkdir()
    home.mkdir()
    env = {"HOME": str(home)}  # the profile's store is ~/.mmserve/tiny
    built_config = _run(
        [server / "bin" / "mmserve", "build", "--profile", "tiny"], cwd=empty, env=env
    )
    assert built_config.returncode == 0, built_config.stderr
    application = yaml.safe_load(built_config.stdout)["applications"][0]
    assert application["args"] == {"profile": "tiny"}  # found in the package on every node
    deployments = {d["name"] for d in application["deployments"]}
    assert {"ingress", "store", "captioner", "vqa", "llm"} <= deployments

    # the profile, its workflows and agents come from the installed package; its store
    # from the home folder: nothing of the working directory
    where = (
        "import json; from mmserve.config import AppConfig, profile_path; "
        "c = AppConfig.load(profile_path('tiny')); "
        "print(json.dumps([str(profile_path('tiny')), [str(p) for p in c.workflow_paths()], "
        "c.store_location()]))"
    )
    found = _run([server / "bin" / "python", "-c", where], cwd=empty, env=env)
    assert found.returncode == 0, found.stderr
    profile, workflows, store = json.loads(found.stdout)
    package = next((server / "lib").glob("python3*/site-packages/mmserve"))
    assert Path(profile) == package / "profiles" / "tiny.yaml"
    assert [Path(w) for w in workflows] == [package / "profiles" / "workflows"]
    assert Path(store) == home / ".mmserve" / "tiny"
    assert list(empty.iterdir()) == []  # nothing written where it ran
