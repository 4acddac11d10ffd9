"""Train a tiny network with DDP on 2 CPU processes (gloo) and write each rank's final weight digest and the
digests of the training batches it saw (``OUT/rankN.json``).

Run by tests/test_ddp.py as ``python tests/scripts/ddp_train.py SCENE OUT``; Lightning relaunches this script
for rank 1. Uses the project's own training pieces (prepare_data, CropModule, TargetDataModule, trainer).
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import lightning as L


class BatchRecord(L.Callback):
    """The digest of every training batch's images this rank ran, in order."""

    def __init__(self) -> None:
        self.digests: list[str] = []

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int) -> None:
        self.digests.append(hashlib.sha256(batch["images"].cpu().numpy().tobytes()).hexdigest())


def main() -> None:
    from tropicrop.config import load_config
    from tropicrop.training import CropModule, TargetDataModule, TrainConfig, make_trainer, prepare_data

    scene, out = Path(sys.argv[1]), Path(sys.argv[2])
    options = "{encoder_channels: [4, 4, 8, 8], lstm_channels: 8, decoder_channels: [8, 4, 4], head_channels: 4}"
    cfg = load_config(TrainConfig, None, [
        f"data.scene={scene}", "data.patch_size=16", "data.stride=8", "data.val_limit=32", f"model.options={options}",
        "trainer.max_epochs=2", "trainer.steps_per_epoch=4", "trainer.devices=2", "trainer.strategy=ddp",
        "trainer.progress=false", "optim.batch_size=4",
    ])
    data = prepare_data(cfg)
    module = CropModule(model_name=cfg.model.name, model_options=cfg.model.options, in_channels=2,
                        class_names=list(data.classes.names), normalization=data.normalizer.to_dict())
    trainer = make_trainer(cfg, out / "net", has_val=len(data.val_origins) > 0)
    record = BatchRecord()
    trainer.callbacks.append(record)  # type: ignore[attr-defined]
    trainer.fit(module, datamodule=TargetDataModule(data, data.scene_targets, cfg))
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    (out / f"rank{trainer.global_rank}.json").write_text(json.dumps({
        "weights": digest.hexdigest(), "steps": trainer.global_step, "world": trainer.world_size,
        "batches": record.digests}))


if __name__ == "__main__":
    main()
