"""Running a workflow: :mod:`.engine` (the DAG, concurrency, retries, timeouts) with
:mod:`.engine_steps` (one step's run), :mod:`.resolve` (references to values), :mod:`.context`
(what a step sees), :mod:`.cache` (the step cache), :mod:`.events` (progress events) and
:mod:`.result` (outputs and the trace)."""
