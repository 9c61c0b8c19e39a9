"""One module per API surface: :mod:`.collections` and :mod:`.items` (``/v1/collections``),
:mod:`.agents` (``/v1/agents``), :mod:`.openai` (``/v1/chat/completions``, ``/v1/models``),
:mod:`.web` (the page). The workflow routes live with the app (:mod:`mmserve.http.api`)."""
