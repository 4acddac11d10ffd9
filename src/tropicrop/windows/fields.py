"""Fields read off the labels, so validation can hold out whole fields and not only pixels.

Validation patches are pixel-disjoint from training patches (:func:`tropicrop.windows.patches.split_validation`),
but a field larger than a validation block lies under both: the network is then validated on pixels of a
field whose other pixels it trained on, validation accuracy reads high, and the temperature fitted on it
makes the maps overconfident (docs/guide/confidence.md). With ``data.val_split: fields`` no label of a
field that reaches a validation patch is trained on.

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

    Memory: a few bytes per pixel plus about 16 per labelled pixel (the graph scipy's connected components
    run on); the labels are read one date at a time, so an on-disk stack stays on disk.
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
    node = np.full((h, w), -1, dtype=np.int64)
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


def fields_under(fields: np.ndarray, origins: np.ndarray, size: int) -> np.ndarray:
    """(H, W) bool: every pixel of every field (of :func:`label_fields`) that has a pixel under one of the
    ``size`` patches at ``origins`` (N, 2) (row, col)."""
    touched: set[int] = set()
    for row, col in np.asarray(origins).reshape(-1, 2):
        touched.update(np.unique(fields[row:row + size, col:col + size]).tolist())
    touched.discard(0)
    if not touched:
        return np.zeros(fields.shape, dtype=bool)
    return np.isin(fields, np.fromiter(touched, dtype=np.int32))
