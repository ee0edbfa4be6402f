"""The command line's plain functions: each `rezgen` command wires sources, store, pages and server together."""
