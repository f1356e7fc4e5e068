"""Micro-benchmarks of the harness's hot paths (may read the clock; not part of the domain)."""
