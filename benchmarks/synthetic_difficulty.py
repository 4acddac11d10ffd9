"""How hard are the synthetic scenes? Per-pixel Random Forest on 12-month VV/VH profiles, per labelled month.

For every labelled date of the second year (lem1920) it trains one classifier per month, as the paper's
baselines do, on the profile of the (up to) 12 dates ending at that date (VV and VH in dB):

* same-year:  train split of lem1920 -> test split of lem1920  (the paper's Baseline 1 setting)
* cross-year: all labelled pixels of lem1718 at the same calendar month -> test split of lem1920 (Baseline 2)
* cross-year, train parcels: as cross-year, but only lem1718's train split, the parcels the same-year
  forest learns from: the one difference from same-year is then the year, which is what ``--shift none``
  checks (the paper's Baseline 2 also learns from the test area's parcels in the other year)

Classes below 5.3 % of the labelled pixels are merged into "Other", as in the paper. Pixels are 3 x 3
multilooked (boxcar in linear power) before classifying, a cheap stand-in for the spatial context that the
paper's convolutional models use; the mean on raw single-look pixels is printed too. It prints overall
accuracy (OA) and macro F1 per month and on average, the most confused class pairs per month, the time to
generate and write the pair, and saves a PNG: mean VV/VH per class over lem1920's labelled dates and the class
percentages per date of both years.

    python benchmarks/synthetic_difficulty.py --preset lem --size 512 --seed 0
"""

from __future__ import annotations

import argparse
import datetime as dt
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import confusion_matrix, f1_score

from results_file import Figure, write_results
from tropicrop.synthetic import SyntheticYear, generate_pair, write_pair
from tropicrop.synthetic.shift import SHIFTS

OTHER_BELOW = 0.053


def merged_classes(years: tuple[SyntheticYear, ...]) -> tuple[np.ndarray, list[str]]:
    """Lookup code -> merged index (-1 = no reference) and merged names; rare classes become "Other"."""
    classes = years[0].classes
    counts = np.zeros(max(classes) + 1)
    for y in years:
        counts += np.bincount(y.labels.ravel(), minlength=len(counts))
    share = counts[1:] / counts[1:].sum()
    kept = [c for c in sorted(classes) if share[c - 1] >= OTHER_BELOW]
    names = [classes[c] for c in kept] + ["Other"]
    lut = np.full(len(counts), len(kept), dtype=np.int64)
    lut[0] = -1
    for i, c in enumerate(kept):
        lut[c] = i
    return lut, names


def multilook(images: np.ndarray, looks: int) -> np.ndarray:
    """Boxcar mean of ``looks`` x ``looks`` pixels in linear power, back in dB: (T, C, H, W) -> same shape."""
    if looks <= 1:
        return images
    power = np.power(10.0, images / 10.0)
    r = looks // 2
    padded = np.pad(power, ((0, 0), (0, 0), (r, r), (r, r)), mode="edge")
    h, w = images.shape[-2:]
    total = sum(padded[..., i:i + h, j:j + w] for i in range(looks) for j in range(looks))
    return (10.0 * np.log10(total / looks**2)).astype(np.float32)


def profiles(images: np.ndarray, t: int, k: int) -> np.ndarray:
    """(H*W, 2k) features: VV and VH of the k dates ending at date index ``t`` of ``images`` (T, 2, H, W)."""
    x = images[t - k + 1:t + 1]
    return x.reshape(2 * k, -1).T


def sample(rng: np.random.Generator, mask: np.ndarray, n: int) -> np.ndarray:
    """Up to ``n`` random flat indices where ``mask`` (H, W) is true."""
    idx = np.flatnonzero(mask)
    return rng.choice(idx, size=min(n, idx.size), replace=False)


def fit_predict(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, seed: int) -> np.ndarray:
    model = RandomForestClassifier(n_estimators=60, min_samples_leaf=3, max_features="sqrt", n_jobs=2,
                                   random_state=seed)
    model.fit(x_train, y_train)
    pred: np.ndarray = model.predict(x_test)
    return pred


def confused_pairs(y_true: np.ndarray, y_pred: np.ndarray, names: list[str], top: int = 2) -> str:
    """The ``top`` class pairs with most errors between them (both directions), as % of test pixels."""
    cm = confusion_matrix(y_true, y_pred, labels=range(len(names))).astype(float)
    both = np.triu(cm + cm.T, 1) / max(len(y_true), 1) * 100
    order = np.dstack(np.unravel_index(np.argsort(-both, axis=None), both.shape))[0][:top]
    return ", ".join(f"{names[i]}/{names[j]} {both[i, j]:.1f}%" for i, j in order if both[i, j] > 0)


def window_features(images: np.ndarray, dates: tuple[dt.date, ...], t: int, length: int = 12) -> np.ndarray:
    """(H*W, 2*length + 2) features of the all-months learner: the window of ``length`` dates ending at date
    index ``t`` (dates before the first are -99, a value no pixel has) and the target's day of year (sin, cos)."""
    n, h, w = length, *images.shape[-2:]
    x = np.full((n, 2, h * w), -99.0, np.float32)
    first = max(0, t - n + 1)
    x[n - (t - first + 1):] = images[first:t + 1].reshape(t - first + 1, 2, -1)
    doy = 2 * np.pi * dates[t].timetuple().tm_yday / 365.25
    extra = np.broadcast_to(np.array([np.sin(doy), np.cos(doy)], np.float32)[:, None], (2, h * w))
    return np.concatenate([x.reshape(2 * n, -1), extra]).T


def evaluate(train_year: SyntheticYear, test_year: SyntheticYear, n_train: int, n_test: int, seed: int,
             looks: int, table: bool = True) -> np.ndarray:
    """Per-month same-year and cross-year OA and macro F1 on ``looks`` x ``looks`` multilooked pixels.

    Besides the per-month forests (one per test month, the paper's Baselines 1 and 2), one all-months forest
    is trained on every labelled date of ``train_year`` (windows + target day of year, what VUnetConvLSTM
    does) and tested at every month. Prints one row per labelled month when ``table``; returns the means
    (same OA, cross OA, same F1, cross F1, all-months OA, all-months F1, cross-year train-parcels F1).
    """
    img_a, img_b = multilook(train_year.images, looks), multilook(test_year.images, looks)
    lut, names = merged_classes((train_year, test_year))
    rng = np.random.default_rng(seed)
    rng_parcels = np.random.default_rng(seed + 1)  # its own stream: the other columns draw as before
    all_months = _fit_all_months(rng, img_a, train_year, lut, n_train, seed)
    if table:
        print(f"classes: {', '.join(names)} (Other = classes below {OTHER_BELOW:.1%} of labelled pixels)")
        print(f"{'date':10s} {'k':>2s} {'same OA':>7s} {'cross OA':>8s} {'drop':>5s} {'same F1':>7s} "
              f"{'cross F1':>8s} {'all-m F1':>8s} {'A-tr F1':>7s}  most confused: same-year | cross-year")
    rows = []
    for j, date in enumerate(test_year.labelled_dates):
        a_j = next((i for i, d in enumerate(train_year.labelled_dates) if d.month == date.month), None)
        if a_j is None:
            continue
        t_b, t_a = test_year.dates.index(date), train_year.dates.index(train_year.labelled_dates[a_j])
        k = min(12, t_a + 1, t_b + 1)
        yb, ya = lut[test_year.labels[j]], lut[train_year.labels[a_j]]
        xb, xa = profiles(img_b, t_b, k), profiles(img_a, t_a, k)
        test = sample(rng, (yb >= 0) & (test_year.split == 2), n_test)
        same_train = sample(rng, (yb >= 0) & (test_year.split == 1), n_train)
        cross_train = sample(rng, ya >= 0, n_train)
        truth = yb.ravel()[test]
        same = fit_predict(xb[same_train], yb.ravel()[same_train], xb[test], seed)
        cross = fit_predict(xa[cross_train], ya.ravel()[cross_train], xb[test], seed)
        parcels_train = sample(rng_parcels, (ya >= 0) & (train_year.split == 1), n_train)
        cross_parcels = fit_predict(xa[parcels_train], ya.ravel()[parcels_train], xb[test], seed)
        allm = all_months.predict(window_features(img_b, test_year.dates, t_b)[test])
        row = (np.mean(same == truth), np.mean(cross == truth),
               f1_score(truth, same, average="macro"), f1_score(truth, cross, average="macro"),
               np.mean(allm == truth), f1_score(truth, allm, average="macro"),
               f1_score(truth, cross_parcels, average="macro"))
        rows.append(row)
        if table:
            print(f"{date:%Y-%m-%d} {k:2d} {row[0]:7.3f} {row[1]:8.3f} {100 * (row[0] - row[1]):5.1f} "
                  f"{row[2]:7.3f} {row[3]:8.3f} {row[5]:8.3f} {row[6]:7.3f}  {confused_pairs(truth, same, names)} | "
                  f"{confused_pairs(truth, cross, names, top=1)}")
    mean: np.ndarray = np.mean(rows, axis=0)
    return mean


def _fit_all_months(rng: np.random.Generator, images: np.ndarray, year: SyntheticYear, lut: np.ndarray,
                    n_train: int, seed: int) -> RandomForestClassifier:
    """One forest on every labelled date of ``year`` (``n_train`` // 3 pixels per date, all labelled pixels)."""
    xs, ys = [], []
    for j, date in enumerate(year.labelled_dates):
        y = lut[year.labels[j]]
        pick = sample(rng, y >= 0, max(1, n_train // 3))
        xs.append(window_features(images, year.dates, year.dates.index(date))[pick])
        ys.append(y.ravel()[pick])
    model = RandomForestClassifier(n_estimators=60, min_samples_leaf=3, max_features="sqrt", n_jobs=2,
                                   random_state=seed)
    return model.fit(np.concatenate(xs), np.concatenate(ys))


def print_mean(label: str, mean: np.ndarray) -> None:
    print(f"{label:13s} {mean[0]:7.3f} {mean[1]:8.3f} {100 * (mean[0] - mean[1]):5.1f} {mean[2]:7.3f} "
          f"{mean[3]:8.3f} {mean[5]:8.3f} {mean[6]:7.3f}")


def recovered(mean: np.ndarray) -> float:
    """Share of the cross-year drop (same-year F1 - cross-year per-month F1) that the all-months forest
    recovers: (all-months F1 - cross-year F1) / drop; nan when there is no drop to recover."""
    drop = mean[2] - mean[3]
    return float((mean[5] - mean[3]) / drop) if drop > 0.005 else float("nan")


def summary_row(label: str, mean: np.ndarray) -> str:
    """One row of the issue's table: same-year F1, cross-year per-month F1, all-months F1, drop, drop
    recovered, and the cross-year per-month F1 learnt from year A's train parcels with its gap to same-year."""
    share = recovered(mean)
    return (f"| {label} | {100 * mean[2]:.1f} | {100 * mean[3]:.1f} | {100 * mean[5]:.1f} | "
            f"{100 * (mean[2] - mean[3]):.1f} | {'n/a' if np.isnan(share) else f'{100 * share:.0f} %'} | "
            f"{100 * mean[6]:.1f} | {100 * (mean[2] - mean[6]):.1f} |")


def plot_figure(first: SyntheticYear, second: SyntheticYear, path: Path) -> None:
    """Top: mean VV and VH per main class over the labelled dates of ``second`` (band = pixel IQR).
    Bottom: class percentages per labelled date of both years (the paper's Figure 5)."""
    palette = [plt.get_cmap("tab10")(i) for i in range(10)] + [(0.0, 0.0, 0.0, 1.0), (0.9, 0.75, 0.0, 1.0)]
    colors = {name: palette[i % len(palette)] for i, name in enumerate(first.classes.values())}
    fig, axes = plt.subplots(2, 2, figsize=(15, 9))
    _plot_profiles(second, axes[0], colors)
    for ax, year in zip(axes[1], (first, second), strict=True):
        _plot_shares(year, ax, colors)
    handles, labels = axes[1, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="center right", fontsize=9)
    fig.tight_layout(rect=(0, 0, 0.9, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _plot_profiles(year: SyntheticYear, axes: np.ndarray, colors: Mapping[str, tuple[float, ...]]) -> None:
    lab_idx = [year.dates.index(d) for d in year.labelled_dates]
    total = (year.labels > 0).sum()
    enough = 0.01 * total / len(lab_idx)                      # a class needs 1 % of a date's pixels
    for code, name in year.classes.items():
        masks = [lab == code for lab in year.labels]
        if sum(int(m.sum()) for m in masks) < OTHER_BELOW * total:
            continue                                          # rare classes ("Other") would only clutter
        for b, ax in enumerate(axes):
            q = np.array([np.percentile(year.images[t, b][m], [25, 75]) if m.sum() >= enough else [np.nan] * 2
                          for t, m in zip(lab_idx, masks, strict=True)])
            mean = [10 * np.log10(np.mean(10 ** (year.images[t, b][m] / 10))) if m.sum() >= enough else np.nan
                    for t, m in zip(lab_idx, masks, strict=True)]
            ax.plot(year.labelled_dates, mean, marker="o", ms=3, color=colors[name])
            ax.fill_between(year.labelled_dates, q[:, 0], q[:, 1], color=colors[name], alpha=0.12)
    for b, ax in enumerate(axes):
        ax.set_title(f"{year.name}: {year.bands[b]} per class (mean of power; band = pixel IQR)")
        ax.set_ylabel("sigma0 [dB]")
        ax.grid(alpha=0.3)
        ax.tick_params(axis="x", rotation=45)


def _plot_shares(year: SyntheticYear, ax: plt.Axes, colors: Mapping[str, tuple[float, ...]]) -> None:
    counts = np.array([np.bincount(lab.ravel(), minlength=max(year.classes) + 1)[1:] for lab in year.labels])
    shares = 100 * counts / counts.sum(axis=1, keepdims=True)
    ticks = [f"{d:%Y-%m}" for d in year.labelled_dates]
    bottom = np.zeros(len(ticks))
    for i, name in enumerate(year.classes.values()):
        ax.bar(ticks, shares[:, i], bottom=bottom, color=colors[name], label=name)
        bottom += shares[:, i]
    ax.set_title(f"{year.name}: class percentages per labelled date")
    ax.set_ylabel("% of labelled pixels")
    ax.tick_params(axis="x", rotation=45)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="lem")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--shift", default="all", help=f"one of {', '.join(SHIFTS)}, or 'each' for every one")
    parser.add_argument("--train-pixels", type=int, default=15000)
    parser.add_argument("--test-pixels", type=int, default=40000)
    parser.add_argument("--looks", type=int, default=3, help="boxcar multilook before classifying (1 = raw)")
    parser.add_argument("--png", default="docs/synthetic_profiles.png", help="figure path ('' for none)")
    args = parser.parse_args()

    shifts = list(SHIFTS) if args.shift == "each" else [args.shift]
    rows = []
    figures: list[Figure] = []
    for shift in shifts:
        start = time.perf_counter()
        first, second = generate_pair(args.preset, args.size, args.seed, shift)
        generated = time.perf_counter() - start
        print(f"\n=== --shift {shift}: preset {args.preset}, {args.size} x {args.size} px, seed {args.seed}, "
              f"generated in {generated:.1f} s")
        print(f"rain onset of the labelled season: {first.name} {first.labelled_onset()}, "
              f"{second.name} {second.labelled_onset()}")
        print(f"per-pixel Random Forest, {args.looks}x{args.looks} multilooked pixels (lem1920 test split):")
        mean = evaluate(first, second, args.train_pixels, args.test_pixels, args.seed, args.looks)
        print_mean("mean", mean)
        rows.append(summary_row(f"--shift {shift}", mean))
        figures += difficulty_figures(shift, mean)
        if shift == "all" and args.png:  # the figure of the default pair
            with tempfile.TemporaryDirectory() as tmp:
                start = time.perf_counter()
                write_pair(Path(tmp), args.preset, args.size, args.seed, shift=shift)
                print(f"generated + written in {time.perf_counter() - start:.1f} s")
            plot_figure(first, second, Path(args.png))
            print(f"saved {args.png}")
    print(f"\nmacro F1 (%), {args.preset} {args.size} px seed {args.seed}, {args.looks}x{args.looks} looks; "
          "recovered = (all-months - cross) / (same - cross)")
    print("| pair | same-year F1 | cross-year per-month F1 | cross-year all-months F1 | drop | drop recovered "
          "| cross-year F1, A's train parcels | its drop |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    print("\n".join(rows))
    write_results("synthetic_difficulty", figures, settings={"preset": args.preset, "size": args.size, "seed": args.seed,
                                                             "looks": args.looks, "train_pixels": args.train_pixels,
                                                             "test_pixels": args.test_pixels})


def difficulty_figures(shift: str, mean: np.ndarray) -> list[Figure]:
    """The summary row of one pair as the result file's figures (macro F1 in %)."""
    share = recovered(mean)
    return [Figure(f"--shift {shift}, same-year F1", round(100 * float(mean[2]), 2), "%"),
            Figure(f"--shift {shift}, cross-year per-month F1", round(100 * float(mean[3]), 2), "%"),
            Figure(f"--shift {shift}, cross-year all-months F1", round(100 * float(mean[5]), 2), "%"),
            Figure(f"--shift {shift}, drop recovered", None if np.isnan(share) else round(100 * share, 1), "%")]


if __name__ == "__main__":
    main()
