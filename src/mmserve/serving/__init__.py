"""The old name of :mod:`mmserve.serve`, kept so that Serve config files written before the
redesign (``import_path: mmserve.serving.app:app_builder``) still deploy."""
