"""Baseline reconstructions DINR is compared with."""

from dinr.settings import section_schemas

#: The baseline methods, each named ``<algorithm>_<mode>`` (the schema's ``baselines.methods``
#: lists them): FBP of each frame's half-turn window of views, and FBP of all training views.
METHODS: tuple[str, ...] = tuple(section_schemas()["baselines"]["properties"]["methods"]["items"]["enum"])
