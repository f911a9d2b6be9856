"""Benchmarks behind `vvhand bench ...`; each appends its numbers to docs/results.md."""
