"""DINR: distributed implicit neural representations for 4D X-ray tomography.

Subpackages follow the data flow: ``io`` (files), ``prep`` (flat/dark correction),
``sim`` (built-in deforming phantoms), ``geometry`` (ray geometry), ``inr`` (the
neural field and its ray model), ``train`` (distributed optimisation),
``baselines`` (FBP) and ``evaluate`` (metrics, figures).
"""

__version__ = "0.1.0"
