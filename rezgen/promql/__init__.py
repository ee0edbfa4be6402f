"""PromQL over the store: parse (promql-parser), bound, and evaluate every step at once with numpy."""
