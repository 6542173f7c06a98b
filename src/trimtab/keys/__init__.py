"""Virtual keys: created and revoked through the API, stored as hashes, cached in memory."""
