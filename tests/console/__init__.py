"""Tests of the web console: its API, pages, mounts and a real browser."""
