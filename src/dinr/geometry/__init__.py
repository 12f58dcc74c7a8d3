"""Beam geometries: where each detector pixel's ray runs through the object."""
