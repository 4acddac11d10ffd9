"""The values a :class:`~tropicrop.scene.Scene` hands out: split codes (the authors' TrainTestMask
convention), the no-reference label code, and backscatter in dB."""

from __future__ import annotations

import numpy as np

UNUSED = 0  # split codes (the authors' TrainTestMask convention)
TRAIN = 1
TEST = 2
NO_REFERENCE = 0  # label code of a pixel without reference


def to_db(linear: np.ndarray) -> np.ndarray:
    """Linear backscatter intensity to dB; non-positive values (no signal, border fill) become NaN."""
    out = np.full(linear.shape, np.nan, dtype=np.float32)
    pos = linear > 0
    out[pos] = 10.0 * np.log10(linear[pos].astype(np.float32))
    return out
