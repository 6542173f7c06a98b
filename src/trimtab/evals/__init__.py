"""Evals: datasets, scorers, runs and the paired comparison that decides a release gate."""
