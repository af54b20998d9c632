"""Benchmarks of the portal (see bench/README.md). Nothing here is imported by the portal itself."""
