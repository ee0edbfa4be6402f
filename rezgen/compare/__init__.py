"""A/B compare of two recordings: which recordings under which names (`inputs`), which hosts pair up (`pairing`),
each chart's data for both (`plots`), and what changed between them, ranked (`changes`)."""
