"""The ``mmserve`` command (Typer), one module per command group.

* :mod:`.main` -- the app, ``run``, ``validate``, ``workflows``, ``plugins``, ``version``;
  every other command is added from its own module:
* :mod:`.serve` (``serve``, ``build``), :mod:`.status` (``status``), :mod:`.chat` (``chat``),
  :mod:`.index` (``index ...``, with :mod:`.index_remote`, its ``--url`` forms through the
  client), :mod:`.mcp` (``mcp``, with :mod:`.mcp_bridge`, the stdio bridge to a remote
  server's ``/mcp``);
* :mod:`.common` (the ``--config`` option and its default, one-line errors), :mod:`.inputs`
  (``-i name=value`` parsing), :mod:`.progress` (step progress on stderr), :mod:`.reports`
  (traces, hints, the plugin reference) and :mod:`.plugin_reference` (``docs/plugins.md``).
"""

from mmserve.cli.main import main

__all__ = ["main"]
