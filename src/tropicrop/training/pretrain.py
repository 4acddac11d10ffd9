"""Self-supervised pretraining: a network learns to reconstruct hidden blocks of the target date's image from
the dates before it and the rest of the image, on every image of the given scenes, with no label read.

Where labelled fields are few, the unlabelled pixels outnumber the labelled ones by far (issue 32). The
pretext is the network's own task with the labels replaced by the images: the same N-to-1 model, built with
one output channel per band instead of per class, sees the window ending at a random date with ``mask`` of
that date's ``block`` x ``block`` blocks set to the band mean (0 after normalisation), and is trained on the
mean squared error of its output there. To fill a block it must carry each pixel's backscatter through the
season (the ConvLSTM) and read its field from the neighbours (the U-Net): what a crop map needs. The
weights then start every net of the run; only the last 1x1 layer (bands -> classes) is not carried over.

Pretraining runs once per run (``RUN/pretrained.pt``, written atomically, reused on resume; ``pretrain.json``
and ``pretrain_loss.csv`` beside it), under Lightning like training, seeded by ``seed``; its time counts in the
run's training time.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from tropicrop.config import to_dict
from tropicrop.config.training import TrainConfig
from tropicrop.io.files import atomic_path, write_json
from tropicrop.models import build
from tropicrop.precision import resolve_precision
from tropicrop.runfiles import load_checkpoint, read_json
from tropicrop.scene import load_scene
from tropicrop.trainingdata import scene_paths
from tropicrop.windows.augment import augment
from tropicrop.windows.normalize import Normalizer
from tropicrop.windows.sampler import StepSampler
from tropicrop.windows.unlabelled import PatchSampler, adaptation_dates, target_images

PRETRAIN_RECORD = "pretrain.json"
"""``RUN/pretrain.json``: steps, seconds and final loss of the run's pretraining (its weights: ``pretrained.pt``)."""


class UnlabelledBatches(Dataset[dict[str, torch.Tensor]]):
    """Batch ``n``: random patches at a random date of one scene (drawn in proportion to its area), from
    ``(seed, n)`` only; every scene read through :func:`~tropicrop.windows.unlabelled.target_images` (images and
    dates, an empty label stack)."""

    def __init__(self, samplers: list[PatchSampler], batch_size: int, seed: int) -> None:
        self.samplers, self.batch_size, self.seed = samplers, batch_size, seed
        areas = np.array([s.data.images.shape[-1] * s.data.images.shape[-2] for s in samplers], dtype=np.float64)
        self.p = areas / areas.sum()

    def __len__(self) -> int:
        return 2**31 - 1

    def __getitem__(self, n: int) -> dict[str, torch.Tensor]:
        rng = np.random.default_rng([self.seed, n, 7])
        sampler = self.samplers[int(rng.choice(len(self.samplers), p=self.p))]
        return augment(sampler.batch(self.batch_size, rng), rng)


def hide_blocks(images: torch.Tensor, share: float, block: int, generator: torch.Generator) -> tuple[torch.Tensor,
                                                                                                     torch.Tensor]:
    """``images`` (B, T, C, P, P) with ``share`` of the last date's ``block`` blocks set to 0, and the hidden
    pixels (B, P, P) bool."""
    b, _, _, h, w = images.shape
    cells = torch.rand((b, -(-h // block), -(-w // block)), generator=generator) < share
    hidden = cells.repeat_interleave(block, 1).repeat_interleave(block, 2)[:, :h, :w]
    shown = images.clone()
    shown[:, -1] = shown[:, -1] * (~hidden)[:, None]
    return shown, hidden


class ReconstructionModule(L.LightningModule):
    """The network with one output per band, trained to reconstruct the hidden blocks of the target date."""

    def __init__(self, model_name: str, model_options: dict[str, Any], bands: int, share: float, block: int,
                 lr: float, seed: int) -> None:
        super().__init__()
        self.model = build(model_name, bands, num_classes=bands, **model_options)
        self.share, self.block, self.lr = share, block, lr
        self.generator = torch.Generator().manual_seed(seed)

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        shown, hidden = hide_blocks(batch["images"], self.share, self.block, self.generator)
        out = self.model(shown, batch["doy"], batch["valid"]).float()  # (B, C, P, P)
        truth = batch["images"][:, -1]
        weight = hidden[:, None].expand_as(truth).float()
        loss = ((out - truth) ** 2 * weight).sum() / weight.sum().clamp_min(1.0)
        self.log("pretrain/loss", loss, prog_bar=True, batch_size=truth.shape[0])
        return loss

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=self.lr)


def reconstruction_batches(cfg: TrainConfig, normalizer: Normalizer) -> UnlabelledBatches:
    """Unlabelled batches of ``cfg.pretrain.scenes`` (default: ``data.scene``'s), normalised as the run is."""
    paths = cfg.pretrain.scenes or scene_paths(cfg.data.scene)
    samplers = []
    for path in paths:
        scene = load_scene(path)
        tensors = target_images(scene, normalizer, cfg.data.sequence_length)
        samplers.append(PatchSampler(tensors, adaptation_dates(scene, cfg.data.sequence_length), cfg.data.patch_size))
    return UnlabelledBatches(samplers, cfg.optim.batch_size, cfg.seed)


def pretrain(cfg: TrainConfig, normalizer: Normalizer, bands: int) -> tuple[dict[str, torch.Tensor], list[float]]:
    """Pretrain ``cfg``'s network for ``cfg.pretrain.steps`` steps; its weights and the loss of every step."""
    p = cfg.pretrain
    L.seed_everything(cfg.seed, workers=True, verbose=False)
    module = ReconstructionModule(cfg.model.name, dict(cfg.model.options), bands, p.mask, p.block, p.lr, cfg.seed)
    losses: list[float] = []

    class Record(L.Callback):
        def on_train_batch_end(self, trainer: L.Trainer, *args: Any) -> None:
            losses.append(float(trainer.callback_metrics["pretrain/loss"]))

    loader = DataLoader(reconstruction_batches(cfg, normalizer), batch_size=None,
                        sampler=StepSampler(p.steps, lambda: 0, 0, 1), num_workers=cfg.trainer.num_workers)
    trainer = L.Trainer(accelerator=cfg.trainer.accelerator, devices=1,
                        precision=resolve_precision(cfg.trainer.precision, cfg.trainer.accelerator),  # type: ignore[arg-type]
                        max_epochs=1, limit_train_batches=p.steps, logger=False, enable_checkpointing=False,
                        callbacks=[Record()], enable_progress_bar=cfg.trainer.progress, enable_model_summary=False,
                        deterministic=cfg.trainer.deterministic)
    trainer.fit(module, train_dataloaders=loader)
    return {k: v.detach().cpu() for k, v in module.model.state_dict().items()}, losses


def pretrained_weights(cfg: TrainConfig, normalizer: Normalizer, bands: int, run_dir: Path) -> dict[str, torch.Tensor]:
    """The run's pretrained weights: ``RUN/pretrained.pt`` when a session wrote it, else pretrained now and
    written there (atomically), with the loss curve beside it."""
    path = Path(run_dir) / "pretrained.pt"
    if path.is_file():  # a damaged or foreign file: one line naming it
        state: dict[str, torch.Tensor] = load_checkpoint(path)["state_dict"]
        return state
    start = time.perf_counter()
    state, losses = pretrain(cfg, normalizer, bands)
    seconds = time.perf_counter() - start
    with atomic_path(path.with_name("pretrain_loss.csv")) as tmp:
        tmp.write_text("step,loss\n" + "".join(f"{i},{v:.6f}\n" for i, v in enumerate(losses)))
    write_json(path.with_name(PRETRAIN_RECORD), {"steps": len(losses), "seconds": seconds,
                                                "final_loss": float(np.mean(losses[-20:])) if losses else None})
    with atomic_path(path) as tmp:  # last: its presence means the pretraining finished
        torch.save({"state_dict": state, "hyper_parameters": {"model": cfg.model.name, **to_dict(cfg.pretrain)}}, tmp)
    return state


def pretrain_seconds(run_dir: Path) -> float:
    """How long the run's pretraining took (0 when it had none)."""
    record = Path(run_dir) / PRETRAIN_RECORD
    return float(read_json(record)["seconds"]) if record.is_file() else 0.0


def load_pretrained(model: nn.Module, state: dict[str, torch.Tensor]) -> list[str]:
    """Copy into ``model`` every tensor of ``state`` with the same name and shape (all but the class layer);
    returns the names left at their initial values."""
    own = model.state_dict()
    carried = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    model.load_state_dict(carried, strict=False)
    return sorted(set(own) - set(carried))
