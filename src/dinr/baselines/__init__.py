"""Analytic baselines: static and sliding-window filtered back-projection."""
