"""Prediction with a sequence model (vunet_convlstm_seq): every target month of a tile from one pass."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest
import torch

from tiny import SMALL_NET, quick_config
from tropicrop.inference import Net, Plan, kinds, predict_run, predictor_for, sequence_probabilities
from tropicrop.models import build
from tropicrop.training import train
from tropicrop.windows.dates import target_window

DATES = [dt.date(2019, m, 10) for m in range(1, 13)] + [dt.date(2020, m, 10) for m in range(1, 7)]


def window_probabilities(model: torch.nn.Module, frames: torch.Tensor, first: int, last: int) -> torch.Tensor:
    """Softmax of ``model`` over the frames ``first .. last`` (inclusive) of ``DATES``, all valid."""
    doy = torch.tensor([[d.timetuple().tm_yday for d in DATES[first : last + 1]]])
    valid = torch.ones_like(doy, dtype=torch.bool)
    return torch.softmax(model(frames[first : last + 1][None], doy, valid), dim=1)[0]


def test_one_pass_gives_every_target_the_states_of_all_dates_before_it() -> None:
    torch.manual_seed(0)
    model = build("vunet_convlstm_seq", 2, num_classes=4, **SMALL_NET).eval()
    frames = torch.randn(len(DATES), 2, 24, 24)
    net = Net("all-months", None, predictor_for(model))
    targets = [2, 11, 15, 17]
    plans = [Plan(DATES[i], k, net, target_window(DATES, DATES[i], 12)) for k, i in enumerate(targets)]
    with torch.inference_mode():
        got = {plan.date: probs for plan, probs in sequence_probabilities(model, frames, {i: i for i in range(18)}, plans)}
        assert sorted(got) == [DATES[i] for i in targets]
        for i in targets:  # the pass starts at the first date any window needs (date 0); for targets 2 and 11
            # that is their own window's forward pass, targets 15 and 17 see more than their 12-date window
            torch.testing.assert_close(got[DATES[i]], window_probabilities(model, frames, 0, i), atol=1e-5, rtol=1e-4)


def test_dates_that_are_not_consecutive_are_passed_separately() -> None:
    torch.manual_seed(0)
    model = build("vunet_convlstm_seq", 2, num_classes=4, **SMALL_NET).eval()
    net = Net("all-months", None, predictor_for(model))
    own = [0, 1, 2, 15, 16, 17]  # two runs of consecutive scene dates (two targets far apart, windows of 3)
    frames = torch.randn(len(own), 2, 16, 16)
    all_frames = torch.zeros(len(DATES), 2, 16, 16)
    all_frames[own] = frames
    plans = [Plan(DATES[i], k, net, target_window(DATES, DATES[i], 3)) for k, i in enumerate((2, 17))]
    with torch.inference_mode():
        got = dict(sequence_probabilities(model, frames, {i: k for k, i in enumerate(own)}, plans))
        torch.testing.assert_close(got[plans[0]], window_probabilities(model, all_frames, 0, 2), atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(got[plans[1]], window_probabilities(model, all_frames, 15, 17), atol=1e-5, rtol=1e-4)


@pytest.mark.slow
def test_predict_run_maps_every_month_of_a_sequence_run_from_one_pass(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from tropicrop.synthetic import write_pair

    write_pair(tmp_path / "pair", preset="tiny", size=48, seed=0)
    scene = tmp_path / "pair" / "lem1920"
    cfg = quick_config(scene, **{"model.name": "vunet_convlstm_seq", "trainer.max_epochs": 1,
                                 "trainer.steps_per_epoch": 2})
    train(cfg, tmp_path / "run")

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a sequence model must not be run window by window")

    monkeypatch.setattr(kinds, "net_probabilities", refuse)
    maps = predict_run(tmp_path / "run", scene, tmp_path / "out", tile=32, overlap=8, progress=False)
    assert maps and all(p.is_file() for p in maps)


def test_a_month_without_acquisition_is_a_padded_step_of_the_one_pass() -> None:
    torch.manual_seed(0)
    model = build("vunet_convlstm_seq", 2, num_classes=4, **SMALL_NET).eval()
    net = Net("all-months", None, predictor_for(model))
    missing = np.zeros(len(DATES), dtype=bool)
    missing[13] = True
    own = [i for i in range(len(DATES)) if not missing[i]]
    all_frames = torch.randn(len(DATES), 2, 16, 16)
    plans = [Plan(DATES[i], k, net, target_window(DATES, DATES[i], 12, missing)) for k, i in enumerate((11, 17))]
    with torch.inference_mode():
        got = dict(sequence_probabilities(model, all_frames[own], {i: k for k, i in enumerate(own)}, plans))
        doy = torch.tensor([[d.timetuple().tm_yday for d in DATES]])
        valid = torch.from_numpy(~missing)[None]
        expected = torch.softmax(model.forward_sequence(all_frames[None], doy, valid)[0], dim=1)
        # one pass from date 0: month 13 carries the state over (as in training), it does not restart the pass
        torch.testing.assert_close(got[plans[0]], expected[11], atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(got[plans[1]], expected[17], atol=1e-5, rtol=1e-4)
