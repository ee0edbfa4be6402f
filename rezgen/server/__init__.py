"""The HTTP server: the site's pages and data, live points over SSE/WebSocket, rezgen's API and the Prometheus API."""
