from __future__ import annotations

from pathlib import Path

import pytest

import mmserve
from mmserve.config import PROFILES, AppConfig, profile_path
from mmserve.errors import ConfigError, ModelNotConfiguredError

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("name", ["tiny.yaml", "local.yaml"])
def test_shipped_configs_load(name: str) -> None:
    config = AppConfig.load(ROOT / "deployments" / name)
    for role in ("image_encoder", "text_encoder", "captioner", "vqa"):
        assert config.model_for(role) == role  # type: ignore[arg-type]
    assert config.role_of("sentence") == "text_encoder"
    # the repository's folders are links to the package's, which the profiles name
    assert config.workflow_paths() == [(ROOT / "workflows").resolve()]
    assert config.agent_paths() == [(ROOT / "agents").resolve()]
    # the store is in the user's home, whatever the working directory or the install
    assert config.store_location() == str(Path.home() / ".mmserve" / name.removesuffix(".yaml"))


def test_cluster_profile_names_its_workflows_and_no_agents() -> None:
    config = AppConfig.load(ROOT / "deployments" / "cluster.yaml")
    assert config.workflow_paths() == [(ROOT / "workflows").resolve()]
    assert config.agent_paths() == []


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_profiles_ship_in_the_package_with_their_workflows(name: str) -> None:
    path = profile_path(name)
    assert path.parent.parent == Path(mmserve.__file__).parent
    assert (ROOT / "deployments" / f"{name}.yaml").resolve() == path
    config = AppConfig.load(path)
    assert config.workflow_paths() == [path.parent / "workflows"]
    assert "caption.yaml" in {p.name for p in (path.parent / "workflows").iterdir()}


def test_an_unknown_profile_lists_the_profiles() -> None:
    with pytest.raises(ConfigError, match="unknown profile 'huge'.*tiny .*local .*cluster"):
        profile_path("huge")


def test_left_out_folders_default_to_those_beside_the_config(tmp_path: Path) -> None:
    # the repository's layout: an app in a subfolder, the checkout's agents/ one level up
    (tmp_path / "agents").mkdir()
    (tmp_path / "workflows").mkdir()
    app = tmp_path / "app"
    app.mkdir()
    file = app / "app.yaml"
    file.write_text("store: {kind: memory}\n")
    config = AppConfig.load(file)
    # nothing beside it: none at all, never the folders of the parent
    assert (config.workflows, config.agents) == ([], [])
    assert config.workflow_paths() == []
    assert config.agent_paths() == []

    (app / "workflows").mkdir()
    (app / "agents").mkdir()
    config = AppConfig.load(file)
    assert config.workflow_paths() == [app / "workflows"]
    assert config.agent_paths() == [app / "agents"]

    # a key the config names wins, [] included; the other still defaults to its folder
    file.write_text("workflows: [flows]\nagents: []\n")
    config = AppConfig.load(file)
    assert config.workflow_paths() == [app / "flows"]
    assert config.agent_paths() == []
    file.write_text("workflows: [flows]\n")
    assert AppConfig.load(file).agent_paths() == [app / "agents"]


def test_a_folder_beside_the_config_must_be_a_folder(tmp_path: Path) -> None:
    (tmp_path / "workflows").write_text("not a folder")
    file = _write(tmp_path, "store: {kind: memory}\n")
    assert AppConfig.load(file).workflow_paths() == []


def test_from_dict_has_no_file_so_no_folders_beside_it(tmp_path: Path) -> None:
    (tmp_path / "workflows").mkdir()
    (tmp_path / "agents").mkdir()
    config = AppConfig.from_dict({}, base_dir=tmp_path)
    assert (config.workflow_paths(), config.agent_paths()) == ([], [])


def test_the_loaded_folders_survive_the_dump_the_ingress_rebuilds_from(tmp_path: Path) -> None:
    (tmp_path / "workflows").mkdir()
    config = AppConfig.load(_write(tmp_path, "store: {kind: memory}\n"))
    again = AppConfig.from_dict(config.model_dump(mode="json"), base_dir=config.base_dir)
    assert again.workflow_paths() == [tmp_path / "workflows"]
    assert again.agent_paths() == []


def test_relative_paths_resolve_against_the_config_folder(tmp_path: Path) -> None:
    (tmp_path / "conf").mkdir()
    file = tmp_path / "conf" / "app.yaml"
    file.write_text("store: {path: data}\nworkflows: [../flows]\n")
    config = AppConfig.load(file)
    assert config.store_location() == str(tmp_path / "conf" / "data")
    assert config.workflow_paths() == [tmp_path / "flows"]
    file.write_text("store: {path: 's3://bucket/mmserve'}\n")
    assert AppConfig.load(file).store_location() == "s3://bucket/mmserve"


def _write(tmp_path: Path, text: str) -> Path:
    file = tmp_path / "app.yaml"
    file.write_text(text)
    return file


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("models: {captioner: {backend: x, source: y, replica: 2}}", "replica"),
        (
            "models: {vqa: {backend: x, source: y, replicas: 2, autoscaling: {}}}",
            "either 'replicas' or 'autoscaling'",
        ),
        (
            "models: {vqa: {backend: x, source: y, max_ongoing_requests: 2, batch: {max_size: 8}}}",
            "must be >= batch.max_size",
        ),
        ("models: {mine: {backend: x, source: y}}", "needs a 'role'"),
        (
            "models: {mine: {backend: x, source: y, role: detector}}",
            r"model 'mine': unknown role 'detector'; registered roles: captioner, image_editor, "
            r"image_encoder, image_generator, llm, text_encoder, vqa \(a plugin package can add "
            r"roles",
        ),
        ("models: {vqa: {backend: x, source: y, gpus: -1}}", "gpus"),
        ("server: {port: 99999}", "server.port"),
        ("[1, 2]", "mapping at the top level"),
        ("models: {vqa: [unclosed", "not valid YAML"),
    ],
)
def test_bad_configs_say_what_is_wrong(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        AppConfig.load(_write(tmp_path, text))
    assert str(tmp_path / "app.yaml") in str(caught.value)


def test_missing_config_file_hints_at_the_offline_profile(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--profile tiny"):
        AppConfig.load(tmp_path / "nope.yaml")


def test_model_for_explains_missing_and_ambiguous_roles() -> None:
    config = AppConfig.from_dict(
        {
            "models": {
                "a": {"role": "text_encoder", "backend": "fake", "source": "fake://"},
                "b": {"role": "text_encoder", "backend": "fake", "source": "fake://"},
            }
        }
    )
    with pytest.raises(ModelNotConfiguredError, match="several models serve 'text_encoder'"):
        config.model_for("text_encoder")
    assert config.model_for("text_encoder", "b") == "b"
    with pytest.raises(ModelNotConfiguredError, match="no model for the role 'vqa'"):
        config.model_for("vqa")
    with pytest.raises(ModelNotConfiguredError, match="serves 'text_encoder', not 'vqa'"):
        config.model_for("vqa", "a")
    with pytest.raises(ModelNotConfiguredError, match="no model named 'c'"):
        config.model_for("vqa", "c")
