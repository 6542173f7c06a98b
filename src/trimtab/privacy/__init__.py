"""Data protection in the store: what of a body is kept (storage.py), for how long
(retention.py), and a person's right to erasure and access (erasure.py: erase, and export
as JSON Lines)."""
