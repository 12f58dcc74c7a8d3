"""Beam geometries: where each detector pixel's ray runs through the object.

:class:`~dinr.geometry.parallel.ParallelGeometry` (synchrotron) and
:class:`~dinr.geometry.cone.ConeGeometry` (lab CT) share one interface (``Geometry``):
detector coordinates, the reconstruction cylinder and its masks, and the quadrature
points of each ray's chord through the cylinder.
"""

from __future__ import annotations

from typing import Any, Union

from dinr.geometry.cone import ConeGeometry
from dinr.geometry.parallel import ParallelGeometry

Geometry = Union[ParallelGeometry, ConeGeometry]


def geometry_from_dict(fields: dict[str, Any]) -> Geometry:
    """The geometry a checkpoint or file stored as a dict of its fields (a cone
    geometry has ``source_axis``)."""
    return ConeGeometry(**fields) if "source_axis" in fields else ParallelGeometry(**fields)
