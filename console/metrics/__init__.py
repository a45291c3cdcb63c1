"""Prometheus metrics at /metrics: off by default, on with METRICS_TOKEN and/or METRICS_ALLOW."""
