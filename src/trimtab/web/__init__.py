"""The web console at /ui: server-rendered pages over the same queries the API runs."""
