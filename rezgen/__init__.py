"""rezgen: dashboards for Rezolus telemetry, as static sites from recordings and live pages from agents."""

__version__ = "0.1.0"  # pyproject.toml reads it from here
