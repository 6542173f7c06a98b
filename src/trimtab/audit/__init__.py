"""The append-only audit log of administrative actions."""
