"""The time-series store: series identity, tables of samples, histograms as sparse deltas."""
