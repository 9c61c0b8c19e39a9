"""``mmserve.serving.app:app_builder``: the import path of Serve config files written before
the redesign. The app builder lives in :mod:`mmserve.serve.app`."""

from mmserve.serve.app import app_builder, build_app

__all__ = ["app_builder", "build_app"]
