"""``python -m mmserve`` is the ``mmserve`` command."""

from mmserve.cli import main

main()
