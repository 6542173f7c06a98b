"""Canary policy, pure: rollout plans, sticky assignment, release gates and the analysis
that judges a candidate against stable."""
