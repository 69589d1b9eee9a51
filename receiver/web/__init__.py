"""HTTP entry points: the Alertmanager webhook, the read API, health and metrics."""
