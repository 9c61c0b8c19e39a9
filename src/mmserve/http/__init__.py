"""The HTTP API (v1) as a FastAPI app, free of Ray: the serve layer mounts it in the ingress.

A request goes through the folders in order:

* :mod:`.middleware` -- request ids, the API key, body and JSON-shape limits, read
  consistency, tracing spans;
* :mod:`.api` -- :func:`~mmserve.http.api.create_api`: the app, its workflow routes, and the
  routes of every surface below; :mod:`.runtime` -- what the app serves (engine, workflows,
  agents, health);
* :mod:`.routes` -- one module per surface (collections, items, agents, OpenAI, the page);
  :mod:`.mcp` -- the ``/mcp`` server; :mod:`.schemas` -- request and answer models;
* :mod:`.run_request` (JSON or multipart runs, the deadline header), :mod:`.limits` (input
  limits, images decoded safely), :mod:`.run_stream` (server-sent events),
  :mod:`.openai_messages` (chat messages to an agent's run);
* :mod:`.error_answers` -- every error as ``{"error": {"code", "message", "request_id"}}``.

``web/`` holds the page's static files.
"""
