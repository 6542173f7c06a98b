"""The route registry: named LLM features and their immutable, content-addressed versions."""
