"""Plot data: a dashboard plot evaluated over a range and shaped for the browser."""
