"""Baseline reconstructions DINR is compared with."""

from dinr.settings import section_schemas

#: The baseline methods (the schema's ``baselines.methods`` lists them): MBIR and FBP of each
#: frame's half-turn window of views, mbirjax's joint 4D MACE4D, FBP of all training views,
#: and for cone beam RTK's FDK of each frame's short scan and of all training views.
METHODS: tuple[str, ...] = tuple(section_schemas()["baselines"]["properties"]["methods"]["items"]["enum"])

#: The cone-beam methods (RTK's FDK).
FDK_METHODS: tuple[str, ...] = ("fdk_sliding", "fdk_static")

#: The parallel-beam FBP methods (slice by slice, so they stream through the scan).
FBP_METHODS: tuple[str, ...] = ("fbp_sliding", "fbp_static")

#: The methods that reconstruct each beam geometry (the MBIR peers do both).
METHODS_BY_BEAM: dict[str, tuple[str, ...]] = {
    "parallel": tuple(m for m in METHODS if m not in FDK_METHODS),
    "cone": ("mbir_sliding", "mace4d", *FDK_METHODS),
}
