"""Who is calling: API keys (from the config and created through the API), held as
hashes, cached in memory and checked on every request."""
