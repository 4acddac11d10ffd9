"""The input gates of a ConvLSTM step read from a table of frames, so that windows sharing frames (a tile's
12 windows at inference) share their input convolution instead of copying it per window."""

from __future__ import annotations

from torch import Tensor


class FrameSteps:
    """Input gates of step ``t`` of every sequence, ``(B, 4 * hid, H, W)``, read from a table of frames.

    ``table`` ``(N, 4 * hid, H, W)`` holds each frame's input gates once; ``index`` ``(B, T)`` picks frame
    ``index[b, t]`` for step ``t`` of sequence ``b`` (``-1``: zeros). A step of a single sequence is a view
    of its table row, so no ``(B, T, 4 * hid, H, W)`` copy is ever made (inference, where a tile's frames
    serve 12 windows).
    """

    def __init__(self, table: Tensor, index: Tensor) -> None:
        self.table = table
        self.rows = index.t().tolist()  # (T, B) on the host: one sync, not one per step
        self.shape = (index.shape[1], index.shape[0], *table.shape[1:])
        self._index = index.t().to(table.device)

    def _gather(self, index: Tensor, any_absent: bool) -> Tensor:
        """Rows ``index`` (1-D) of the table, zeros where ``index < 0`` (one copy; differentiable)."""
        out = self.table.index_select(0, index.clamp_min(0))
        return out.masked_fill((index < 0).view(-1, 1, 1, 1), 0.0) if any_absent else out

    def __getitem__(self, t: int) -> Tensor:
        rows = self.rows[t]
        if len(rows) == 1 and rows[0] >= 0:
            return self.table[rows[0]].unsqueeze(0)
        return self._gather(self._index[t], min(rows) < 0)

    def materialise(self) -> Tensor:
        """The time-major sequences ``(T, B, 4 * hid, H, W)`` (one copy; differentiable)."""
        return self._gather(self._index.reshape(-1), min(map(min, self.rows)) < 0).view(self.shape)
