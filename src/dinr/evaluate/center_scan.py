"""The rotation axis that best predicts held-out views: an independent check on
centre finding for real scans.

For each candidate centre, FBP of the training views is projected onto the held-out
views with the same centre; the candidate with the smallest relative L2 residual wins.
A wrong centre blurs every edge into an arc, which no reconstruction from the other
views can turn into the held-out projections.
"""

from __future__ import annotations

import logging

import numpy as np
from tqdm import tqdm

from dinr.baselines.fbp import fbp, forward_project
from dinr.evaluate.residuals import ResidualSum
from dinr.io.canonical import Sinogram

log = logging.getLogger(__name__)


def scan_centers(train: Sinogram, heldout: Sinogram, candidates: np.ndarray, filter_name: str,
                 backend: str) -> np.ndarray:
    """Held-out relative residual (candidates,) of static FBP of the ``train`` views at
    each candidate centre (detector columns); columns within 1/8 of the detector width
    of either edge are left out, so that every candidate sees the same, fully covered
    part of the detector."""
    cols = train.shape[2]
    keep = slice(cols // 8, cols - cols // 8)
    measured = heldout.projections[..., keep]
    residuals = np.empty(len(candidates))
    for i, center in enumerate(tqdm(candidates, desc="centre scan", unit="centre", mininterval=5)):
        volume = fbp(train.projections, train.theta, float(center), filter_name, backend)
        total = ResidualSum()
        total.add(forward_project(volume, heldout.theta, float(center))[..., keep], measured)
        residuals[i] = total.relative
    return residuals


def center_report(train: Sinogram, heldout: Sinogram, filter_name: str, backend: str, half_width: float = 5.0,
                  step: float = 0.25, coarse_step: float = 1.0) -> dict[str, object]:
    """The prepared centre (``found``) next to the one that minimises static FBP's
    held-out residual over ``found +- half_width`` columns: first in ``coarse_step``s,
    then in ``step``s within one coarse step of the best coarse candidate (20 FBPs in
    place of 41 at the defaults, for the same answer when the residual has one minimum
    within the range)."""
    found = float(train.center)
    coarse = found + np.arange(-half_width, half_width + coarse_step / 2, coarse_step)
    coarse_residuals = scan_centers(train, heldout, coarse, filter_name, backend)
    middle = float(coarse[int(np.argmin(coarse_residuals))])
    fine = np.setdiff1d(middle + np.arange(-coarse_step, coarse_step + step / 2, step), coarse)
    fine = fine[np.abs(fine - found) <= half_width + 1e-9]
    candidates = np.concatenate([coarse, fine])
    residuals = np.concatenate([coarse_residuals, scan_centers(train, heldout, fine, filter_name, backend)])
    order = np.argsort(candidates)
    candidates, residuals = candidates[order], residuals[order]
    best = float(candidates[int(np.argmin(residuals))])
    log.info("centre: found %.2f, best by held-out residual %.2f", found, best)
    return {"found": found, "best_by_residual": best, "candidates": candidates.tolist(),
            "heldout_rel_residual": residuals.tolist()}
