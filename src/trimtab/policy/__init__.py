"""Rate limits, budgets and budget alerts around each model call (docs/policy.md)."""

from trimtab.policy.estimate import estimate_input_tokens, requested_output_tokens
from trimtab.policy.service import Admission, Ask, Policy

__all__ = ["Admission", "Ask", "Policy", "estimate_input_tokens", "requested_output_tokens"]
