"""Small data the tests make themselves: a 4-date scene's arrays, a small network, a short training config.

A helper module, not a test module: fixtures that build files from these live in ``conftest.py``.
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from affine import Affine
from torch import Tensor

from tropicrop.config import load_config
from tropicrop.models import MODELS
from tropicrop.training import TrainConfig

CLASSES = {1: "Soybean", 2: "Maize", 3: "Soil"}
DATES = [dt.date(2019, 9, 18), dt.date(2019, 10, 12), dt.date(2019, 11, 17), dt.date(2019, 12, 23)]
TRANSFORM = Affine(10.0, 0.0, 400000.0, 0.0, -10.0, 8660000.0)
# The networks' Table 3 shape with a few filters per layer: trains in seconds on a CPU.
SMALL_NET = {"encoder_channels": [4, 4, 8, 8], "lstm_channels": 8, "decoder_channels": [8, 4, 4], "head_channels": 4}
QUICK_CONFIG = Path(__file__).parents[1] / "configs" / "quick.yaml"
# The temporal networks of issue 17 with a few filters per layer (options for models.build).
SMALL: dict[str, dict[str, Any]] = {
    "utae": {"encoder_channels": (8, 8, 16, 16), "decoder_channels": (16, 8, 8), "head_channels": 8,
             "d_model": 32, "heads": 4, "key_dims": 4},
    "unet3d": {"encoder_channels": (4, 8, 8, 16), "decoder_channels": (8, 8, 4), "head_channels": 4},
    "vunet_convlstm_seq": {"encoder_channels": (4, 4, 8, 8), "lstm_channels": 8, "decoder_channels": (8, 4, 4),
                           "head_channels": 4},
}


def tiny_arrays(h: int = 16, w: int = 20, seed: int = 0) -> dict[str, Any]:
    """Images (T, 2, h, w) in dB, labels for the last two dates and a left/right train/test split."""
    rng = np.random.default_rng(seed)
    images = rng.uniform(-20.0, -8.0, size=(len(DATES), 2, h, w)).astype(np.float32)
    labels = {d: rng.integers(0, 4, size=(h, w)).astype(np.uint8) for d in DATES[2:]}
    split = np.zeros((h, w), dtype=np.uint8)
    split[:, : w // 2] = 1
    split[:, w // 2 :] = 2
    return {"images": images, "labels": labels, "split": split}


def quick_config(scene: Path, **overrides: Any) -> TrainConfig:
    """configs/quick.yaml with a small network and a short schedule, for tests."""
    # float32 whatever the machine (auto would pick bf16 where it is fast): the exactness tests compare float32 math
    sets = [f"data.scene={scene}", "trainer.max_epochs=2", "trainer.steps_per_epoch=3", "trainer.progress=false",
            "data.val_limit=64", "trainer.precision=32-true"]
    sets += [f"{k}={v}" for k, v in overrides.items()]
    cfg = load_config(TrainConfig, QUICK_CONFIG, sets)
    if cfg.model.name in MODELS:  # a network (the classical model's options are its own)
        cfg.model.options = dict(SMALL_NET)
    return cfg


def drop_image(scene_dir: Path, index: int) -> None:
    """Turn date ``index`` of a written scene into a month without acquisition (``image: null``, no label)."""
    path = scene_dir / "scene.yaml"
    data = yaml.safe_load(path.read_text())
    data["dates"][index]["image"] = None
    data["dates"][index].pop("label", None)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def make_inputs(b: int = 2, t: int = 5, h: int = 16, w: int = 16, seed: int = 0) -> tuple[Tensor, Tensor, Tensor]:
    """Random images (B, T, 2, H, W), day of year (B, T) and an all-True valid mask (B, T)."""
    gen = torch.Generator().manual_seed(seed)
    return (torch.randn(b, t, 2, h, w, generator=gen), torch.randint(1, 366, (b, t), generator=gen),
            torch.ones(b, t, dtype=torch.bool))


def like_trained(model: torch.nn.Module) -> torch.nn.Module:
    """Every parameter and BatchNorm statistic perturbed (fresh zero-initialised parts hide differences),
    in eval mode."""
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, tensor in [*model.named_parameters(), *model.named_buffers()]:
            if tensor.is_floating_point():
                tensor.add_(0.1 * torch.randn(tensor.shape, generator=gen))
                if name.endswith("running_var"):
                    tensor.clamp_(min=0.5)
    return model.eval()


def with_padded_dates(images: Tensor, doy: Tensor, valid: Tensor, k: int, scale: float = 1.0
                      ) -> tuple[Tensor, Tensor, Tensor]:
    """The same windows with ``k`` padded dates in front: random images times ``scale`` (garbage the network
    must ignore), random days of year, ``valid`` False."""
    b, _, c, h, w = images.shape
    return (torch.cat([scale * torch.randn(b, k, c, h, w), images], dim=1),
            torch.cat([torch.randint(1, 366, (b, k)), doy], dim=1),
            torch.cat([torch.zeros(b, k, dtype=torch.bool), valid], dim=1))


def relabel_dates(scene_dir: Path, out: Path, days: int) -> Path:
    """A copy of the scene with every date moved by ``days`` (same images: a pure calendar shift)."""
    shutil.copytree(scene_dir, out)
    manifest = yaml.safe_load((out / "scene.yaml").read_text())
    for entry in manifest["dates"]:
        entry["date"] = (dt.date.fromisoformat(str(entry["date"])) + dt.timedelta(days=days)).isoformat()
    (out / "scene.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
    return out
