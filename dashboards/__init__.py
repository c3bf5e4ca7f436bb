"""Grafana dashboards as code (grafana-foundation-sdk, InfluxQL only); see docs/dashboards.md."""
