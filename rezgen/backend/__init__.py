"""A Prometheus-compatible TSDB (VictoriaMetrics, Prometheus, ...) as a source of plot data: its HTTP API runs
every query, and rezgen shapes the answers as it does its own engine's."""
