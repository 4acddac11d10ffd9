"""Self-supervised pretraining (pretrain.steps): it learns, reads no label, and starts every net of a run."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from tiny import DATES, SMALL_NET, quick_config
from tropicrop.config import ExperimentConfig, from_dict
from tropicrop.errors import ConfigError
from tropicrop.models import build
from tropicrop.scene import Scene
from tropicrop.training import prepare_data, train
from tropicrop.training.pretrain import hide_blocks, load_pretrained, pretrain

MakeScene = Callable[..., Path]


def season_scene(make_scene: MakeScene) -> Path:
    """A 32 x 32 scene of 8 x 8 fields, each following one of two backscatter curves through the dates (what
    a network can learn to fill in), with speckle."""
    rng = np.random.default_rng(0)
    kind = np.kron(rng.integers(0, 2, size=(4, 4)), np.ones((8, 8), dtype=int))
    curves = np.array([[-18, -14, -10, -12], [-10, -12, -16, -18]], dtype=np.float32)
    images = np.stack([np.stack([curves[kind, t], curves[kind, t] - 6]) for t in range(len(DATES))])
    images += rng.normal(0, 0.5, size=images.shape).astype(np.float32)
    labels = {d: (kind + 1).astype(np.uint8) for d in DATES[2:]}
    split = np.ones((32, 32), dtype=np.uint8)
    split[:, 24:] = 2
    return make_scene(images=images, labels=labels, split=split)


def test_hidden_blocks_are_whole_blocks_of_the_last_date_only() -> None:
    images = torch.ones(2, 3, 2, 8, 8)
    shown, hidden = hide_blocks(images, 0.5, 4, torch.Generator().manual_seed(0))
    assert hidden.any() and not hidden.all()
    assert torch.equal(shown[:, :-1], images[:, :-1])  # earlier dates untouched
    assert torch.equal(shown[:, -1, 0] == 0, hidden)  # the last date zeroed exactly where hidden
    blocks = hidden.reshape(2, 2, 4, 2, 4)
    assert torch.equal(blocks.all(dim=(2, 4)), blocks.any(dim=(2, 4)))  # in whole 4 x 4 blocks


@pytest.mark.slow
def test_pretraining_learns_to_fill_the_hidden_blocks_without_reading_a_label(
        make_scene: MakeScene, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = quick_config(season_scene(make_scene), **{"data.patch_size": 16, "pretrain.steps": 300, "pretrain.lr": 0.005,
                                                    "data.sequence_length": 4, "optim.batch_size": 8})
    data = prepare_data(cfg)  # the run's normalisation; pretraining itself must read no label

    def refuse(self: Scene, *args: object, **kwargs: object) -> np.ndarray:
        raise AssertionError("pretraining read a label or the split")

    monkeypatch.setattr(Scene, "read_labels", refuse)
    monkeypatch.setattr(Scene, "read_split", refuse)
    state, losses = pretrain(cfg, data.normalizer, data.num_bands)
    assert len(losses) == 300
    assert np.mean(losses[-10:]) < 0.5 * np.mean(losses[:10])  # it learns the seasons, not only the mean
    again, _ = pretrain(cfg, data.normalizer, data.num_bands)
    assert all(torch.equal(state[k], again[k]) for k in state)  # from the seed


def test_pretrained_weights_start_a_classifier_except_its_class_layer() -> None:
    source = build("unet_convlstm", 2, num_classes=2, **SMALL_NET)
    target = build("unet_convlstm", 2, num_classes=4, **SMALL_NET)
    left = load_pretrained(target, source.state_dict())
    assert left and all(target.state_dict()[k].shape != source.state_dict()[k].shape for k in left)
    assert len(left) <= 2  # the last 1x1 convolution's weight and bias
    same = [k for k in source.state_dict() if k not in left]
    assert all(torch.equal(target.state_dict()[k], source.state_dict()[k]) for k in same)


def test_a_run_pretrains_once_and_every_net_starts_from_it(make_scene: MakeScene, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    import tropicrop.training.network as network

    cfg = quick_config(season_scene(make_scene), **{"data.patch_size": 16, "pretrain.steps": 4, "mode": "per-month",
                                                    "data.sequence_length": 4, "trainer.max_epochs": 1})
    starts: dict[str, dict[str, torch.Tensor] | None] = {}
    real = network.train_net

    def spy(cfg, data, name, targets, net_dir, init=None):  # type: ignore[no-untyped-def]
        starts[name] = init
        return real(cfg, data, name, targets, net_dir, init)

    monkeypatch.setattr(network, "train_net", spy)
    result = train(cfg, tmp_path / "run")
    saved = torch.load(tmp_path / "run" / "pretrained.pt", weights_only=True)["state_dict"]
    record = json.loads((tmp_path / "run" / "pretrain.json").read_text())
    assert record["steps"] == 4 and record["seconds"] > 0  # and it counts in the run's training time:
    assert result.pretrain_seconds == record["seconds"]
    assert result.train_seconds == pytest.approx(record["seconds"] + sum(n.train_seconds for n in result.nets.values()))
    assert len(starts) == 2 and all(s is not None for s in starts.values())
    assert all(torch.equal(s[k], saved[k]) for s in starts.values() if s is not None for k in saved)
    assert (tmp_path / "run" / "pretrain_loss.csv").read_text().count("\n") == 5  # header and 4 steps


def test_an_experiment_pretrains_on_both_years_and_a_booster_never() -> None:
    exp = from_dict(ExperimentConfig, {"scenes": {"a": "A", "b": "B"}, "approaches": [
        {"name": "Baseline 1, pretrained", "train_on": "b", "use": "train", "set": ["pretrain.steps=10"]}]})
    assert exp.train_config(exp.approaches[0]).pretrain.scenes == ["A", "B"]
    with pytest.raises(ConfigError, match="pretrain.steps.*networks"):
        quick_config(Path("scene"), **{"model.name": "lightgbm", "pretrain.steps": 5})


def test_a_damaged_pretrained_file_is_named_in_one_line(make_scene: MakeScene, tmp_path: Path) -> None:
    from tropicrop.errors import RunError
    from tropicrop.training.pretrain import pretrained_weights

    cfg = quick_config(season_scene(make_scene), **{"pretrain.steps": 4})
    (tmp_path / "pretrained.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(RunError, match="pretrained.pt"):
        pretrained_weights(cfg, prepare_data(cfg).normalizer, 2, tmp_path)
