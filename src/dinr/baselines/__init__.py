"""Baseline reconstructions DINR is compared with."""

#: The baseline methods, each named ``<algorithm>_<mode>``: FBP of each frame's half-turn
#: window of views, and FBP of all training views.
METHODS = ("fbp_sliding", "fbp_static")
