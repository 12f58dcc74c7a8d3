"""Baseline reconstructions DINR is compared with."""

from dinr.settings import section_schemas

#: The baseline methods (the schema's ``baselines.methods`` lists them): MBIR and FBP of each
#: frame's half-turn window of views, mbirjax's joint 4D MACE4D, and FBP of all training views.
METHODS: tuple[str, ...] = tuple(section_schemas()["baselines"]["properties"]["methods"]["items"]["enum"])
