"""Prometheus remote write of ingested snapshots (`--remote-write URL`)."""
