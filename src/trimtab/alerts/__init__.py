"""Budget alerts: recorded in the store, delivered to webhooks off the request path."""
