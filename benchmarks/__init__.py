"""Benchmark scripts (a package only so that module names such as ``archive`` do not clash with tests)."""
