"""Releases: plans, sticky assignment, gates, canary statistics and the controller."""
