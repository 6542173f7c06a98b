"""The soak test's parts; bench/soak.py is the command (docs/benchmarks.md)."""
