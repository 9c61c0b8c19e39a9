"""The Serve app builder's import paths: the one ``mmserve build`` writes, and the one Serve
config files and RayServices written before the redesign name; its args (a config file, or a
shipped profile)."""

from __future__ import annotations

import importlib

import pytest

from mmserve.config import AppConfig, profile_path
from mmserve.deploy.serve_config import IMPORT_PATH, serve_config
from mmserve.errors import ConfigError


def _target(import_path: str) -> object:
    module, _, name = import_path.partition(":")
    return getattr(importlib.import_module(module), name)


def test_built_configs_name_the_app_builder() -> None:
    written = serve_config(AppConfig.from_dict({}), config_path="/srv/app.yaml")
    (app,) = written["applications"]
    assert app["import_path"] == IMPORT_PATH == "mmserve.serve.app:app_builder"
    assert callable(_target(app["import_path"]))


OLD_PATHS = ["mmserve.serving.app:app_builder", "mmserve.serving.app:build_app"]


@pytest.mark.parametrize("old", OLD_PATHS)
def test_the_import_path_of_configs_written_before_the_redesign_still_resolves(old: str) -> None:
    new = old.replace("mmserve.serving.app", "mmserve.serve.app")
    assert _target(old) is _target(new)


def test_a_profile_is_found_in_the_installed_package_wherever_the_app_is_built() -> None:
    written = serve_config(AppConfig.load(profile_path("tiny")), profile="tiny")
    (app,) = written["applications"]
    assert app["args"] == {"profile": "tiny"}
    builder = _target(app["import_path"])
    assert callable(builder)
    built = builder(app["args"])  # what Serve does on the cluster: the profile's whole app
    assert type(built).__name__ == "Application"
    by_path = builder({"config": str(profile_path("tiny"))})
    assert type(by_path) is type(built)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"profile": "tiny", "config": "/x.yaml"}, "give one of 'config' or 'profile'"),
        ({"colour": "red"}, "give one of 'config' or 'profile'"),
        ({"profile": "huge"}, "unknown profile 'huge'"),
    ],
)
def test_bad_builder_args_are_config_errors(args: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        _target(IMPORT_PATH)(args)  # type: ignore[operator]


@pytest.mark.parametrize("where", [{}, {"config_path": "/x.yaml", "profile": "tiny"}])
def test_a_built_config_names_exactly_one_place_for_the_app_config(where: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="exactly one of config_path and profile"):
        serve_config(AppConfig.from_dict({}), **where)
