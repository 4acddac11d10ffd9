"""From a scene to training samples: target-month windows, normalisation, patch sampling, batch datasets.

A *window* for target date ``d`` holds the ``length`` (12 in the paper) acquisitions ending at ``d``;
acquisitions before the first one are zero images flagged ``valid = False`` (paper, section 4.3). Training
patches (32 x 32 by default) take their labels from train pixels only (pixels outside the training split are
label 0, ignored by the loss). With ``test_inputs="exclude"`` a patch never covers a test pixel, not even as
input (the strict rule); with ``"context"`` the images of test-area pixels may be input around train labels.

Batches are built whole by a map-style dataset keyed by a global batch number, so their content depends on
(seed, epoch, batch) only: a resumed run sees the same batches as an uninterrupted one, and DataLoader
workers or DDP ranks need no shared state.

One module per concept, imported from where it lives (this package re-exports nothing):

* :mod:`.dates`: the dates of a window (``target_window``, ``WindowIndex``) and day-of-year helpers;
* :mod:`.normalize`: per-band standardisation (``Normalizer``);
* :mod:`.tensors`: a scene region ready for batching (``SceneTensors``, ``load_scene_tensors``);
* :mod:`.patches`: patch origins and the spatially disjoint validation split, in bounded memory;
* :mod:`.augment`: rotations and flips of a batch;
* :mod:`.datasets`: training and validation batch datasets (``TrainBatches``, ``EvalBatches``);
* :mod:`.sampler`: the global batch numbers of each optimiser step and rank (``StepSampler``).
"""
