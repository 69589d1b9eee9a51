"""Benchmarks for Lazarus (`make bench`): real processes, ratios measured side by side in one run.

Benchmarks report; they never fail on slowness. `python -m bench.run` exits non-zero only when a
benchmark cannot run at all (a process did not start, a response was wrong, a recovery failed).
"""
