"""mmserve without Ray: a whole app in one process (``run --local``, tests), and ingest.

* :mod:`.mode` -- :class:`~mmserve.local.mode.LocalApp`: the config's models, store, workflows
  and agents wired in process;
* :mod:`.ingest` -- ``mmserve index add``: a folder of images or texts into a collection,
  resumable.
"""
