"""The pieces of ``benchmarks.run``: presets, load generator, process stats, servers, report."""
