"""Checks of the deploy files (Prometheus, Grafana, Dockerfile, compose.yaml); helpers in stackfiles."""
