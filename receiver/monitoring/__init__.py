"""Lazarus's alerting rules and Grafana dashboards, generated from one source each.

`rules`: renders rules/templates/ with the durations of rules/timings.yml (or the demo's).
`dashboards`: builds deploy/grafana/dashboards/*.json.
"""
