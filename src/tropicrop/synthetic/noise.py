"""Smooth random fields, used for land-use clustering, within-parcel variation and rain cells."""

from __future__ import annotations

import numpy as np


def smooth_noise(rng: np.random.Generator, shape: tuple[int, ...], scale: float) -> np.ndarray:
    """Gaussian random field of zero mean and unit standard deviation, correlated over ``scale`` pixels.

    White noise low-passed in the Fourier domain with a Gaussian of that length (periodic edges, which do not
    matter for textures). ``shape`` is (H, W) or (N, H, W) for N independent fields; returns float32.
    """
    h, w = shape[-2:]
    white = rng.standard_normal(shape)
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.rfftfreq(w)[None, :]
    kernel = np.exp(-2.0 * (np.pi * scale) ** 2 * (fx**2 + fy**2))
    field = np.fft.irfft2(np.fft.rfft2(white, axes=(-2, -1)) * kernel, s=(h, w), axes=(-2, -1))
    field -= field.mean(axis=(-2, -1), keepdims=True)
    std = field.std(axis=(-2, -1), keepdims=True)
    return (field / np.where(std > 0, std, 1.0)).astype(np.float32)
