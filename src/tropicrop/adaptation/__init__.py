"""Unsupervised adaptation of a trained run to a new agricultural year, from that year's images only.

``data`` (year-B images, never labels), ``batchnorm`` (AdaBN), ``timeshift`` (TimeMatch-style day-of-year
offset), ``selftrain`` (mean-teacher pseudo-labels), ``fewlabels`` (fine-tuning on k surveyed parcels per
class, the one path that reads year-B labels), ``methods`` (one class per method, with the run kinds it
accepts), ``state`` (the run and its models being adapted) and ``run`` (the loop, and the adapted run
directory). Their options are the schemas of :mod:`tropicrop.config.adaptation`.
"""

from tropicrop.adaptation.run import adapt_run
from tropicrop.adaptation.timeshift import ShiftEstimate, estimate_shift
from tropicrop.config.adaptation import METHODS, AdaptOptions, FewLabelOptions, SelfTrainingOptions

__all__ = ["METHODS", "AdaptOptions", "FewLabelOptions", "SelfTrainingOptions", "ShiftEstimate", "adapt_run",
           "estimate_shift"]
