"""Rezolus Parquet recordings, a source: reading them into the store, and writing them."""
