"""train.time_cells_per_half_turn auto: pilots of one and two time cells per half-turn
(finer candidates while the finer keeps winning); the one that predicts the held-out
views best goes on, exactly as a run of it alone."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from conftest import TINY_TRAIN, geometry_settings, prepare_settings, train
from dinr import stages
from dinr.geometry.resolve import geometry_of
from dinr.io.canonical import read_sinogram, training_views
from dinr.settings import TrainSettings
from dinr.train.checkpoint import TrainingState, load_checkpoint, run_identity, save_checkpoint, settings_hash
from dinr.train.comm import Communicator
from dinr.train.setup import epoch_rays
from dinr.train.time_cells import (CANDIDATE_CELLS, FINER_SPATIAL_SHARE, PILOT_WALL_SHARE, STILL_PRIOR_GAIN,
                                   TIME_PRIOR_RATIO, best_heldout, chosen_cells, pilot_epochs, pilot_path,
                                   pilot_score, time_prior_profile)
from dinr.train import time_cells

#: steps auto on the tiny scan (converges in a few hundred steps), time cells chosen by
#: pilots of one epoch.
AUTO_CELLS = dataclasses.replace(TINY_TRAIN, steps="auto", max_epochs=400, lr=1e-2, lr_final=3e-3, patience=2,
                                 validate_every_epochs=0.5, checkpoint_every=10, log_every=50,
                                 time_cells_per_half_turn="auto", time_cells_pilot_epochs=1, tv_time_weight=0)


def _pilot(*residuals: float, moving: tuple[float, ...] = ()) -> TrainingState:
    """A pilot evaluated every 10 steps from step 10, stopped at its last evaluation;
    ``moving``: its residuals where the scan moves, when measured."""
    return SimpleNamespace(validation=[[10 * (i + 1), r, 0.01] for i, r in enumerate(residuals)],  # type: ignore[return-value]
                           validation_moving=[[10 * (i + 1), r] for i, r in enumerate(moving)],
                           step=10 * len(residuals))


def test_the_lower_score_wins_and_a_tie_keeps_one_cell() -> None:
    assert chosen_cells({1: _pilot(0.5, 0.30, 0.31), 2: _pilot(0.4, 0.27, 0.28)}) == 2
    assert chosen_cells({1: _pilot(0.5, 0.29), 2: _pilot(0.6, 0.30, 0.35)}) == 1  # at step 20, both evaluated
    assert chosen_cells({1: _pilot(0.3), 2: _pilot(0.3)}) == 1
    assert chosen_cells({1: _pilot(0.3)}) == 1
    assert chosen_cells({1: _pilot(0.3), 2: _pilot()}) == 1  # a pilot never evaluated ranks last
    assert chosen_cells({1: _pilot(), 2: _pilot()}) == 1


def test_a_pilot_is_scored_by_its_last_evaluations_not_its_luckiest() -> None:
    """The score is the geometric mean of the last PILOT_TAIL_EVALUATIONS evaluations: a
    single low evaluation (a lucky step) among higher ones does not win the choice."""
    tail = time_cells.PILOT_TAIL_EVALUATIONS
    steady = _pilot(*[0.9] * 5, *[0.30] * tail)
    lucky = _pilot(*[0.9] * 5, *[0.33] * (tail - 1), 0.25)
    assert best_heldout(lucky) < time_cells.FINER_WIN_RATIO * best_heldout(steady)  # the old rule: lucky wins
    assert chosen_cells({1: steady, 2: lucky}) == 1
    assert pilot_score(lucky) == pytest.approx((0.33 ** (tail - 1) * 0.25) ** (1 / tail))
    assert pilot_score(_pilot(0.4, 0.1)) == pytest.approx(0.2)  # fewer evaluations than the tail: all of them
    assert pilot_score(_pilot()) == float("inf")
    with pytest.raises(ValueError, match="tail 0"):  # not the default: a tail of 0 would score every evaluation
        pilot_score(_pilot(0.4, 0.1), tail=0)


def test_a_finer_pilot_must_beat_the_coarser_by_the_win_ratio() -> None:
    ratio = time_cells.FINER_WIN_RATIO
    assert 0.9 < ratio < 1.0  # about two standard deviations of the pilots' ratio over seeds
    assert chosen_cells({1: _pilot(0.30), 2: _pilot(0.30 * ratio * 1.01)}) == 1  # better, within the scatter
    assert chosen_cells({1: _pilot(0.30), 2: _pilot(0.30 * ratio * 0.99)}) == 2


def test_pilots_stopped_at_different_steps_are_compared_at_the_steps_both_reached() -> None:
    """Under max_wall_s a two-cell pilot (dearer steps) may stop sooner: the one-cell
    pilot's later evaluations do not count."""
    one, two = _pilot(0.5, 0.40, 0.35, 0.30), _pilot(0.45, 0.36)
    assert chosen_cells({1: one, 2: two}) == 2  # at step 20: sqrt(0.45 * 0.36) against sqrt(0.5 * 0.40)
    assert pilot_score(one, 20) == pytest.approx(np.sqrt(0.5 * 0.40))
    assert best_heldout(one, 20) == 0.40 and best_heldout(one) == 0.30


def test_where_the_scan_moves_is_measured_the_pilots_are_compared_there() -> None:
    """The jerk's pilots: one cell predicts all held-out views better (its still stretches
    converge sooner), two cells those where it moves: two win."""
    one, two = _pilot(0.0230, 0.0209, moving=(0.0250, 0.0236)), _pilot(0.0225, 0.0216, moving=(0.0228, 0.0221))
    assert chosen_cells({1: one, 2: two}) == 2
    assert best_heldout(one) == 0.0209 and best_heldout(one, moving=True) == 0.0236
    assert pilot_score(one, moving=True) == pytest.approx(np.sqrt(0.0250 * 0.0236))
    assert chosen_cells({1: _pilot(0.0230, 0.0209), 2: _pilot(0.0225, 0.0216, moving=(0.0228, 0.0221))}) == 1


def _fake_trainer(best: dict[int, float], trained: list[int]) -> time_cells.Trainer:
    """A trainer whose pilot of ``cells`` cells reaches the held-out residual ``best[cells]``
    (spatial TV weight 1 at one cell, the candidate's otherwise), writes its checkpoint
    file and records the cells it trained in ``trained``."""
    def trainer(settings: TrainSettings, path: Path, is_run: bool) -> TrainingState:
        cells = settings.time_cells_per_half_turn
        trained.append(cells)
        path.write_bytes(b"pilot")
        weight = 1.0 if settings.tv_weight == "auto" else settings.tv_weight
        return SimpleNamespace(validation=[[10, best[cells], 0.01]], validation_moving=[], step=10,  # type: ignore[return-value]
                               train_seconds=1.0, field_spec={"time_resolution": 3 * cells}, settings={},
                               prior={"tv_weight": weight, "tv_time_weight": settings.tv_time_weight})
    return trainer


@pytest.mark.parametrize("candidates, best, piloted, chosen", [
    ((1, 2), {1: 0.30, 2: 0.25}, [1, 2], 2),  # the default candidates
    ((1, 2, 4), {1: 0.30, 2: 0.31}, [1, 2], 1),  # two lose: four are not tried
    ((1, 2, 4), {1: 0.30, 2: 0.25, 4: 0.26}, [1, 2, 4], 2),  # two win, four are tried and lose
    ((1, 2, 4), {1: 0.30, 2: 0.25, 4: 0.20}, [1, 2, 4], 4),
])
def test_a_finer_candidate_is_piloted_while_the_last_one_wins(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, candidates: tuple[int, ...], best: dict[int, float],
        piloted: list[int], chosen: int) -> None:
    monkeypatch.setattr(time_cells, "CANDIDATE_CELLS", candidates)
    trained: list[int] = []
    settings = dataclasses.replace(AUTO_CELLS, tv_weight="auto")
    final = time_cells.train(settings, tmp_path / "ck.pt", Communicator(use_mpi=False),
                             _fake_trainer(best, trained), has_heldout=True, epoch_rays=10**6)
    assert trained == [*piloted, chosen]  # the pilots, then the winner's run
    assert final.pilots["chosen"] == chosen
    weights = {c["time_cells_per_half_turn"]: (c["tv_weight"], c["tv_time_weight"])
               for c in final.pilots["candidates"]}
    assert weights[2] == (FINER_SPATIAL_SHARE, TIME_PRIOR_RATIO * FINER_SPATIAL_SHARE)
    if 4 in weights:  # each finer candidate's prior from the next coarser one's
        assert weights[4] == (FINER_SPATIAL_SHARE**2, TIME_PRIOR_RATIO * FINER_SPATIAL_SHARE**2)
    assert (tmp_path / "ck.pt").read_bytes() == b"pilot"  # the winner's pilot became the run's checkpoint


def test_the_two_cell_candidate_prior_grows_where_the_scan_rests_under_auto() -> None:
    still = np.array([1.0, 0.5, 0.0])
    grown = 1.0 + STILL_PRIOR_GAIN * still  # [1 + gain, 1 + gain / 2, 1]
    auto = dataclasses.replace(AUTO_CELLS, tv_time_weight="auto")
    one_cell = dataclasses.replace(auto, time_cells_per_half_turn=1)
    two_cell = dataclasses.replace(auto, time_cells_per_half_turn=2, tv_weight=0.1, tv_time_weight=0.2)
    assert time_prior_profile(auto, one_cell, still) is still
    assert np.array_equal(time_prior_profile(auto, two_cell, still), grown)
    assert time_prior_profile(auto, two_cell, np.zeros(3)) is None  # moving throughout: alike everywhere
    assert time_prior_profile(auto, one_cell, None) is None
    assert time_prior_profile(AUTO_CELLS, two_cell, still) is None  # tv_time_weight 0: not read, not used
    four_cell = dataclasses.replace(two_cell, time_cells_per_half_turn=4)
    assert np.array_equal(time_prior_profile(auto, four_cell, still), grown)
    assert time_prior_profile(dataclasses.replace(auto, time_cells_per_half_turn=2), two_cell, still) is None


def test_a_one_cell_run_reads_the_half_turn_stillness_only_where_it_reads_a_rest() -> None:
    """``ONE_CELL_HALF_TURN_REST``: where views half a turn apart read at least the
    threshold, a one-cell run's prior takes the larger of the two tables; below it the
    turn's table stands, and without one the prior stays alike at every instant."""
    assert time_cells.ONE_CELL_HALF_TURN_REST == 0.5
    auto = dataclasses.replace(AUTO_CELLS, tv_time_weight="auto")
    one_cell = dataclasses.replace(auto, time_cells_per_half_turn=1)
    turn, half = np.array([0.0, 0.2, 0.9, 0.0]), np.array([0.3, 0.8, 0.6, 0.45])
    assert np.array_equal(time_prior_profile(auto, one_cell, turn, half), [0.0, 0.8, 0.9, 0.0])
    assert time_prior_profile(auto, one_cell, turn, np.full(4, 0.45)) is turn  # a moving scan's level
    assert time_prior_profile(auto, one_cell, None, half) is None
    two_cell = dataclasses.replace(auto, time_cells_per_half_turn=2, tv_weight=0.1, tv_time_weight=0.2)
    assert np.array_equal(time_prior_profile(auto, two_cell, turn, half), 1.0 + STILL_PRIOR_GAIN * half)


def test_a_finer_candidate_reads_the_stillness_of_views_half_a_turn_apart_where_measured() -> None:
    """Finer cells take their prior's profile from the half-turn table, which sees rests
    too short for views a turn apart; the one-cell candidate keeps the turn's table where
    the half-turn's reads no rest (below ``ONE_CELL_HALF_TURN_REST``), and without a
    half-turn table (no row in the source's plane) the finer ones keep it too."""
    turn, half_turn = np.array([0.0, 0.0, 0.5]), np.array([0.0, 0.4, 0.45])
    auto = dataclasses.replace(AUTO_CELLS, tv_time_weight="auto")
    one_cell = dataclasses.replace(auto, time_cells_per_half_turn=1)
    two_cell = dataclasses.replace(auto, time_cells_per_half_turn=2, tv_weight=0.1, tv_time_weight=0.2)
    assert np.array_equal(time_prior_profile(auto, two_cell, turn, half_turn), 1.0 + STILL_PRIOR_GAIN * half_turn)
    assert time_prior_profile(auto, one_cell, turn, half_turn) is turn
    assert np.array_equal(time_prior_profile(auto, two_cell, turn, None), 1.0 + STILL_PRIOR_GAIN * turn)
    assert time_prior_profile(auto, two_cell, None, half_turn) is not None  # less than a turn of views
    assert time_prior_profile(auto, two_cell, turn, np.zeros(3)) is None  # moving at the half-turn's scale


def test_the_pilots_choose_and_the_winner_goes_on_from_its_pilot_as_if_trained_alone(
        tiny_scan: dict[str, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    comm = Communicator(use_mpi=False)
    checkpoint = tmp_path / "ck.pt"
    train(dataclasses.replace(TINY_TRAIN, steps=5), tiny_scan["sinogram"], checkpoint, comm)  # other settings
    with caplog.at_level(logging.INFO):
        final = train(AUTO_CELLS, tiny_scan["sinogram"], checkpoint, comm, other_settings="restart")
    assert "the run goes on from its" in caplog.text and "resuming from" in caplog.text
    piloted = list(CANDIDATE_CELLS)
    assert len(list(tmp_path.glob("ck.*.pt"))) == len(piloted) + 1  # the pilots, and the old run set aside
    pilots = {cells: load_checkpoint(pilot_path(checkpoint, cells)) for cells in piloted}
    chosen = chosen_cells(pilots)
    one_cell_weight = pilots[1].prior["tv_weight"]
    assert pilots[1].settings["time_cells_per_half_turn"] == 1 and pilots[1].prior["tv_time_weight"] == 0
    two_cell_weight = FINER_SPATIAL_SHARE * one_cell_weight
    assert pilots[2].settings["time_cells_per_half_turn"] == 2 and pilots[2].prior["tv_weight"] == two_cell_weight
    assert pilots[2].prior["tv_time_weight"] == TIME_PRIOR_RATIO * two_cell_weight
    assert all(p.stop_reason.startswith("max_epochs: 1 epochs") for p in pilots.values())
    assert final.settings["time_cells_per_half_turn"] == chosen and final.stop_reason.startswith("converged")
    model = load_checkpoint(tmp_path / "ck-model.pt")
    assert model.pilots["chosen"] == chosen and model.settings == final.settings
    assert model.pilots["compared_steps"] == min(p.step for p in pilots.values())
    assert [c["best_heldout"] for c in model.pilots["candidates"]] == [best_heldout(p) for p in pilots.values()]
    assert [c["score"] for c in model.pilots["candidates"]] == [pilot_score(p) for p in pilots.values()]

    winner = dataclasses.replace(AUTO_CELLS, **{key: final.settings[key] for key in
                                                ("time_cells_per_half_turn", "tv_weight", "tv_time_weight")})
    alone = train(winner, tiny_scan["sinogram"], tmp_path / "alone.pt", comm)
    assert final.step == alone.step and final.validation == alone.validation
    for name, tensor in alone.model.items():
        assert torch.equal(tensor, final.model[name]), name

    again = train(AUTO_CELLS, tiny_scan["sinogram"], checkpoint, comm)  # a rerun trains nothing more
    assert again.step == final.step and again.pilots == model.pilots
    assert all(load_checkpoint(pilot_path(checkpoint, c)).step == pilots[c].step for c in piloted)

    # A run checkpointed before a key existed (stored without it, hashed without it) is the
    # same run: a rerun that restarts on other settings resumes it and sets nothing aside.
    old = load_checkpoint(checkpoint)
    old.settings = {k: v for k, v in old.settings.items() if k != "initial"}
    old.settings_hash = settings_hash(run_identity(old.settings, old.ray_shards, old.sinogram_id, True))
    save_checkpoint(checkpoint, old)
    resumed = train(AUTO_CELLS, tiny_scan["sinogram"], checkpoint, comm, other_settings="restart")
    assert resumed.step == final.step and len(list(tmp_path.glob("ck.*.pt"))) == len(piloted) + 1

    # A run checkpoint of the winner's settings whose priors the code derived otherwise (a
    # constant changed since) is not the winner's run: on restart it is set aside and the
    # run goes on from the winner's pilot.
    other_prior = load_checkpoint(checkpoint)
    other_prior.prior = {**other_prior.prior, "tv_weight": 2.0 * other_prior.prior["tv_weight"]}
    save_checkpoint(checkpoint, other_prior)
    time_cells.start_from_pilot(checkpoint, pilots[chosen], chosen, "restart")
    assert load_checkpoint(checkpoint).step == pilots[chosen].step
    assert len(list(tmp_path.glob("ck.*.pt"))) == len(piloted) + 2


def test_without_heldout_views_auto_is_one_cell_and_nothing_is_piloted(
        tiny_scan: dict[str, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    sinogram = tmp_path / "no_heldout.h5"
    stages.prepare(prepare_settings(heldout_every=0), geometry_settings(), tiny_scan["raw"], sinogram)
    with caplog.at_level(logging.WARNING):
        state = train(dataclasses.replace(AUTO_CELLS, max_epochs=0.5), sinogram, tmp_path / "ck.pt",
                      Communicator(use_mpi=False))
    assert state.settings["time_cells_per_half_turn"] == 1 and not state.pilots
    assert not any(tmp_path.glob("ck.cells*.pt"))
    assert "no held-out views" in caplog.text


def test_a_run_that_starts_from_fbp_takes_one_cell_without_pilots(
        tiny_scan: dict[str, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    settings = dataclasses.replace(AUTO_CELLS, initial="fbp", max_epochs=0.5, hash_levels=6, width=32)
    with caplog.at_level(logging.INFO, logger="dinr.train.time_cells"):
        state = train(settings, tiny_scan["sinogram"], tmp_path / "ck.pt", Communicator(use_mpi=False))
    assert state.settings["time_cells_per_half_turn"] == 1 and not state.pilots
    assert not any(tmp_path.glob("ck.cells*.pt"))
    assert "not piloted: the run starts from FBP" in caplog.text


def test_max_wall_s_bounds_the_pilots_and_the_run_together(tiny_scan: dict[str, Path], tmp_path: Path) -> None:
    """Each pilot stops at its share of max_wall_s; the winner has what the loser left."""
    limit = 4.0
    settings = dataclasses.replace(AUTO_CELLS, time_cells_pilot_epochs=10**4, max_wall_s=limit, log_every=10)
    checkpoint = tmp_path / "ck.pt"
    final = train(settings, tiny_scan["sinogram"], checkpoint, Communicator(use_mpi=False))
    pilots = {cells: load_checkpoint(pilot_path(checkpoint, cells)) for cells in CANDIDATE_CELLS}
    for pilot in pilots.values():
        assert pilot.stop_reason.startswith("max_wall_s") and pilot.settings["max_wall_s"] == PILOT_WALL_SHARE * limit
        assert pilot.train_seconds < 2 * PILOT_WALL_SHARE * limit  # the share, not the whole limit
    losers = sum(p.train_seconds for c, p in pilots.items() if c != final.settings["time_cells_per_half_turn"])
    assert final.settings["max_wall_s"] == pytest.approx(limit - losers)
    assert final.seconds_trained() == pytest.approx(final.train_seconds + losers)  # the run's wall, pilots included


def test_a_pilot_lasts_its_epochs_or_its_rays_whichever_come_first() -> None:
    settings = dataclasses.replace(AUTO_CELLS, time_cells_pilot_epochs=2, time_cells_pilot_rays=700_416, max_epochs=30)
    assert pilot_epochs(settings, 350_208) == 2  # a 64-pixel scan of 8 rows: two epochs are the rays
    assert pilot_epochs(settings, 2 * 1_400_832) == 0.25  # four times the rows and twice the width
    assert pilot_epochs(settings, 100_000) == 2  # a small scan: the epochs
    assert pilot_epochs(dataclasses.replace(settings, max_epochs=1.5), 100_000) == 1.5


def test_the_pilots_stop_at_their_rays_on_a_scan(tiny_scan: dict[str, Path], tmp_path: Path) -> None:
    sinogram = tiny_scan["sinogram"]
    rays = epoch_rays(geometry_of(read_sinogram(sinogram)), len(training_views(sinogram)))
    settings = dataclasses.replace(AUTO_CELLS, max_epochs=1, time_cells_pilot_epochs=1,
                                   time_cells_pilot_rays=rays // 2)
    checkpoint = tmp_path / "ck.pt"
    final = train(settings, sinogram, checkpoint, Communicator(use_mpi=False))
    for cells in CANDIDATE_CELLS:
        pilot = load_checkpoint(pilot_path(checkpoint, cells))
        assert pilot.stop_reason.startswith(f"max_epochs: {(rays // 2) / rays:g} epochs"), pilot.stop_reason
    assert final.pilots["pilot_epochs"] == (rays // 2) / rays
    assert final.stop_reason.startswith("max_epochs: 1 epochs")
