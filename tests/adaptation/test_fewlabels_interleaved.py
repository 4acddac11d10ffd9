"""Fine-tuning on year-B parcels where train and test parcels are interleaved (issue 32): it must train."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from tiny import SMALL_NET
from tropicrop.adaptation import adapt_run
from tropicrop.config import AdaptOptions, FewLabelOptions, TrainConfig, load_config
from tropicrop.synthetic import FieldOptions, write_pair
from tropicrop.training import train


def _weights(run: Path) -> dict[str, torch.Tensor]:
    ckpt = torch.load(next(run.glob("nets/*/checkpoints/best.ckpt")), map_location="cpu", weights_only=False)
    return ckpt["state_dict"]


def test_fine_tuning_trains_when_no_patch_is_clear_of_test_parcels(tmp_path: Path) -> None:
    pair = tmp_path / "pair"
    write_pair(pair, preset="tiny", size=64, seed=0, fields=FieldOptions(split="interleaved", parcel_scale=0.5))
    run = tmp_path / "run"
    cfg = load_config(TrainConfig, None, [
        f"data.scene={pair / 'lem1718'}", "data.use=all", "data.patch_size=16", "data.stride=8", "data.val_limit=16",
        f"model.options={json.dumps(SMALL_NET)}", "trainer.max_epochs=1", "trainer.steps_per_epoch=2",
        "trainer.progress=false", "optim.batch_size=4"])
    train(cfg, run)
    options = AdaptOptions(methods=[], parcels=1000, few_labels=FewLabelOptions(steps=2, batch_size=4, patch_size=32))
    record = adapt_run(run, pair / "lem1920", tmp_path / "tuned", options, progress=False)
    stats = next(iter(record["nets"].values()))["few_labels"]
    assert stats["patches"] > 0 and stats["test_area_context"] is True
    before, after = _weights(run), _weights(tmp_path / "tuned")
    assert any(not torch.equal(before[k], after[k]) for k in before if k.endswith("weight"))
