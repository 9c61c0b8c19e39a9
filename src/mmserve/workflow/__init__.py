"""Workflows: the spec, the YAML loader with its static checks, and the engine."""
