"""Statistics, pure: confidence intervals and always-valid sequential tests, shared by
canary analysis, evals and SLOs."""
