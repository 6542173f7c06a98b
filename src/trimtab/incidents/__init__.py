"""Incidents: opened by hand or by a page, their timeline, containment, measured durations
and impact, and postmortems with the reusable rule each one buys (issue 14)."""
