"""Per-band standardisation of dB values, fitted on training pixels and stored with a run."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BRIGHT_DB = 20.0  # backscatter above this (dB) is clipped before the normaliser's statistics


@dataclass(frozen=True)
class Normalizer:
    """Per-band standardisation of dB values: ``(x - mean) / std``; no-data (NaN) becomes 0 (the mean)."""

    mean: tuple[float, ...]
    std: tuple[float, ...]

    def __call__(self, images: np.ndarray) -> np.ndarray:
        """Normalise images (..., C, H, W) float32 in dB."""
        mean = np.asarray(self.mean, dtype=np.float32)[:, None, None]
        std = np.asarray(self.std, dtype=np.float32)[:, None, None]
        out = (images - mean) / std
        return np.nan_to_num(out, nan=0.0).astype(np.float32, copy=False)

    def to_dict(self) -> dict[str, list[float]]:
        """JSON-ready form."""
        return {"mean": list(self.mean), "std": list(self.std)}

    @classmethod
    def from_dict(cls, data: dict[str, list[float]]) -> Normalizer:
        """Inverse of :meth:`to_dict`."""
        return cls(mean=tuple(data["mean"]), std=tuple(data["std"]))

    @classmethod
    def fit(cls, images: np.ndarray, mask: np.ndarray) -> Normalizer:
        """Fit on images (T, C, H, W) in dB at pixels where ``mask`` (H, W) is true, over all dates.

        Values above :data:`BRIGHT_DB` (buildings, corner reflectors in real scenes) count as that value, so a
        few of them do not stretch the statistics; scenes without any (the synthetic ones) are unchanged.
        """
        values = np.minimum(images[:, :, mask], np.float32(BRIGHT_DB))  # (T, C, N); NaN stays NaN
        values = np.moveaxis(values, 1, 0).reshape(images.shape[1], -1)
        mean = np.nanmean(values, axis=1)
        std = np.nanstd(values, axis=1)
        if not np.all(np.isfinite(mean)):
            raise ValueError("no valid training pixels to fit the normalisation on")
        return cls(mean=tuple(float(v) for v in mean), std=tuple(float(max(v, 1e-6)) for v in std))
