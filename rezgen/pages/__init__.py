"""The page model shared by the static site and the server: contexts, payloads, catalog, templates."""
