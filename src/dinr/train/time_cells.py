"""``train.time_cells_per_half_turn: auto``: the finest time level's cells chosen by the
scan's own held-out views.

Candidates of :data:`CANDIDATE_CELLS` time cells per half-turn are trained, coarsest
first, for ``time_cells_pilot_epochs`` epochs each, or ``time_cells_pilot_rays`` rays
when that comes first (pilots: runs of ``steps: auto``, capped there; the steps that tell
the candidates apart are the optimizer's, and do not grow with the scan as its epochs
do). The one-cell candidate has the configured priors; each finer one
(:func:`finer_candidate`) a spatial TV weight of :data:`FINER_SPATIAL_SHARE` of the
next coarser candidate's resolved weight and a temporal TV weight :data:`TIME_PRIOR_RATIO`
times its own (each cell of ``k`` sees ``1/k`` of a half-turn of views; the temporal
prior keeps it determined, and ``tv_weight: auto`` would count the extra cells as
unknowns and over-smooth). The first two candidates are always piloted; a finer one
only while the last one piloted wins by the rule below, :func:`chosen_cells` (the
views ask for finer cells). Under ``tv_time_weight: auto`` the
one-cell prior in time follows the scan's stillness (:mod:`dinr.train.objective`; from
views a turn apart, and half a turn apart where those read a rest, :func:`one_cell_profile`), and
a finer candidate's is multiplied by ``1 + STILL_PRIOR_GAIN * stillness``
(:func:`time_prior_profile`): where the object rests, pooled over its shorter cells as
a half-turn window pools its views, and where it moves as before. A finer candidate's
stillness is measured at its own scale: from views half a turn apart, mirrored about the
axis on parallel beam, or from the fan-beam conjugates of the central rows on cone beam,
which see rests half as long as a turn (:mod:`dinr.prep.stillness`). The
candidate whose pilot predicted the held-out views best wins, a tie going to fewer cells:
each pilot is scored by the geometric mean of the relative residuals of its last
:data:`PILOT_TAIL_EVALUATIONS` held-out evaluations up to the steps every pilot reached (a
pilot stopped by its share of ``max_wall_s`` may have trained fewer steps, a finer cell's
step being dearer), :func:`pilot_score`; a finer candidate must predict them better by more
than the pilots' own scatter over seeds: below :data:`FINER_WIN_RATIO` times the coarser
winner's score.
Where the scan's stillness is measured and not 0 everywhere, the
residual compared is the one where the object moves (each held-out ray weighted by
``1 - stillness`` at its instant, :mod:`dinr.train.validation`): time cells resolve
motion, and over still stretches, where both candidates' priors tie the cells together,
two-epoch pilots favour the candidate with fewer unknowns whichever predicts the views
better at convergence (the jerk's pilots: 0.02091 against 0.02131 over all held-out
views, 0.02365 against 0.02216 where it moves; its converged runs 0.01567 and 0.01499).
The winner's pilot goes on to the run's full budget: its checkpoint becomes the run's,
and since the epoch cap is not part of an adaptive run's identity
(:data:`dinr.train.checkpoint.BUDGET_CAPS`) it continues exactly as an uncapped run of
the winner would.

With ``max_wall_s`` set, it bounds the whole training, pilots included: each pilot stops
at :data:`PILOT_WALL_SHARE` of it (or at its epochs or rays, whichever comes first), and the
winner goes on until its own seconds (its pilot's included) and the losing pilots' reach
it. A pilot stopped before its first held-out evaluation ranks last.

The pilots' checkpoints, ``<checkpoint stem>.cells<N><suffix>``, stay beside the run's,
so a rerun reads the choice back without training again and a killed pilot resumes. The
choice needs held-out views and ``steps: auto``; without them, or with an explicit
``time_resolution``, ``auto`` is one cell and nothing is piloted. Nor is it piloted where
the run starts from FBP (``train.initial`` resolves to ``fbp``: an epoch of more than
:data:`dinr.train.setup.AUTO_FBP_EPOCH_STEPS` steps): there the pilots' steps are about
what the whole run needs to pass sliding MBIR (the 128-pixel parallel scan: 656 s of pilots
against MBIR's 203 s), and their choice was close (held-out residuals 0.15 % and 2.6 %
apart on the two 128-pixel scans); one cell per half-turn is taken.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import shutil
from pathlib import Path
from typing import Any, Callable

import numpy as np

from dinr.io.atomic import atomic_path
from dinr.settings import TrainSettings
from dinr.train.checkpoint import TrainingState, differing_prior, load_checkpoint, losing_pilots_seconds
from dinr.train.comm import Communicator
from dinr.train.loop import set_aside

log = logging.getLogger(__name__)

#: Time cells per half-turn of the candidates, coarsest first (module note). Not 4 as well:
#: where the views chose 2 (the jerk, the spinning part, the accelerating twist), a 4-cell
#: pilot at these rules won on the accelerating twist (0.02645 against 0.02704 where it
#: moves) and went on to the lower held-out residual at convergence (0.01589 against
#: 0.01715), yet to 27.20 dB against 34.30: each of its cells sees an eighth of a turn, and
#: its error projects 11 to 27 times more across the directions measured at a frame's
#: instant than along them, where held-out views cannot see it (docs/measurements.md, "Four time cells").
CANDIDATE_CELLS = (1, 2)

#: Temporal TV weight of a finer candidate over its spatial weight (chosen on the jerk
#: scan, docs/measurements.md, "Finer time cells").
TIME_PRIOR_RATIO = 2.0

#: Spatial TV weight of a finer candidate over the next coarser one's (the two-cell
#: candidate's over the one-cell pilot's resolved weight): with the
#: temporal prior tying its cells, half the spatial weight gained 0.34 to 0.64 dB on the
#: mean and 0.41 to 0.47 dB in the worst frame of the three scans (of ten) whose pilots
#: chose two cells; two scans it tipped to two cells lost 0.08 and 0.12 dB (single runs on
#: a GPU). Through the workflow on the CPU the spinning part gained 0.54 dB and the jerk
#: lost 0.38: it needs repeated runs (docs/measurements.md, "The TV weight and the noise").
FINER_SPATIAL_SHARE = 0.5

#: Under ``tv_time_weight: auto`` a finer candidate's temporal prior is multiplied by
#: ``1 + STILL_PRIOR_GAIN * stillness`` (:func:`time_prior_profile`), the stillness of
#: views half a turn apart. Chosen on parallel-beam scans as the largest of 1, 2, 4 and 8
#: under which no scan of config/paper.yaml but the oscillation lost more than 0.1 dB of its
#: mean or went below its best peer in any frame (a rule fixed before their results): 8
#: cost the jerk 1.80 dB; at 4 the ten other scans with pilots moved by -0.06 to +0.98 dB
#: (the jerk +0.54, the low-dose foam +0.98 with one cell now chosen) and kept every
#: worst-frame margin above 0 (docs/measurements.md, "The same prior, eight times as
#: strong, on the oscillation").
STILL_PRIOR_GAIN = 4.0

#: A pilot's score (:func:`pilot_score`) is the geometric mean of its residuals at this many
#: held-out evaluations, the last up to the steps compared (of the ten a two-epoch pilot
#: of a 64-pixel scan makes, its second half). Its single best evaluation, the score
#: before, moves with the step's noise: the ratio of the pilots' scores (two cells over
#: one) moved with ``train.seed`` by a standard deviation of 0.024 in its logarithm on the
#: five scans not held out that were run at seeds 0, 1 and 2; the mean of the last five
#: moved by 0.016 (docs/measurements.md, "The pilots' score: the last five evaluations").
PILOT_TAIL_EVALUATIONS = 5

#: A finer candidate wins where its pilot's score is below this share of the coarser
#: winner's: two standard deviations of the ratio's logarithm over seeds (0.016,
#: :data:`PILOT_TAIL_EVALUATIONS`), exp(-0.031) = 0.969, rounded up. At seed 0 every scan of
#: config/paper.yaml with pilots makes the choice of the committed table under it; the
#: best single evaluation under 0.95, the rule before, gave the jerk one cell (0.957)
#: (docs/measurements.md, "The pilots' score: the last five evaluations").
FINER_WIN_RATIO = 0.97

#: Under ``tv_time_weight: auto`` a one-cell run's temporal prior also reads the stillness of
#: views half a turn apart where it is at least this (a rest, not the 0.1-0.45 that moving
#: scans read there: a half-turn table read everywhere cost the demo 0.31 dB): views a turn
#: apart miss rests shorter than a turn, and on a scan of under two turns they span more
#: than half of it. Adopted by the gain's rule fixed before the runs: of config/paper.yaml it
#: changed the swelling gel (-0.04 dB, worst frame +0.14 -> +0.29) and the resting gel
#: (-0.02 dB, +0.66 unchanged) and no scan's choice of cells (docs/measurements.md, "A
#: one-cell prior from views half a turn apart").
ONE_CELL_HALF_TURN_REST = 0.5

#: Share of ``train.max_wall_s`` each pilot may train for: the pilots of every candidate
#: take at most half of it, and the run the rest.
PILOT_WALL_SHARE = 0.5 / len(CANDIDATE_CELLS)

#: Trains ``settings`` from (or resuming) the checkpoint at the path; the flag says
#: whether this is the run itself (snapshots are taken) or a pilot.
Trainer = Callable[[TrainSettings, Path, bool], TrainingState]


def pilot_path(checkpoint_path: Path, cells: int) -> Path:
    """Where the pilot of ``cells`` time cells per half-turn keeps its checkpoint."""
    return checkpoint_path.with_name(f"{checkpoint_path.stem}.cells{cells}{checkpoint_path.suffix}")


def finer_candidate(settings: TrainSettings, coarser_pilot: TrainingState, cells: int) -> TrainSettings:
    """The candidate of ``cells`` time cells per half-turn, next finer than the one
    ``coarser_pilot`` trained: :data:`FINER_SPATIAL_SHARE` of that pilot's resolved
    spatial TV weight, and a temporal one :data:`TIME_PRIOR_RATIO` times that."""
    weight = FINER_SPATIAL_SHARE * float(coarser_pilot.prior["tv_weight"])
    return dataclasses.replace(settings, time_cells_per_half_turn=cells, tv_weight=weight,
                               tv_time_weight=TIME_PRIOR_RATIO * weight)


def time_prior_profile(settings: TrainSettings, run_settings: TrainSettings, stillness: np.ndarray | None,
                       half_turn_stillness: np.ndarray | None = None) -> np.ndarray | None:
    """The table the temporal prior's weight of a run of ``run_settings`` is multiplied by
    over the scan (None: alike at every instant), in a training configured with
    ``settings`` on a scan of ``stillness`` (:mod:`dinr.prep.stillness`, views a turn
    apart; None when not measured): under ``tv_time_weight: auto`` the stillness, raised
    where views half a turn apart read a rest (:func:`one_cell_profile`); for a
    finer candidate of ``time_cells_per_half_turn: auto`` under it, ``1 +
    STILL_PRIOR_GAIN * s`` with ``s`` the ``half_turn_stillness`` (views half a turn
    apart) where measured, else the stillness (module note); None where
    ``s`` is 0 throughout (alike everywhere)."""
    if settings.tv_time_weight != "auto":
        return None
    if run_settings.tv_time_weight == "auto":
        return one_cell_profile(stillness, half_turn_stillness)
    finer = settings.time_cells_per_half_turn == "auto" and run_settings.time_cells_per_half_turn != 1
    still = half_turn_stillness if half_turn_stillness is not None else stillness
    return 1.0 + STILL_PRIOR_GAIN * still if finer and still is not None and np.any(still > 0) else None


def one_cell_profile(stillness: np.ndarray | None, half_turn_stillness: np.ndarray | None) -> np.ndarray | None:
    """The temporal prior's table of a run whose ``tv_time_weight`` is ``auto`` (the
    one-cell candidate, or a run of fixed cells configured so): the ``stillness`` of
    views a turn apart, and, where the
    ``half_turn_stillness`` reads at least :data:`ONE_CELL_HALF_TURN_REST`, the larger of
    the two (None, a prior alike at every instant, where views a turn apart are not measured)."""
    if stillness is None or half_turn_stillness is None:
        return stillness
    rests = half_turn_stillness >= ONE_CELL_HALF_TURN_REST
    return np.maximum(stillness, np.where(rests, half_turn_stillness, 0.0)) if rests.any() else stillness


def heldout_residuals(state: TrainingState, until_step: float = math.inf, moving: bool = False) -> list[float]:
    """The relative residuals of the held-out views (``moving``: where the scan moves,
    :mod:`dinr.train.validation`) at a run's evaluations at steps up to ``until_step``,
    in order."""
    rows = state.validation_moving if moving else state.validation
    return [float(row[1]) for row in rows if row[0] <= until_step]


def best_heldout(state: TrainingState, until_step: float = math.inf, moving: bool = False) -> float:
    """The lowest of :func:`heldout_residuals` (infinite for a run stopped before its first)."""
    return min(heldout_residuals(state, until_step, moving), default=math.inf)


def pilot_score(state: TrainingState, until_step: float = math.inf, moving: bool = False,
                tail: int | None = None) -> float:
    """A pilot's score for the choice (module note): the geometric mean of its last
    ``tail`` (default :data:`PILOT_TAIL_EVALUATIONS`) :func:`heldout_residuals`, all of
    them where it made fewer (infinite for a pilot stopped before its first)."""
    count = PILOT_TAIL_EVALUATIONS if tail is None else tail
    if count < 1:
        raise ValueError(f"a pilot's score needs at least one evaluation, got tail {count}")
    last = heldout_residuals(state, until_step, moving)[-count:]
    return math.exp(sum(math.log(value) for value in last) / len(last)) if last else math.inf


def compared_where_moving(pilots: dict[int, TrainingState]) -> bool:
    """Whether the pilots are compared where the scan moves: every pilot evaluated there."""
    return all(pilot.validation_moving for pilot in pilots.values())


def compared_steps(pilots: dict[int, TrainingState]) -> int:
    """The steps every pilot reached: the pilots are compared on their evaluations up to it."""
    return min(pilot.step for pilot in pilots.values())


def pilot_settings(candidate: TrainSettings, epochs: float) -> TrainSettings:
    """A candidate's pilot: ``epochs`` epochs, and :data:`PILOT_WALL_SHARE` of the
    configured ``max_wall_s`` when one is set."""
    wall = None if candidate.max_wall_s is None else PILOT_WALL_SHARE * candidate.max_wall_s
    return dataclasses.replace(candidate, max_epochs=epochs, max_wall_s=wall)


def winner_settings(candidate: TrainSettings, record: dict[str, Any]) -> TrainSettings:
    """The winning candidate's run: its ``max_wall_s``, when set, less the training
    seconds of the pilots that lost (``record``: :func:`pilot_record`; the winner's own
    pilot is counted in its checkpoint)."""
    if candidate.max_wall_s is None:
        return candidate
    return dataclasses.replace(candidate, max_wall_s=max(0.0, candidate.max_wall_s - losing_pilots_seconds(record)))


def chosen_cells(pilots: dict[int, TrainingState]) -> int:
    """Cells per half-turn of the pilots' winner, walking them coarsest first: a finer
    pilot wins where its :func:`pilot_score` up to the :func:`compared_steps` is below
    :data:`FINER_WIN_RATIO` times the winner's so far (a tie goes to the fewer cells)."""
    until, moving = compared_steps(pilots), compared_where_moving(pilots)
    chosen = min(pilots)
    for cells in sorted(pilots)[1:]:
        if pilot_score(pilots[cells], until, moving) < FINER_WIN_RATIO * pilot_score(pilots[chosen], until, moving):
            chosen = cells
    return chosen


def pilot_record(pilots: dict[int, TrainingState], chosen: int, epochs: float) -> dict[str, Any]:
    """What the final model keeps of the choice: each candidate's priors, its pilot's
    steps, training seconds, best held-out residual and :func:`pilot_score` up to the
    steps compared, the pilots' length, those steps, whether they were compared where the
    scan moves (then also each pilot's best residual and score there) and the cells chosen."""
    until, moving = compared_steps(pilots), compared_where_moving(pilots)

    def residuals(pilot: TrainingState, where_moving: bool) -> dict[str, float]:
        suffix = "_moving" if where_moving else ""
        return {f"best_heldout{suffix}": best_heldout(pilot, until, where_moving),
                f"score{suffix}": pilot_score(pilot, until, where_moving)}

    return {
        "pilot_epochs": epochs, "compared_steps": until, "compared_where_moving": moving, "chosen": chosen,
        "tail_evaluations": PILOT_TAIL_EVALUATIONS,
        "candidates": [{"time_cells_per_half_turn": cells, "tv_weight": pilots[cells].prior["tv_weight"],
                        "tv_time_weight": pilots[cells].prior["tv_time_weight"], "steps": pilots[cells].step,
                        "train_seconds": pilots[cells].train_seconds, **residuals(pilots[cells], False),
                        **(residuals(pilots[cells], True) if moving else {})}
                       for cells in pilots],
    }


def start_from_pilot(checkpoint_path: Path, pilot: TrainingState, cells: int, other_settings: str) -> None:
    """Make the winning pilot (of ``cells`` cells) the run's checkpoint, unless the run's
    checkpoint is already of the winner's run (same identity, keys added since at the
    values it was trained with, and the same priors: it resumes there). One
    made with other settings is set aside first when ``other_settings`` is ``restart``
    (:func:`dinr.train.loop.set_aside`), and otherwise left to
    :func:`dinr.train.loop.resume`, which refuses or reuses it."""
    if checkpoint_path.exists():
        saved = load_checkpoint(checkpoint_path)
        saved_hash = saved.identity_hash(adaptive=True)  # pilots need steps auto + held-out views
        same_run = saved_hash == pilot.identity_hash(adaptive=True) and not differing_prior(saved.prior, pilot.prior)
        if same_run or other_settings != "restart":
            return
        log.warning("%s was made with other settings; kept as %s, the run goes on from its %d-cell pilot",
                    checkpoint_path, set_aside(checkpoint_path, saved_hash), cells)
    with atomic_path(checkpoint_path) as tmp:
        shutil.copyfile(pilot_path(checkpoint_path, cells), tmp)


def pilot_epochs(settings: TrainSettings, epoch_rays: int) -> float:
    """Each pilot's length in epochs of ``epoch_rays`` rays: ``time_cells_pilot_epochs``,
    or ``time_cells_pilot_rays`` when that comes first, and never past ``max_epochs``."""
    return min(settings.time_cells_pilot_epochs, settings.time_cells_pilot_rays / epoch_rays, settings.max_epochs)


def train(settings: TrainSettings, checkpoint_path: Path, comm: Communicator, trainer: Trainer,
          has_heldout: bool, epoch_rays: int, other_settings: str = "refuse", from_fbp: bool = False) -> TrainingState:
    """Train with ``settings`` by ``trainer``, first choosing the time cells by pilots when
    ``time_cells_per_half_turn`` is ``auto`` (see the module note); ``has_heldout``: the
    scan has held-out views; ``epoch_rays``: the rays of an epoch (all shards together,
    :func:`dinr.train.setup.epoch_rays`); ``from_fbp``: ``train.initial`` resolves to
    ``fbp`` (:func:`dinr.train.setup.starting_point`), and ``auto`` is then one cell
    without pilots; ``other_settings``: what ``trainer`` does with a checkpoint
    of other settings (:func:`start_from_pilot`). The returned state's settings hold the
    cells trained with, and its ``pilots`` the choice (:func:`pilot_record`)."""
    if settings.time_cells_per_half_turn != "auto":
        return trainer(settings, checkpoint_path, True)
    one_cell = dataclasses.replace(settings, time_cells_per_half_turn=1)
    if settings.time_resolution != "auto" or settings.steps != "auto" or not has_heldout:
        if settings.time_resolution == "auto" and comm.rank == 0:
            log.warning("time_cells_per_half_turn auto is chosen by the held-out views under steps auto; with %s "
                        "it is 1", "no held-out views (prepare.heldout_every 0)" if not has_heldout
                        else f"steps {settings.steps}")
        return trainer(one_cell, checkpoint_path, True)
    if from_fbp:
        if comm.rank == 0:
            log.info("time_cells_per_half_turn auto: 1, not piloted: the run starts from FBP (train.initial), where "
                     "an epoch is long and two pilots cost about what the run needs")
        return trainer(one_cell, checkpoint_path, True)
    epochs = pilot_epochs(settings, epoch_rays)

    def pilot(cells: int, candidate: TrainSettings) -> TrainingState:
        if comm.rank == 0:
            log.info("time_cells_per_half_turn auto: pilot of %d cell(s) per half-turn for %g epochs (%s)", cells,
                     epochs, pilot_path(checkpoint_path, cells))
        return trainer(pilot_settings(candidate, epochs), pilot_path(checkpoint_path, cells), False)

    candidates = {1: one_cell}
    pilots = {1: pilot(1, one_cell)}
    if pilots[1].field_spec["time_resolution"] > 0:  # a static field has no time cells to choose
        for coarser, finer in zip(CANDIDATE_CELLS, CANDIDATE_CELLS[1:]):
            if chosen_cells(pilots) != coarser:  # the last one piloted lost: no finer one is tried
                break
            candidates[finer] = finer_candidate(settings, pilots[coarser], finer)
            pilots[finer] = pilot(finer, candidates[finer])
    cells = chosen_cells(pilots)
    record = pilot_record(pilots, cells, epochs)
    if comm.rank == 0:
        where = "score_moving" if record["compared_where_moving"] else "score"
        log.info("time_cells_per_half_turn auto: held-out residual%s of %g-epoch pilots, geometric mean of the last "
                 "%d evaluations up to step %d: %s; %d cell(s) per half-turn go on",
                 " where the scan moves" if record["compared_where_moving"] else "", epochs,
                 PILOT_TAIL_EVALUATIONS, record["compared_steps"],
                 ", ".join(f"{c['time_cells_per_half_turn']} cell(s) {c[where]:.6g}" for c in record["candidates"]),
                 cells)
        start_from_pilot(checkpoint_path, pilots[cells], cells, other_settings)
    comm.barrier()
    final = trainer(winner_settings(candidates[cells], record), checkpoint_path, True)
    final.pilots = record
    return final
