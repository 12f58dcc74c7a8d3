"""Preprocessing of raw counts into line integrals (TomoPy's conventions)."""
