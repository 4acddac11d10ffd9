"""Few labels, measured on its own: the year-A VUnetConvLSTM of an adaptation benchmark experiment
fine-tuned on k labelled parcels per class of year B's train split, for each k, scored on B's test split.

Run after ``benchmarks/adaptation.py`` has trained the base run:
``python benchmarks/few_labels.py --exp runs/bench2/all --scene data/bench/all/lem1920 --k 1,3,10``.
(The same rows are part of the adaptation benchmark's experiment with ``--few``; this script gives the
curve when the whole ablation has not finished.)
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from results_file import Figure, write_results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--exp", default="runs/bench2/all")
    parser.add_argument("--scene", default="data/bench/all/lem1920")
    parser.add_argument("--k", default="1,3,10")
    parser.add_argument("--steps", type=int, default=60)
    args = parser.parse_args()

    import torch

    from tropicrop.adaptation import AdaptOptions, FewLabelOptions, adapt_run
    from tropicrop.evaluation import evaluate_predictions
    from tropicrop.inference import predict_run

    torch.set_num_threads(1)
    exp = Path(args.exp)
    figures = []
    for k in (int(v) for v in args.k.split(",")):
        run = exp / "few" / f"k{k}"
        options = AdaptOptions(methods=[], parcels=k, few_labels=FewLabelOptions(steps=args.steps, batch_size=8))
        record = adapt_run(exp / "runs" / "vunetconvlstm", Path(args.scene), run, options, force=True, progress=False)
        pred = exp / "few" / f"pred{k}"
        predict_run(run, Path(args.scene), pred, tile=128, overlap=16, progress=False)
        dates = evaluate_predictions(pred, Path(args.scene), split="test").dates
        stats = record["nets"]["all-months"]["few_labels"]
        print(f"k={k:>2}: average F1 {100 * np.mean([d.macro_f1 for d in dates]):.1f}, OA "
              f"{100 * np.mean([d.oa for d in dates]):.1f}; {stats['labelled_pixels']} labelled px, "
              f"parcels {stats['parcels_per_class']}", flush=True)
        f1, oa = (100 * float(np.mean([getattr(d, key) for d in dates])) for key in ("macro_f1", "oa"))
        figures += [Figure(f"average F1, {k} parcels per class", round(f1, 2), "%"),
                    Figure(f"average OA, {k} parcels per class", round(oa, 2), "%")]
    write_results("few_labels", figures, settings={"exp": args.exp, "scene": args.scene, "k": args.k, "steps": args.steps})


if __name__ == "__main__":
    main()
