"""The workflow language: YAML in, a checked :class:`~.definition.Workflow` out (no running).

* :mod:`.spec` -- the pydantic spec; :mod:`.yaml_source` -- YAML with line and column marks;
* :mod:`.references` (``${step.field}``), :mod:`.conditions` (``when:``), :mod:`.typecheck`
  (types of references), :mod:`.input_values` (workflow inputs);
* :mod:`.checks` with :mod:`.checks_structure`, :mod:`.checks_keys`, :mod:`.checks_values` --
  the static checks, reported as :mod:`.issues` at ``FILE:LINE:COL``;
* :mod:`.definition` -- the checked workflow (and a workflow as a step); :mod:`.loader` -- files.
"""
