"""`rezgen build`: the static site."""
