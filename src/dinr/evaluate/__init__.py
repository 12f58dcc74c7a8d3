"""Metrics against ground truth or held-out projections, and figures."""
