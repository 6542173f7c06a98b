"""Service level objectives: their declaration, SLIs from the per-minute rollups, error
budgets and multiwindow burn-rate alerts (issue 14; docs/slos.md)."""
