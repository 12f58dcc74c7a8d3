"""The built-in deforming phantoms, by the name ``simulate.phantom`` gives them."""

from __future__ import annotations

from collections.abc import Callable

from dinr.errors import InputError
from dinr.settings import SimulateSettings
from dinr.sim.compression import CompressionPhantom
from dinr.sim.ellipses import Phantom
from dinr.sim.foam import FoamPhantom
from dinr.sim.motion import MOTIONS, Moved
from dinr.sim.spin import SpinPhantom
from dinr.sim.swelling import SwellingPhantom

#: Phantom name -> how to build it from the ``simulate`` settings (``twist_deg`` is the
#: compression phantom's alone).
PHANTOMS: dict[str, Callable[[SimulateSettings], Phantom]] = {
    "compression": lambda s: CompressionPhantom(s.size, s.rows, seed=s.seed, twist_deg=s.twist_deg),
    "foam": lambda s: FoamPhantom(s.size, s.rows, seed=s.seed),
    "spin": lambda s: SpinPhantom(s.size, s.rows, seed=s.seed),
    "swelling": lambda s: SwellingPhantom(s.size, s.rows, seed=s.seed),
}


def build_phantom(settings: SimulateSettings) -> Phantom:
    """The phantom ``settings.phantom`` names, sized and seeded by ``settings``, moving
    as ``settings.motion`` says (:mod:`dinr.sim.motion`)."""
    if settings.phantom not in PHANTOMS:
        raise InputError(f"simulate.phantom: unknown phantom {settings.phantom!r}; known: {sorted(PHANTOMS)}")
    if settings.motion not in MOTIONS:
        raise InputError(f"simulate.motion: unknown motion {settings.motion!r}; known: {sorted(MOTIONS)}")
    phantom = PHANTOMS[settings.phantom](settings)
    return phantom if settings.motion == "steady" else Moved(phantom, settings.motion)
