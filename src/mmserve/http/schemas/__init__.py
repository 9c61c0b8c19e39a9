"""Request and answer models of the HTTP API: :mod:`.workflows` (runs, workflows, health,
plugins, errors) and :mod:`.collections` (collections, items, search)."""
