"""Training throughput of UnetConvLSTM and VUnetConvLSTM on CPU, against a plain eager reference.

For each network this measures forward + backward samples/s on the paper's training batch (B=16 windows of
T=12 dates, 32x32 tiles, 2 bands, every date valid), counts the FLOPs of one step with
:class:`torch.utils.flop_counter.FlopCounterMode` (counted, not estimated), and reports the achieved
FLOP/s. Two references are measured in the same run:

* a plain float32 ``2048 x 2048`` matmul, the machine's practical FLOP/s ceiling;
* the plain implementation of the same network with the same weights, :mod:`tropicrop.models.reference`
  (the one the tests hold the fast network to): the textbook ConvLSTM cell (one ``Conv2d`` over
  ``cat([x_t, h])`` per step), autograd, default memory layout, float32. The last column is ours / plain
  samples/s (goal: >= 1.0).

Reading the FLOP/s: the ConvLSTM (over 90 % of the FLOPs) works on 4x4 maps at H/8, where a 3x3 "same"
convolution reads zero padding at 56 of its 144 tap positions. The counter charges those taps as full
multiply-adds, but a convolution kernel need not compute them, so the nominal FLOP/s can exceed the
matmul's without anything being wrong.

Run:      python benchmarks/model_throughput.py --batch 16 --steps 5 --threads 2
Profile:  python benchmarks/model_throughput.py --steps 3 --profile   (torch.profiler table of our step)
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from functools import partial

import torch
from torch import Tensor, nn
from torch.utils.flop_counter import FlopCounterMode

from tropicrop.losses import FocalLoss
from tropicrop.models import build
from tropicrop.models.reference import REFERENCES

Batch = tuple[Tensor, Tensor, Tensor, Tensor]


def plain_reference(name: str, model: nn.Module, classes: int) -> nn.Module:
    """The paper's network written plainly (:mod:`tropicrop.models.reference`), with the weights of ``model``."""
    plain = REFERENCES[name](2, classes)
    plain.load_state_dict(model.state_dict())
    return plain.train(model.training)


def make_batch(batch: int, dates: int, size: int, classes: int) -> Batch:
    """Random images ``(B, T, 2, S, S)``, day of year ``(B, T)``, all-valid mask, targets ``(B, S, S)``."""
    gen = torch.Generator().manual_seed(0)
    images = torch.randn(batch, dates, 2, size, size, generator=gen)
    doy = torch.randint(1, 366, (batch, dates), generator=gen)
    valid = torch.ones(batch, dates, dtype=torch.bool)
    target = torch.randint(0, classes, (batch, size, size), generator=gen)
    return images, doy, valid, target


def train_step(model: nn.Module, loss_fn: nn.Module, batch: Batch) -> None:
    """One forward + backward pass (no optimiser update: it is the same for both implementations)."""
    images, doy, valid, target = batch
    model.zero_grad(set_to_none=True)
    loss_fn(model(images, doy, valid), target).backward()


def seconds_per_call(fn: Callable[[], object], steps: int, warmup: int) -> float:
    """Median wall time of ``fn`` over ``steps`` calls after ``warmup`` untimed ones."""
    return interleaved_seconds({"fn": fn}, steps, warmup)["fn"]


def interleaved_seconds(fns: dict[str, Callable[[], object]], steps: int, warmup: int) -> dict[str, float]:
    """Median wall time per call of each function, timed in alternation (one call of each per round), so
    that a change in machine load (other processes, clock boost) affects every function alike."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(steps):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: sorted(t)[len(t) // 2] for name, t in times.items()}


def flops_per_call(fn: Callable[[], object]) -> int:
    """FLOPs of one call of ``fn`` as counted by FlopCounterMode (forward and backward)."""
    counter = FlopCounterMode(display=False)
    with counter:
        fn()
    return counter.get_total_flops()


def matmul_flops_per_second(n: int = 2048, steps: int = 10) -> float:
    """Achieved FLOP/s of a float32 ``n x n`` matmul (``2 n**3`` FLOPs each)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    return 2 * n**3 / seconds_per_call(lambda: a @ b, steps, warmup=2)


def check_same_network(ours: nn.Module, plain: nn.Module, batch: Batch) -> float:
    """Max abs difference of the two implementations' eval-mode logits (they share weights)."""
    images, doy, valid, _ = batch
    ours.eval()
    plain.eval()
    with torch.no_grad():
        diff = (ours(images[:2], doy[:2], valid[:2]) - plain(images[:2], doy[:2], valid[:2])).abs().max()
    ours.train()
    plain.train()
    return float(diff)


def main(argv: list[str] | None = None) -> None:
    """Measure, then print a markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--dates", type=int, default=12)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=5, help="timed steps per model (median reported)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--profile", action="store_true", help="print a torch.profiler table of our step")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    classes = 8
    batch = make_batch(args.batch, args.dates, args.size, classes)
    loss_fn = FocalLoss()

    matmul = matmul_flops_per_second()
    rows = []
    for name in ("unet_convlstm", "vunet_convlstm"):
        ours = build(name, in_channels=2, num_classes=classes).train()
        plain = plain_reference(name, ours, classes)
        diff = check_same_network(ours, plain, batch)
        steps = {label: partial(train_step, model, loss_fn, batch) for label, model in (("plain", plain), ("ours", ours))}
        seconds = interleaved_seconds(steps, args.steps, args.warmup)
        speeds = {label: args.batch / sec for label, sec in seconds.items()}
        for label, step in steps.items():
            flops = flops_per_call(step)
            rows.append((name, label, speeds[label], flops / args.batch / 1e9, flops / seconds[label] / 1e9))
        rows[-1] = (*rows[-1], speeds["ours"] / speeds["plain"], diff)
        if args.profile:
            from torch.profiler import ProfilerActivity, profile

            with profile(activities=[ProfilerActivity.CPU]) as prof:
                train_step(ours, loss_fn, batch)
            print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15))

    print(
        f"\nCPU, {args.threads} threads, torch {torch.__version__}; batch {args.batch} x {args.dates} dates x "
        f"{args.size}x{args.size} x 2 bands, forward + backward, median of {args.steps} alternated steps\n"
    )
    print("| model | implementation | samples/s | GFLOP/sample | GFLOP/s | ours/plain |")
    print("|---|---|---:|---:|---:|---:|")
    for row in rows:
        ratio = f"{row[5]:.2f} (max logit diff {row[6]:.1e})" if len(row) > 5 else ""
        print(f"| {row[0]} | {row[1]} | {row[2]:.1f} | {row[3]:.2f} | {row[4]:.0f} | {ratio} |")
    print(f"| matmul 2048x2048 float32 | torch.matmul | | | {matmul / 1e9:.0f} | |")


if __name__ == "__main__":
    main()
