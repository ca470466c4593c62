"""Benchmarks: ``python -m benchmarks`` prints the comparison table (see __main__.py); the pytest-benchmark
suite is ``pytest benchmarks`` (not part of the default test run)."""
