"""Releases in motion: rollouts, attestations and feedback in the store, the controller
that moves them, and the route table the gateway serves from."""
