"""The canary simulation's parts; bench/canary_sim.py is the command (docs/canary.md)."""
