"""What an incident teaches the release process: its failed requests as dataset cases."""
