"""``/mcp``: the Model Context Protocol server (:mod:`.server`) exposing workflows and agents
as tools (:mod:`.tools`)."""
