"""An example mmserve role plugin (see README.md): a role, a backend for it, and steps.

Importing this module (the package's entry point) registers all of them; ``backend`` and
``steps`` import ``role`` first, since they name it.
"""

from mmserve_colour_tags import backend, role, steps  # noqa: F401  (importing registers them)
