"""``python -m mmserve`` is the ``mmserve`` command."""

from mmserve.cli.main import main

main()
