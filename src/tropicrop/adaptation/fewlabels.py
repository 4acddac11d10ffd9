"""When a few fields of the new year are surveyed: fine-tuning the year-A network on k parcels per class.

This is the one adaptation path that reads year-B labels, and only those of its train split. A *parcel*
is a connected component (8-connectivity) of one class at one labelled date inside the train split; ``k``
of them are drawn per class (seeded), and a drawn parcel's pixels keep their labels at every labelled date
(a surveyed field is known for the whole year). The network is fine-tuned on patches holding those pixels,
with the training loss and a lower learning rate, and no validation (there are too few labels to hold
any back).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import lightning as L
import numpy as np
from scipy import ndimage
from torch import nn
from torch.utils.data import DataLoader

from tropicrop.classes import ClassTable
from tropicrop.config.adaptation import FewLabelOptions
from tropicrop.scene import TEST, TRAIN, Scene
from tropicrop.windows.datasets import TrainBatches
from tropicrop.windows.normalize import Normalizer
from tropicrop.windows.patches import patch_origins
from tropicrop.windows.sampler import StepSampler
from tropicrop.windows.tensors import SceneTensors

if TYPE_CHECKING:
    from tropicrop.training import CropModule

MIN_PARCEL_PIXELS = 4
MAX_CALIBRATION_PATCHES = 256


def parcel_mask(labels: np.ndarray, train: np.ndarray, k: int, seed: int) -> tuple[np.ndarray, dict[int, int]]:
    """Pixels (H, W) of ``k`` parcels per class drawn from ``labels`` (L, H, W) model class indices inside
    ``train`` (H, W); returns the mask and the number of parcels drawn per class (fewer where a class has
    fewer parcels of at least :data:`MIN_PARCEL_PIXELS` pixels)."""
    rng = np.random.default_rng([seed, 13])
    mask = np.zeros(train.shape, dtype=bool)
    drawn: dict[int, int] = {}
    structure = np.ones((3, 3), dtype=bool)
    for cls in sorted(int(c) for c in np.unique(labels[:, train]) if c > 0):
        parcels: list[np.ndarray] = []
        for layer in labels:
            comp, n = ndimage.label((layer == cls) & train, structure=structure)
            if n == 0:
                continue
            sizes = np.bincount(comp.ravel())
            for i in np.flatnonzero(sizes >= MIN_PARCEL_PIXELS):
                if i > 0:
                    parcels.append(np.flatnonzero(comp.ravel() == i))
        if not parcels:
            continue
        pick = rng.choice(len(parcels), size=min(k, len(parcels)), replace=False)
        for i in pick:
            mask.ravel()[parcels[int(i)]] = True
        drawn[cls] = len(pick)
    return mask, drawn


def finetune_on_parcels(module: CropModule, scene: Scene, classes: ClassTable, normalizer: Normalizer,
                        k: int, options: FewLabelOptions, length: int, seed: int, accelerator: str = "cpu",
                        progress: bool = False) -> tuple[nn.Module, dict[str, object]]:
    """Fine-tune ``module`` (a CropModule) on ``k`` parcels per class of ``scene``'s train split (in place);
    returns its network in eval mode and what was drawn."""
    lookup = classes.lookup(scene.classes)
    labels = lookup[scene.read_labels()]
    split = scene.read_split()
    mask, drawn = parcel_mask(labels, split == TRAIN, k, seed)
    labels[:, ~mask] = 0
    data = SceneTensors(images=normalizer(scene.read_images()), labels=labels, usable=split != TEST,
                        dates=list(scene.dates), label_dates=list(scene.labelled_dates), length=length)
    p = min(options.patch_size, *split.shape)
    origins = patch_origins(mask, data.usable, p, max(1, p // 4), min_labelled=0.0)
    context = len(origins) == 0 and bool(mask.any())
    if context:  # issue 32: interleaved train/test parcels leave no patch clear of test pixels; their images
        # may then be input around the drawn parcels (labels stay masked: only the drawn parcels are labelled)
        data.usable = np.ones_like(data.usable)
        origins = patch_origins(mask, data.usable, p, max(1, p // 4), min_labelled=0.0)
    stats: dict[str, object] = {"k": k, "parcels_per_class": {classes.names[c]: n for c, n in drawn.items()},
                                "labelled_pixels": int(mask.sum()), "patches": len(origins),
                                "test_area_context": context}
    if len(origins) == 0:
        return module.model.eval(), stats
    L.seed_everything(seed, workers=True, verbose=False)
    data_set = TrainBatches(data, origins, list(scene.labelled_dates), options.batch_size, p, seed=seed)
    loader = DataLoader(data_set, batch_size=None, sampler=StepSampler(options.steps))
    module.hparams["lr"] = options.lr
    trainer = L.Trainer(accelerator=accelerator, devices=1, max_steps=options.steps, max_epochs=1, logger=False,
                        enable_checkpointing=False, enable_progress_bar=progress, enable_model_summary=False,
                        deterministic=True, num_sanity_val_steps=0, limit_val_batches=0)
    trainer.fit(module, train_dataloaders=loader)
    model: nn.Module = module.model
    return model.cpu().eval(), stats


def parcel_logits(model: nn.Module, scene: Scene, classes: ClassTable, normalizer: Normalizer, k: int,
                  options: FewLabelOptions, length: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Logits (N, K-1) of the real classes, 0-based labels (N,) and target months (N,) of ``model`` at the
    pixels of the ``k`` parcels per class :func:`finetune_on_parcels` draws (same ``seed``), at every
    labelled date: the labelled set a few-label run refits its temperature on (there is no hold-out; the
    parcels are those it was fine-tuned on). Patches tile the scene without overlap (a parcel on the last
    partial strip may be left out); at most :data:`MAX_CALIBRATION_PATCHES` of them (seeded)."""
    from tropicrop.valprofile import network_logits

    lookup = classes.lookup(scene.classes)
    labels = lookup[scene.read_labels()]
    split = scene.read_split()
    mask, _ = parcel_mask(labels, split == TRAIN, k, seed)
    labels[:, ~mask] = 0
    data = SceneTensors(images=normalizer(scene.read_images()), labels=labels, usable=np.ones(split.shape, bool),
                        dates=list(scene.dates), label_dates=list(scene.labelled_dates), length=length)
    p = min(options.patch_size, *split.shape)
    origins = patch_origins(mask, data.usable, p, p, min_labelled=0.0)
    if len(origins) > MAX_CALIBRATION_PATCHES:
        origins = origins[np.random.default_rng([seed, 17]).choice(len(origins), MAX_CALIBRATION_PATCHES, replace=False)]
    batches = ((t, data.gather(origins[i:i + 16], t, p)) for t in data.label_dates for i in range(0, len(origins), 16))
    model.eval()
    z, y, months = network_logits(lambda b: model(b["images"], b["doy"], b["valid"]), batches)
    return z, y, months
