"""The global batch numbers of each optimiser step and DDP rank, derived from the trainer's step (resumable)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from torch.utils.data import Sampler


class StepSampler(Sampler[int]):
    """Yields the global batch numbers of the next ``steps`` optimiser steps for this rank.

    Batch numbers derive from the trainer's global step when an epoch's iteration starts (``first_step``),
    not from an epoch counter: after a resume from any checkpoint the batches continue exactly where the
    interrupted run was. Under DDP, rank ``r`` of ``world`` takes batch ``step * world + r``.
    """

    def __init__(self, steps: int, first_step: Callable[[], int] = lambda: 0, rank: int = 0, world: int = 1) -> None:
        self.steps, self.first_step, self.rank, self.world = steps, first_step, rank, world

    def __iter__(self) -> Iterator[int]:
        start = self.first_step()
        return iter((start + k) * self.world + self.rank for k in range(self.steps))

    def __len__(self) -> int:
        return self.steps
