"""Training throughput of UnetConvLSTM and VUnetConvLSTM, float32 and bfloat16 side by side, against a plain reference.

For each network this measures forward + backward samples/s on the paper's training batch (B=16 windows of
T=12 dates, 32x32 tiles, 2 bands, every date valid), in float32 and under ``torch.autocast(bfloat16)`` (what
Lightning's ``bf16-mixed`` runs), counts the FLOPs of one step with
:class:`torch.utils.flop_counter.FlopCounterMode` (counted, not estimated), and reports the achieved
FLOP/s. References measured in the same run:

* plain ``2048 x 2048`` matmuls in float32 and in bf16, the machine's practical FLOP/s ceilings (bf16 is
  about twice float32 only where the CPU has AVX512-BF16/AMX or the GPU bf16 tensor cores);
* the plain implementation of the same network with the same weights, :mod:`tropicrop.models.reference`
  (the one the tests hold the fast network to): the textbook ConvLSTM cell (one ``Conv2d`` over
  ``cat([x_t, h])`` per step), autograd, default memory layout, float32. The column ours/plain is ours /
  plain samples/s (goal: >= 1.0).

All steps of a network are timed in alternation (one of each per round), so a change of machine load
affects them alike: read the ratios (bf16 / float32 goal: >= 1.5). With a CUDA device the same table is
measured on it too; ``--devices cuda`` alone writes ``results/model_throughput_cuda.json`` (the CPU file stays).

Reading the FLOP/s: the ConvLSTM (over 90 % of the FLOPs) works on 4x4 maps at H/8, where a 3x3 "same"
convolution reads zero padding at 56 of its 144 tap positions. The counter charges those taps as full
multiply-adds, but a convolution kernel need not compute them, so the nominal FLOP/s can exceed the
matmul's without anything being wrong.

Run:      python benchmarks/model_throughput.py --batch 16 --steps 5 --threads 2
Profile:  python benchmarks/model_throughput.py --steps 3 --profile   (torch.profiler tables of our bf16 step)
"""

from __future__ import annotations

import argparse
import contextlib
import time
from collections.abc import Callable
from functools import partial

import torch
from torch import Tensor, nn
from torch.utils.flop_counter import FlopCounterMode

from results_file import Figure, write_results
from tropicrop.losses import FocalLoss
from tropicrop.models import build
from tropicrop.models.reference import REFERENCES
from tropicrop.precision import cpu_has_fast_bf16

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


def train_step(model: nn.Module, loss_fn: nn.Module, batch: Batch, dtype: torch.dtype | None = None) -> None:
    """One forward + backward pass (no optimiser update: it is the same for every variant), the forward
    under autocast to ``dtype`` if given, as Lightning's mixed precision runs it."""
    images, doy, valid, target = batch
    model.zero_grad(set_to_none=True)
    with torch.autocast(images.device.type, dtype=dtype) if dtype is not None else contextlib.nullcontext():
        logits = model(images, doy, valid)
    loss_fn(logits.float(), target).backward()
    synchronize(images.device)


def synchronize(device: torch.device) -> None:
    """Wait for queued GPU work, so that wall time measures it (no-op on the CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


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


def matmul_flops_per_second(n: int = 2048, steps: int = 10, dtype: torch.dtype = torch.float32,
                            device: str = "cpu") -> float:
    """Achieved FLOP/s of an ``n x n`` matmul in ``dtype`` (``2 n**3`` FLOPs each)."""
    a, b = torch.randn(n, n, dtype=dtype, device=device), torch.randn(n, n, dtype=dtype, device=device)

    def run() -> None:
        a @ b
        synchronize(a.device)

    return 2 * n**3 / seconds_per_call(run, steps, warmup=2)


def matmul_pair(steps: int = 5, device: str = "cpu") -> dict[str, float]:
    """float32 and bf16 ``2048^2`` matmul FLOP/s, timed one after the other."""
    return {"32": matmul_flops_per_second(steps=steps, device=device),
            "bf16": matmul_flops_per_second(steps=steps, dtype=torch.bfloat16, device=device)}


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


def measure_device(device: torch.device, args: argparse.Namespace) -> tuple[list[tuple[object, ...]], dict[str, float]]:
    """Rows ``(model, implementation, precision, samples/s, GFLOP/sample, GFLOP/s, / matmul, note)`` and the
    matmul FLOP/s of both precisions on ``device``."""
    classes = 8
    batch = tuple(t.to(device) for t in make_batch(args.batch, args.dates, args.size, classes))
    loss_fn = FocalLoss()
    matmul = matmul_pair(device=device.type)
    rows: list[tuple[object, ...]] = []
    for name in ("unet_convlstm", "vunet_convlstm"):
        ours = build(name, in_channels=2, num_classes=classes).train().to(device)
        plain = plain_reference(name, ours, classes).to(device)
        diff = check_same_network(ours, plain, batch)  # type: ignore[arg-type]
        steps = {("plain", "32"): partial(train_step, plain, loss_fn, batch),
                 ("ours", "32"): partial(train_step, ours, loss_fn, batch),
                 ("ours", "bf16"): partial(train_step, ours, loss_fn, batch, torch.bfloat16)}
        seconds = interleaved_seconds({f"{k[0]} {k[1]}": fn for k, fn in steps.items()}, args.steps, args.warmup)
        flops = {impl: flops_per_call(steps[impl, "32"]) for impl in ("plain", "ours")}
        for (impl, prec) in steps:
            sec = seconds[f"{impl} {prec}"]
            note = ""
            if (impl, prec) == ("ours", "32"):
                note = f"ours/plain {seconds['plain 32'] / sec:.2f} (max logit diff {diff:.1e})"
            elif prec == "bf16":
                note = f"**bf16/float32 {seconds['ours 32'] / sec:.2f}** (goal >= 1.5)"
            rows.append((name, impl, prec, args.batch / sec, flops[impl] / args.batch / 1e9, flops[impl] / sec / 1e9,
                         flops[impl] / sec / matmul[prec], note))
        if args.profile:
            from torch.profiler import profile

            with profile(record_shapes=True) as prof:
                steps["ours", "bf16"]()
            print(prof.key_averages(group_by_input_shape=True).table(sort_by="self_cpu_time_total", row_limit=15))
    for key, value in matmul_pair(device=device.type).items():  # again after: the load may have changed
        matmul[key] = max(matmul[key], value)
    return rows, matmul


def main(argv: list[str] | None = None) -> None:
    """Measure, then print a markdown table per device."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--dates", type=int, default=12)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=5, help="timed steps per model (median reported)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--devices", nargs="+", default=["cpu", "cuda"] if torch.cuda.is_available() else ["cpu"])
    parser.add_argument("--profile", action="store_true", help="print a torch.profiler table of our bf16 step")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    figures: list[Figure] = []
    for device in map(torch.device, args.devices):
        rows, matmul = measure_device(device, args)
        figures += device_figures(device.type, rows)
        where = (f"CPU, {args.threads} threads, bf16 units: {cpu_has_fast_bf16()}" if device.type == "cpu"
                 else f"{torch.cuda.get_device_name(device)}")
        print(f"\n{where}, torch {torch.__version__}; batch {args.batch} x {args.dates} dates x {args.size}x{args.size} x "
              f"2 bands, forward + backward, median of {args.steps} alternated steps\n")
        print("| model | implementation | precision | samples/s | GFLOP/sample | GFLOP/s | / matmul of its precision | |")
        print("|---|---|---|---:|---:|---:|---:|---|")
        for row in rows:
            print(f"| {row[0]} | {row[1]} | {row[2]} | {row[3]:.1f} | {row[4]:.2f} | {row[5]:.0f} | {row[6]:.2f} | {row[7]} |")
        for prec, value in matmul.items():
            print(f"| matmul 2048x2048 | torch.matmul | {prec} | | | {value / 1e9:.0f} | 1.00 | |")
    name = "model_throughput" if "cpu" in args.devices else "_".join(["model_throughput", *args.devices])
    write_results(name, figures, settings={"batch": args.batch, "dates": args.dates, "size": args.size,
                                                         "steps": args.steps, "threads": args.threads})


def device_figures(device: str, rows: list[tuple[object, ...]]) -> list[Figure]:
    """The result file's figures of one device: samples/s of each row, ours / plain and bf16 / float32."""
    rate = {(str(r[0]), str(r[1]), str(r[2])): float(r[3]) for r in rows}  # type: ignore[arg-type]
    figures = [Figure(f"{device}, {model}, {impl}, {prec}, training samples/s", round(v, 2), "samples/s")
               for (model, impl, prec), v in rate.items()]
    for model in sorted({k[0] for k in rate}):
        figures += [Figure(f"{device}, {model}, training step ours / plain (float32)",
                           round(rate[model, "ours", "32"] / rate[model, "plain", "32"], 3), "ratio"),
                    Figure(f"{device}, {model}, training step bf16 / float32",
                           round(rate[model, "ours", "bf16"] / rate[model, "ours", "32"], 3), "ratio")]
    return figures


if __name__ == "__main__":
    main()
