"""Benchmarks: timings reported as ratios measured in one process (see README.md here)."""
