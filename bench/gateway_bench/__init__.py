"""The gateway benchmark's parts; bench/run.py is the command (docs/benchmarks.md)."""
