"""Self-training on the new year's images with a mean teacher (after TimeMatch, Nyborg et al. 2022).

Both networks start as the (already statistic- and shift-adapted) year-A network. For each batch of
year-B patches, the *teacher* (an exponential moving average of the student's weights: slower, smoother,
a better labeller than the student itself) predicts the clean view; its confident pixels become
pseudo-labels for the *student*, trained on a perturbed view (speckle-like noise, a per-band level change,
a few days of date jitter). Selection is per class: a pixel is kept when its confidence passes its
predicted class's threshold, the ``1 - keep`` quantile of that class's confidences in the batch, never
below ``min_confidence``. So every class keeps its own most confident fraction, and a frequent, easy class
cannot crowd out a rare one (a single global threshold keeps mostly the easy classes). The floor is 0 by
default: networks trained with the focal loss are under-confident (a maximum probability of 0.3 is usual
on the synthetic pair), so an absolute threshold such as 0.9 keeps next to nothing, and what it keeps is
one class (measured: 0.4 % of pixels, 94 % of them one class, and the student collapsed onto it). The loss is
weighted by the inverse running frequency of each pseudo-class (class-balanced). BatchNorm statistics
stay frozen (AdaBN has set them on year B; the small self-training batches would only add noise). The
teacher is the adapted network.
"""

from __future__ import annotations

import copy
import warnings
from typing import Any

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset

from tropicrop.adaptation.batchnorm import freeze_batchnorm
from tropicrop.adaptation.data import PatchSampler
from tropicrop.config.adaptation import SelfTrainingOptions
from tropicrop.windows.augment import augment
from tropicrop.windows.dates import shift_doy
from tropicrop.windows.sampler import StepSampler


class PseudoBatches(Dataset[dict[str, torch.Tensor]]):
    """Unlabelled year-B batches keyed by global batch number (content depends on (seed, n) only)."""

    def __init__(self, sampler: PatchSampler, batch_size: int, seed: int) -> None:
        self.sampler, self.batch_size, self.seed = sampler, batch_size, seed

    def __len__(self) -> int:
        return 2**31 - 1

    def __getitem__(self, n: int) -> dict[str, torch.Tensor]:
        rng = np.random.default_rng([self.seed, 11, n])
        batch = augment(self.sampler.batch(self.batch_size, rng), rng)
        batch["seed"] = torch.tensor(n)
        return batch


class MeanTeacher(L.LightningModule):
    """Student trained on the teacher's per-class-thresholded pseudo-labels; the teacher follows by EMA."""

    class_freq: torch.Tensor  # running share of each pseudo-class among selected pixels (classes 1..K-1)

    def __init__(self, model: nn.Module, options: SelfTrainingOptions, num_classes: int, seed: int) -> None:
        super().__init__()
        self.student = model
        self.teacher = copy.deepcopy(model).eval()
        for p in self.teacher.parameters():
            p.requires_grad_(False)
        self.options, self.seed = options, seed
        self.register_buffer("class_freq", torch.full((num_classes - 1,), 1.0 / (num_classes - 1)))
        self.selected = 0
        self.seen = 0

    def _student_view(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        o = self.options
        gen = torch.Generator().manual_seed(int(batch["seed"]) * 7919 + self.seed)
        images = batch["images"]
        b, _, c = images.shape[:3]
        noise = o.noise * torch.randn(images.shape, generator=gen)
        level = o.level * (2 * torch.rand((b, 1, c, 1, 1), generator=gen) - 1)
        valid = batch["valid"][:, :, None, None, None].to(images.dtype)
        jitter = torch.randint(-o.doy_jitter, o.doy_jitter + 1, (b, 1), generator=gen) if o.doy_jitter else 0
        return images + (noise + level) * valid, shift_doy(batch["doy"], jitter)

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        freeze_batchnorm(self.student)
        self.teacher.eval()  # Lightning's train() at the start of fit reaches the teacher too
        o = self.options
        with torch.no_grad():
            logits_t = self.teacher(batch["images"], batch["doy"], batch["valid"]).float()
            probs = torch.softmax(logits_t[:, 1:], dim=1)
            conf, pred = probs.max(dim=1)  # pred: 0..K-2 = class 1..K-1
            keep = torch.zeros_like(conf, dtype=torch.bool)
            for k in torch.unique(pred):
                inside = pred == k
                thr = max(float(torch.quantile(conf[inside], 1 - o.keep)), o.min_confidence)
                keep |= inside & (conf >= thr)
            counts = torch.bincount(pred[keep], minlength=self.class_freq.numel()).float()
            if counts.sum() > 0:
                self.class_freq.mul_(0.9).add_(0.1 * counts / counts.sum())
        images, doy = self._student_view(batch)
        logits_s = self.student(images, doy, batch["valid"]).float()
        weights = 1.0 / (self.class_freq * len(self.class_freq)).clamp_min(0.05)
        target = torch.where(keep, pred + 1, torch.zeros_like(pred))
        per_pixel = F.cross_entropy(logits_s, target, ignore_index=0, reduction="none")
        w = torch.where(keep, weights[pred], torch.zeros_like(conf))
        loss = (per_pixel * w).sum() / w.sum().clamp_min(1e-6)
        self.selected += int(keep.sum())
        self.seen += keep.numel()
        self.log("selftrain/loss", loss, prog_bar=True, batch_size=images.shape[0])
        self.log("selftrain/selected", keep.float().mean(), batch_size=images.shape[0])
        return loss

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        ema = self.options.ema
        with torch.no_grad():
            for t, s in zip(self.teacher.parameters(), self.student.parameters(), strict=True):
                t.mul_(ema).add_(s.detach(), alpha=1 - ema)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.student.parameters(), lr=self.options.lr)


def self_train(model: nn.Module, sampler: PatchSampler, options: SelfTrainingOptions, num_classes: int, seed: int,
               accelerator: str = "cpu", progress: bool = False) -> tuple[nn.Module, dict[str, float]]:
    """Run the mean teacher for ``options.steps`` steps; returns the teacher (eval mode) and statistics
    (fraction of pixels selected as pseudo-labels, final pseudo-class frequencies)."""
    L.seed_everything(seed, workers=True, verbose=False)
    module = MeanTeacher(model, options, num_classes, seed)
    data = PseudoBatches(sampler, options.batch_size, seed)
    loader = DataLoader(data, batch_size=None, sampler=StepSampler(options.steps))
    trainer = L.Trainer(accelerator=accelerator, devices=1, max_steps=options.steps, max_epochs=1,
                        logger=False, enable_checkpointing=False, enable_progress_bar=progress,
                        enable_model_summary=False, deterministic=True, num_sanity_val_steps=0,
                        limit_val_batches=0)
    with warnings.catch_warnings():  # the teacher and the frozen BatchNorm layers are in eval mode on purpose
        warnings.filterwarnings("ignore", message=r".*module\(s\) in eval mode", category=UserWarning)
        trainer.fit(module, train_dataloaders=loader)
    teacher = module.teacher.cpu().eval()
    stats = {"steps": float(trainer.global_step), "selected_fraction": module.selected / max(module.seen, 1),
             **{f"pseudo_share_{k + 1}": float(v) for k, v in enumerate(module.class_freq)}}
    return teacher, stats
