"""Each frame refined against the views around it, the trained field giving the motion.

A frame sampled from the field at normalised instant ``t`` holds what the field's time
nodes pooled: each node is fitted by the views within a node spacing of it, weighted by
its hat, so where the object rests for less than the time cells can tell, the frame is
fitted from fewer directions than a half-turn window holds (docs/measurements.md, "What
the turning points lack"). The refinement adds to the field's frame ``x0`` the correction
``d`` that the field's own residuals ask for:

    r_i = p_i - A_i f(t_i),

view ``i``'s measured line integrals less the field's at the view's own instant (the
training's forward model at the strata's midpoints, one stratum a pixel of the diameter:
:func:`dinr.evaluate.residuals.field_prediction`), so what the field already explains, its motion included, is not in them. ``d``
minimises the training's own objective for one instant,

    1/2 sum_i c_i sum_rays w (P_i d - r_i)^2 / sigma^2  +  beta TV(x0 + d),

from ``d = 0``: ``w = exp(-p)`` are the training's transmission weights and ``sigma^2``
the scan's weighted noise variance; ``TV`` the isotropic total variation of each slice
(pixel differences, attenuation per pixel); ``beta`` the training's ``tv_weight: auto``
in these units (:func:`frame_prior_weight`), so nothing here is chosen anew. ``P``
projects a slice by bilinear samples a pixel apart along each ray
(:class:`SliceProjector`). The frame's residuals are fitted on voxels while the field's
are continuous: fitting the voxels' own projections instead would put what the voxels
cannot hold (1.8 noise variances a ray against the field's 1.1 on the jerk) into the
frame. ``c_i`` is 1 for the views of the frame's half-turn window (those a sliding-window
peer uses: every direction once) and, for every other training view, ``exp(-m_i)`` with
``m_i`` the mean over the view's rays of ``w (P_i x(t_i) - P_i x0)^2 / sigma^2``: how
far, in units of the noise, the field's slices at the view's instant and at the frame's
differ in that view. Where the field sees the object still, views a turn or more away
count fully, as its temporal prior pooled them; where it moves, only the window counts.
Views held out of training stay out. A correction fitted to the window's views assumes the
field's error stays put across the window, which holds where the object rests and fails
where it moves (the accelerating twist's moving frames lost 0.3 to 1.2 dB with it whole), so
the frame takes ``x0 + s d`` with ``s`` the mean of ``exp(-m_i)`` over the window's views:
all of it where the field sees the window still, none where it sees it all move.

Parallel beam only: its rays stay in their slice, so slices are refined band by band.
Images are (rows, n, n) slices, top row first, in attenuation per pixel.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import numpy as np
import torch

from dinr.baselines.fbp import half_turn_window
from dinr.evaluate.residuals import field_prediction
from dinr.geometry import Geometry
from dinr.inr.field import AttenuationField
from dinr.io.canonical import Sinogram
from dinr.train.objective import REFERENCE_NOISE_VARIANCE, TV_EDGE_SCALE

#: Views whose weight ``c_i`` falls below this are left out (their share of the fit is
#: below the noise of the views that stay), and a frame whose window's share ``s`` falls
#: below it is the field's (no fit).
WEIGHT_FLOOR = 1e-3

#: The TV's smoothing (its value at a flat pixel), as a share of the field's output scale.
TV_SMOOTHING = 1e-3

#: Bilinear samples per pixel along a ray of :class:`SliceProjector` (2 gave the oscillation's
#: frames 5, 0, 13 and the jerk's 12, 7 within 0.02 dB at twice the time).
SAMPLES_PER_PIXEL = 1

#: Sampled points (views x columns x samples x slices) a projector evaluates at once.
POINTS_PER_CHUNK = 1 << 24

#: Views between two instants at which the field's slices are rendered for the
#: projections at the views' own instants (linear in time between them).
VIEWS_PER_RENDER = 8


def frame_prior_weight(noise_variance: float, scale: float) -> float:
    """``beta`` of the module note: the training's ``tv_weight: auto``
    (:func:`dinr.train.objective.tv_weight`) in the units of one frame's objective,
    ``sqrt(sigma0^2 / sigma^2) / (TV_EDGE_SCALE * scale)`` for weighted noise variance
    ``noise_variance`` and the field's output ``scale`` (1/pixel)."""
    return math.sqrt(REFERENCE_NOISE_VARIANCE / noise_variance) / (TV_EDGE_SCALE * scale)


def total_variation(images: torch.Tensor, smoothing: float) -> torch.Tensor:
    """Isotropic TV of (rows, n, n) ``images``: the sum over pixels of
    ``sqrt(dx^2 + dy^2 + smoothing^2)`` with forward differences."""
    dx = images[:, :-1, 1:] - images[:, :-1, :-1]
    dy = images[:, 1:, :-1] - images[:, :-1, :-1]
    return torch.sqrt(dx**2 + dy**2 + smoothing**2).sum()


class SliceProjector:
    """Parallel-beam line integrals (views, rows, cols) of (rows, n, n) slices through
    the views at angles ``theta`` (radians), by bilinear samples at
    :data:`SAMPLES_PER_PIXEL` per pixel of each ray's chord through the cylinder (the
    conventions of :mod:`dinr.geometry.parallel`); differentiable, so its adjoint is
    autograd's. Views are taken in chunks of at most :data:`POINTS_PER_CHUNK` points, their
    sampling points built as each chunk is projected."""

    def __init__(self, geometry: Geometry, theta: np.ndarray, rows: int, device: torch.device) -> None:
        self.geometry, self.device = geometry, device
        self.theta = torch.as_tensor(np.asarray(theta), dtype=torch.float32, device=device)
        self.samples = SAMPLES_PER_PIXEL * geometry.n
        self.u = torch.as_tensor(geometry.detector_u(), dtype=torch.float32, device=device)
        self.per_chunk = max(1, POINTS_PER_CHUNK // (geometry.cols * self.samples * max(rows, 1)))

    def __len__(self) -> int:
        return len(self.theta)

    def chunks(self) -> Iterator[slice]:
        """The chunks of views, as slices of ``theta``."""
        for start in range(0, len(self.theta), self.per_chunk):
            yield slice(start, min(start + self.per_chunk, len(self.theta)))

    def project(self, images: torch.Tensor, views: slice) -> torch.Tensor:
        """(views, rows, cols) projections of (rows, n, n) ``images`` through ``views``."""
        cols, n = self.geometry.cols, self.geometry.n
        angle = self.theta[views].repeat_interleave(cols)
        offsets = torch.full((len(angle), self.samples), 0.5, device=self.device)
        x, y, _, step = self.geometry.chord_points(angle, self.u.repeat(len(angle) // cols), torch.zeros_like(angle),
                                                   self.samples, offsets)
        grid = torch.stack([2.0 * x / n, -2.0 * y / n], dim=-1)[None]  # (1, rays, samples, 2)
        values = torch.nn.functional.grid_sample(images[None], grid, align_corners=False)[0].sum(-1)
        return (values.reshape(len(images), -1, cols) * step.reshape(-1, cols)[None]).permute(1, 0, 2)

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """(views, rows, cols) projections of (rows, n, n) ``images`` through every view."""
        with torch.no_grad():
            return torch.cat([self.project(images, views) for views in self.chunks()])


def fit_correction(start: torch.Tensor, residuals: torch.Tensor, weights: torch.Tensor,
                   projector: SliceProjector, cylinder: torch.Tensor, noise_variance: float, beta: float,
                   smoothing: float, iterations: int) -> np.ndarray:
    """The refined (rows, n, n) slices ``start + d`` of the module note: ``residuals``
    (views, rows, cols) the field's residuals at the views' own instants, ``weights``
    (views, rows, cols) ``c_i w`` per ray; voxels outside ``cylinder`` (n, n) are 0.
    L-BFGS from ``d = 0``, at most ``iterations`` of them; the data term is summed chunk
    by chunk, each chunk's graph freed as it goes."""
    correction = torch.zeros_like(start, requires_grad=True)
    solver = torch.optim.LBFGS([correction], max_iter=iterations, line_search_fn="strong_wolfe",
                               tolerance_grad=1e-9, tolerance_change=1e-12, history_size=20)

    def objective() -> torch.Tensor:
        solver.zero_grad()
        total = 0.0
        for views in projector.chunks():
            misfit = projector.project(correction * cylinder, views) - residuals[views]
            term = 0.5 * (weights[views] * misfit**2).sum() / noise_variance
            term.backward()
            total += float(term.detach())
        prior = beta * total_variation((start + correction) * cylinder, smoothing)
        prior.backward()
        return torch.tensor(total + float(prior.detach()))

    solver.step(objective)
    return ((start + correction) * cylinder).detach().cpu().numpy()


class FrameRefiner:
    """Refines frames of ``field`` slice band by slice band (module note).

    ``render(t)`` gives the field's (rows, n, n) slices of the band at normalised instant
    ``t``; ``views`` are the scan's training views of the band's detector ``rows``, ``time`` their normalised instants; ``noise_variance``
    the scan's weighted noise variance, ``scale`` the field's output scale. Computed once
    per band: the field's residuals at the views' own instants, and the views' projections
    of the field's slices there (``P_i x(t_i)`` of the module note: slices rendered every
    :data:`VIEWS_PER_RENDER` views and interpolated linearly in time, two renders held at
    a time).
    """

    def __init__(self, field: AttenuationField, render: Callable[[float], np.ndarray], geometry: Geometry,
                 views: Sinogram, time: np.ndarray, rows: slice, noise_variance: float, scale: float,
                 iterations: int, device: torch.device) -> None:
        self.render, self.geometry, self.device, self.time = render, geometry, device, time
        self.projector = SliceProjector(geometry, views.theta, views.projections.shape[1], device)
        self.measured = torch.as_tensor(views.projections, device=device)
        self.transmission = torch.exp(-torch.clamp(self.measured, min=0.0))
        self.noise_variance, self.iterations = noise_variance, iterations
        self.beta = frame_prior_weight(noise_variance, scale)
        self.smoothing = TV_SMOOTHING * scale
        self.cylinder = torch.as_tensor(geometry.cylinder_mask(), dtype=torch.float32, device=device)
        self.theta = views.theta
        predicted = field_prediction(field, views, geometry, int(round(2 * geometry.radius)), rows)
        self.residuals = self.measured - torch.as_tensor(predicted, device=device)
        self.own = self.projections_at_own_instants()

    def slices(self, instant: float) -> torch.Tensor:
        return torch.as_tensor(self.render(instant), dtype=torch.float32, device=self.device)

    def projections_at_own_instants(self) -> torch.Tensor:
        """(views, rows, cols): each view's projection of the field's slices at its own
        instant, ``P_i x(t_i)`` (the class note)."""
        own = torch.empty_like(self.measured)
        knots = np.append(self.time[::VIEWS_PER_RENDER], self.time[-1])
        previous = self.slices(float(knots[0]))
        for left, right in zip(knots[:-1], knots[1:]):
            current = self.slices(float(right))
            inside = np.flatnonzero((self.time >= left) & ((self.time < right) | (right == self.time[-1])))
            if len(inside):
                views = slice(int(inside[0]), int(inside[-1]) + 1)
                share = torch.as_tensor((self.time[views] - left) / max(right - left, 1e-12), dtype=torch.float32,
                                        device=self.device)[:, None, None]
                with torch.no_grad():
                    own[views] = ((1 - share) * self.projector.project(previous, views)
                                  + share * self.projector.project(current, views))
            previous = current
        return own

    def view_weights(self, instant: float, moved: torch.Tensor) -> tuple[torch.Tensor, float]:
        """``c_i`` (views,) of the module note for a frame at ``instant`` and the share of
        its window the field sees still (the mean of ``exp(-m_i)`` over the window's
        views), given the projections ``moved`` (views, rows, cols) of the field's slices
        at that instant, ``P_i x0``."""
        window = torch.zeros(len(self.theta), dtype=torch.bool, device=self.device)
        window[torch.as_tensor(half_turn_window(self.theta, self.time, instant), device=self.device)] = True
        still = torch.exp(-(self.transmission * (self.own - moved) ** 2).mean(dim=(1, 2)) / self.noise_variance)
        return torch.where(window, torch.ones_like(still), still), float(still[window].mean())

    def __call__(self, instant: float) -> tuple[np.ndarray, np.ndarray]:
        """The field's (rows, n, n) slices of the band at normalised ``instant`` and the
        same slices refined (the field's where its window is all motion)."""
        start = self.slices(instant)
        weights, share = self.view_weights(instant, self.projector(start))
        if share < WEIGHT_FLOOR:
            return start.cpu().numpy(), start.cpu().numpy()
        keep = torch.nonzero(weights >= WEIGHT_FLOOR).flatten()
        ray_weights = self.transmission[keep] * weights[keep, None, None]
        projector = SliceProjector(self.geometry, self.theta[keep.cpu().numpy()], start.shape[0], self.device)
        refined = fit_correction(start, self.residuals[keep], ray_weights, projector, self.cylinder,
                                 self.noise_variance, self.beta, self.smoothing, self.iterations)
        return start.cpu().numpy(), start.cpu().numpy() + share * (refined - start.cpu().numpy())
