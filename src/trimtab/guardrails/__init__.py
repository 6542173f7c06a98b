"""Guardrails: PII and secret detection, injection and output checks, session ceilings
(issue 15; docs/guardrails.md)."""
