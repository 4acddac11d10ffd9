"""Fields read off the labels, so validation can hold out whole fields and not only pixels.

Validation patches are pixel-disjoint from training patches (:func:`tropicrop.windows.patches.split_validation`),
but a field larger than a validation block lies under both: the network is then validated on pixels of a
field whose other pixels it trained on, validation accuracy reads high, and the temperature fitted on it
makes the maps overconfident (docs/guide/confidence.md). With ``data.val_split: fields`` validation is a
random set of whole fields: their labels are never trained on, and validation scores only their pixels
(its patches may show neighbouring training fields as input, as test-area context does).

A field here is a 4-connected region of labelled pixels with the same label at every labelled date (the
label rasters of a parcel map: one class per parcel and date). Two touching parcels with the same history
merge into one field, which only holds out a little more; no parcel file is needed.
"""

from __future__ import annotations

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components


def label_fields(labels: np.ndarray) -> np.ndarray:
    """Field number of every pixel of ``labels`` (L, H, W) (any integer dtype, 0 = no label at that date):
    (H, W) int32, 0 where no date is labelled, 1..N on the fields (4-connected, same label at every date).

    Memory: about 11 bytes per pixel (masks, node numbers, the field numbers) plus a few tens per labelled
    pixel (the graph scipy's connected components run on, two edges a pixel); the labels are read one date at
    a time, so an on-disk stack stays on disk.
    """
    _, h, w = labels.shape
    labelled = np.zeros((h, w), dtype=bool)
    same_right = np.ones((h, max(w - 1, 0)), dtype=bool)
    same_down = np.ones((max(h - 1, 0), w), dtype=bool)
    for layer in labels:
        layer = np.asarray(layer)
        labelled |= layer > 0
        same_right &= layer[:, :-1] == layer[:, 1:]
        same_down &= layer[:-1] == layer[1:]
    node = np.full((h, w), -1, dtype=np.int32)  # graph node of each labelled pixel (a region holds < 2**31)
    count = int(labelled.sum())
    node[labelled] = np.arange(count)
    fields = np.zeros((h, w), dtype=np.int32)
    if count == 0:
        return fields
    right = same_right & labelled[:, :-1] & labelled[:, 1:]
    down = same_down & labelled[:-1] & labelled[1:]
    rows = np.concatenate([node[:, :-1][right], node[:-1][down]])
    cols = np.concatenate([node[:, 1:][right], node[1:][down]])
    graph = coo_matrix((np.ones(len(rows), dtype=np.int8), (rows, cols)), shape=(count, count))
    _, component = connected_components(graph, directed=False)
    fields[labelled] = component.astype(np.int32) + 1
    return fields


def choose_fields(fields: np.ndarray, labels: np.ndarray, fraction: float, seed: int,
                  class_cap: float = 2.0) -> np.ndarray:
    """(H, W) bool: whole fields of ``fields`` (:func:`label_fields`), drawn in random order (``seed``), until
    they hold ``fraction`` of the pixels labelled in ``labels`` (L, H, W) (the target dates).

    Stratified: a field is skipped when it would put more than ``class_cap * fraction`` of a class's pixels
    at one of the dates into validation. With few fields a random draw can otherwise take most of a class
    (on the demo's year-B train area, 3 of its 7 classes at some dates), which leaves the network without it
    and its validation scores with classes it never learnt. A class of too few fields is then not validated.
    """
    labels = np.asarray(labels)
    labelled = (labels > 0).any(axis=0)
    count = int(fields.max())
    sizes = np.bincount(fields[labelled], minlength=count + 1)
    rep = np.zeros(count + 1, dtype=np.int64)  # a pixel of each field (labels are uniform within a field)
    ids, first = np.unique(fields.ravel(), return_index=True)
    rep[ids] = first
    history = labels.reshape(labels.shape[0], -1)[:, rep]  # (L, fields + 1): each field's class per date
    classes = int(labels.max()) + 1
    totals = np.zeros((labels.shape[0], classes))
    for d in range(labels.shape[0]):
        totals[d] = np.bincount(history[d, 1:], weights=sizes[1:], minlength=classes)
    held = np.zeros_like(totals)
    goal, taken, chosen = fraction * sizes[1:].sum(), 0, []
    dates = np.arange(labels.shape[0])
    for field in np.random.default_rng(seed).permutation(np.flatnonzero(sizes[1:]) + 1):
        if taken >= goal:
            break
        cls = history[:, field]
        on = cls > 0
        if np.any(held[dates[on], cls[on]] + sizes[field] > class_cap * fraction * totals[dates[on], cls[on]]):
            continue
        held[dates[on], cls[on]] += sizes[field]
        chosen.append(int(field))
        taken += int(sizes[field])
    return np.isin(fields, np.array(chosen, dtype=np.int32))


def patch_sums(mask: np.ndarray, origins: np.ndarray, size: int) -> np.ndarray:
    """(N,) pixels of ``mask`` under the ``size`` patch at each of ``origins`` (N, 2); memory of one patch at a
    time (a whole-region integral image would take 8 bytes a pixel: 590 MB at the paper's LEM size)."""
    return np.array([int(np.count_nonzero(mask[r:r + size, c:c + size])) for r, c in np.asarray(origins).reshape(-1, 2)],
                    dtype=np.int64)


def cover(mask: np.ndarray, origins: np.ndarray, size: int) -> np.ndarray:
    """The origins (of ``origins`` (N, 2)) of ``size`` patches that cover the pixels of ``mask`` greedily:
    the patch over most pixels not yet covered, again and again, while one covers any; pixels under no
    candidate patch stay uncovered. After each choice only the patches overlapping it are recounted."""
    left = np.asarray(mask, dtype=bool).copy()
    origins = np.asarray(origins).reshape(-1, 2)
    counts = patch_sums(left, origins, size)
    chosen = []
    while len(counts) and counts.max() > 0:
        best = int(np.argmax(counts))
        r, c = origins[best]
        left[r:r + size, c:c + size] = False
        chosen.append(best)
        near = np.flatnonzero((np.abs(origins[:, 0] - r) < size) & (np.abs(origins[:, 1] - c) < size))
        counts[near] = patch_sums(left, origins[near], size)
    return origins[np.sort(np.array(chosen, dtype=np.int64))]
