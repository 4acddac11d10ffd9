"""Training throughput: the step alone, end-to-end with real data loading, and VUnet vs 12 per-month nets.

Measured in one process, as ratios (absolute times on a shared machine are noise):

1. ``step``: samples/s of the optimiser step alone (forward, focal loss, backward, Adam) on batches already
   in memory, B=16, T=12, 32x32, for UnetConvLSTM and VUnetConvLSTM;
2. ``end-to-end``: samples/s of ``Trainer.fit`` on a synthetic scene read from GeoTIFF into the on-disk
   cache as ``train`` does (patch sampling from the cache, gathering 12-month windows, augmentation, the
   DataLoader, Lightning's loop), against (1) (goal >= 0.9: the model never waits for data);
3. ``vunet fraction``: wall time of one all-months VUnetConvLSTM against twelve per-month UnetConvLSTM nets,
   each with the same number of optimiser steps and the same stopping rule (paper: 0.257; goal <= 0.15).

Run: ``python benchmarks/training.py [--size 256] [--steps 40] [--threads 2]``. Profile the end-to-end loop
with ``python -m cProfile -s cumtime benchmarks/training.py --only e2e --steps 20 | head -40``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from results_file import Figure, write_results


def _cfg(scene: Path, steps: int, extra: list[str], precision: str) -> Any:
    from tropicrop.config import load_config
    from tropicrop.training import TrainConfig

    return load_config(TrainConfig, None, [f"data.scene={scene}", f"trainer.steps_per_epoch={steps}", "trainer.progress=false",
                                           "trainer.max_epochs=1", f"trainer.precision={precision}", *extra])


def step_alone(model_name: str, steps: int, precision: str, batch: int = 16) -> float:
    """Samples/s of forward + loss + backward + Adam on one in-memory batch, in ``precision`` (a resolved
    Lightning name) as Lightning runs it, so that it compares with :func:`end_to_end`."""
    from tropicrop.precision import autocast_dtype
    from tropicrop.training import CropModule

    module = CropModule(model_name, {}, 2, [f"c{i}" for i in range(8)], {"mean": [0, 0], "std": [1, 1]})
    opt = module.configure_optimizers()
    g = torch.Generator().manual_seed(0)
    x = torch.randn(batch, 12, 2, 32, 32, generator=g)
    doy = torch.randint(1, 366, (batch, 12), generator=g)
    valid = torch.ones(batch, 12, dtype=torch.bool)
    y = torch.randint(1, 8, (batch, 32, 32), generator=g)
    module.train()

    dtype = autocast_dtype(precision, "cpu")

    def one() -> None:
        opt.zero_grad(set_to_none=True)
        with torch.autocast("cpu", dtype=dtype) if dtype is not None else contextlib.nullcontext():
            logits = module(x, doy, valid)
        loss = module.loss(logits.float(), y)
        loss.backward()
        opt.step()

    for _ in range(3):
        one()
    start = time.perf_counter()
    for _ in range(steps):
        one()
    return steps * batch / (time.perf_counter() - start)


def end_to_end(scene: Path, model_name: str, steps: int, workers: int, precision: str) -> float:
    """Samples/s of Trainer.fit (no validation) on a GeoTIFF scene, data preparation excluded."""
    from tropicrop.training import CropModule, TargetDataModule, make_trainer, prepare_data

    cfg = _cfg(scene, steps + 3, ["data.val_fraction=0", f"model.name={model_name}", f"trainer.num_workers={workers}"], precision)
    with tempfile.TemporaryDirectory() as tmp:
        data = prepare_data(cfg, cache_dir=Path(tmp) / "cache")  # as train() does: patches from the on-disk cache
        module = CropModule(model_name, {}, 2, list(data.classes.names), data.normalizer.to_dict())
        trainer = make_trainer(cfg, Path(tmp), has_val=False)
        times: list[float] = []

        def on_batch_start(*_: Any) -> None:
            times.append(time.perf_counter())

        module.on_train_batch_start = on_batch_start  # type: ignore[method-assign]
        trainer.fit(module, datamodule=TargetDataModule(data, data.scene_targets, cfg))
        end = time.perf_counter()
    # skip 3 warm-up steps; the last interval ends with fit's end (includes the final checkpoint write)
    return steps * cfg.optim.batch_size / (end - times[3])


def vunet_fraction(scene: Path, steps: int, epochs: int, precision: str) -> dict[str, float]:
    """Wall and summed training time of one VUnet vs 12 per-month nets with equal steps per net."""
    from tropicrop.training import train

    common = [f"trainer.max_epochs={epochs}", "trainer.patience=0", "data.val_limit=256"]
    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for mode, model in (("per-month", "unet_convlstm"), ("all-months", "vunet_convlstm")):
            cfg = _cfg(scene, steps, [*common, f"mode={mode}", f"model.name={model}"], precision)
            start = time.perf_counter()
            summary = train(cfg, Path(tmp) / mode)
            out[f"{mode} wall s"] = time.perf_counter() - start
            out[f"{mode} nets"] = len(summary.nets)
            out[f"{mode} train s"] = summary.train_seconds
    out["fraction (wall)"] = out["all-months wall s"] / out["per-month wall s"]
    out["fraction (train)"] = out["all-months train s"] / out["per-month train s"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256, help="synthetic scene side (px)")
    parser.add_argument("--steps", type=int, default=40, help="optimiser steps per measurement / per net")
    parser.add_argument("--epochs", type=int, default=2, help="epochs per net for the VUnet fraction")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--workers", type=int, default=0, help="DataLoader workers for end-to-end")
    parser.add_argument("--only", choices=["step", "e2e", "vunet"], default=None)
    parser.add_argument("--json", type=Path, default=None, help="also write the figures as JSON")
    parser.add_argument("--precision", default="auto", help="trainer.precision of every measurement (auto: bf16-mixed "
                        "where the CPU has bf16 units, as training does by default)")
    args = parser.parse_args()
    from tropicrop.precision import resolve_precision

    precision = resolve_precision(args.precision, "cpu")
    if args.threads:
        torch.set_num_threads(args.threads)
    from tropicrop.synthetic import write_pair

    results: dict[str, Any] = {"threads": torch.get_num_threads(), "torch": torch.__version__, "precision": precision}
    with tempfile.TemporaryDirectory() as tmp:
        write_pair(Path(tmp), preset="lem", size=args.size, seed=0)
        scene = Path(tmp) / "lem1920"
        print(f"CPU, {torch.get_num_threads()} threads, torch {torch.__version__}, precision {precision}; lem {args.size}px "
              "scene, B=16, T=12, 32x32")
        print("| measurement | unet_convlstm | vunet_convlstm |")
        print("|---|---:|---:|")
        if args.only in (None, "step", "e2e"):
            step = {m: step_alone(m, args.steps, precision) for m in ("unet_convlstm", "vunet_convlstm")}
            results["step samples/s"] = step
            print(f"| step alone, samples/s | {step['unet_convlstm']:.1f} | {step['vunet_convlstm']:.1f} |")
        if args.only in (None, "e2e"):
            e2e = {m: end_to_end(scene, m, args.steps, args.workers, precision) for m in ("unet_convlstm", "vunet_convlstm")}
            results["end-to-end samples/s"] = e2e
            print(f"| end-to-end fit, samples/s | {e2e['unet_convlstm']:.1f} | {e2e['vunet_convlstm']:.1f} |")
            ratio = {m: e2e[m] / step[m] for m in e2e}
            results["end-to-end / step"] = ratio
            print(f"| end-to-end / step (goal >= 0.9) | {ratio['unet_convlstm']:.2f} | {ratio['vunet_convlstm']:.2f} |")
        if args.only in (None, "vunet"):
            frac = vunet_fraction(scene, args.steps, args.epochs, precision)
            results["vunet fraction"] = frac
            print()
            print(f"12 per-month nets vs one VUnet, {args.epochs} epochs x {args.steps} steps per net, validation included:")
            for key, value in frac.items():
                print(f"  {key}: {value:.3f}" if isinstance(value, float) else f"  {key}: {value}")
            print(f"  VUnet time / per-month time (paper 0.257, goal <= 0.15): {frac['fraction (wall)']:.3f}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=float))
    write_results("training", training_figures(results), precision=precision,
                  settings={"size": args.size, "steps": args.steps, "epochs": args.epochs, "only": args.only,
                            "workers": args.workers, "threads": results["threads"]})


def training_figures(results: dict[str, Any]) -> list[Figure]:
    """The printed figures as the result file's list."""
    figures = []
    for key, unit in (("step samples/s", "samples/s"), ("end-to-end samples/s", "samples/s"), ("end-to-end / step", "ratio")):
        for model, value in results.get(key, {}).items():
            figures.append(Figure(f"{key}, {model}", round(float(value), 3), unit))
    for key, value in results.get("vunet fraction", {}).items():
        if isinstance(value, float):
            figures.append(Figure(f"VUnet / per-month nets, {key}", round(value, 4), "ratio" if "fraction" in key else "s"))
    return figures


if __name__ == "__main__":
    main()
