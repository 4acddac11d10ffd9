"""The LightningModule of a registered network: focal loss, Adam, validation F1 from a confusion matrix."""

from __future__ import annotations

from typing import Any

import lightning as L
import numpy as np
import torch

from tropicrop.losses import FocalLoss
from tropicrop.metrics import confusion_metric, scores_from_confusion
from tropicrop.models import build


class CropModule(L.LightningModule):
    """A registered network trained with the focal loss and Adam; validation macro F1 from a confusion matrix.

    A sequence model (``sequence_output``, e.g. vunet_convlstm_seq) gets batches with the labels of every
    date of the window and is trained with the loss over every labelled date it decodes; it is validated,
    like every model, on the window's last date.

    Everything needed to predict with it (class names, normalisation, sequence length, target date of a
    per-month net) is stored in its hyperparameters, so a checkpoint is self-contained.
    """

    def __init__(self, model_name: str, model_options: dict[str, Any], in_channels: int, class_names: list[str],
                 normalization: dict[str, list[float]], sequence_length: int = 12, target: str | None = None,
                 lr: float = 1e-3, focal_gamma: float = 2.0, weight_decay: float = 0.0) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.model = build(model_name, in_channels, num_classes=len(class_names), **model_options)
        self.loss = FocalLoss(gamma=focal_gamma, ignore_index=0)
        self.val_confusion = confusion_metric(len(class_names))

    def forward(self, images: torch.Tensor, doy: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """Logits (B, K, H, W) for the last date of images (B, T, C, H, W)."""
        out: torch.Tensor = self.model(images, doy, valid)
        return out

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        if "step_labels" in batch:  # a sequence model: the loss at every labelled date of the window
            step_labels = batch["step_labels"]
            steps = batch["valid"] & (step_labels > 0).flatten(2).any(2)
            forward_steps: Any = self.model.forward_steps  # the sequence models' method, not nn.Module's
            logits = forward_steps(batch["images"], batch["doy"], batch["valid"], steps)
            labels = step_labels[steps]
        else:
            logits, labels = self(batch["images"], batch["doy"], batch["valid"]), batch["labels"]
        loss: torch.Tensor = self.loss(logits.float(), labels)
        self.log("train/loss", loss, prog_bar=True, batch_size=batch["images"].shape[0])
        return loss

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> None:
        logits = self(batch["images"], batch["doy"], batch["valid"]).float()
        self.log("val/loss", self.loss(logits, batch["labels"]), batch_size=batch["images"].shape[0], sync_dist=True)
        self.val_confusion.update(predict_classes(logits), batch["labels"])

    def on_validation_epoch_end(self) -> None:
        scores = scores_from_confusion(self.val_confusion.compute())
        self.val_confusion.reset()
        f1 = 0.0 if np.isnan(scores.macro_f1) else scores.macro_f1
        self.log("val/f1", f1, prog_bar=True)
        self.log("val/oa", 0.0 if np.isnan(scores.oa) else scores.oa)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        hp = self.hparams
        return torch.optim.Adam(self.parameters(), lr=hp["lr"], weight_decay=hp["weight_decay"])


def predict_classes(logits: torch.Tensor) -> torch.Tensor:
    """Class indices (B, H, W) from logits (B, K, H, W), never index 0 (no reference)."""
    return logits[:, 1:].argmax(dim=1) + 1
