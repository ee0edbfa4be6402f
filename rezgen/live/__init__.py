"""Live ingest, a source: agent snapshots appended to the store's sliding window, and recorded to Parquet."""
