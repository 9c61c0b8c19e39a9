"""The Serve app builder's import paths: the one ``mmserve build`` writes, and the one Serve
config files and RayServices written before the redesign name."""

from __future__ import annotations

import importlib

import pytest

from mmserve.config import AppConfig
from mmserve.deploy.serve_config import IMPORT_PATH, serve_config


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
