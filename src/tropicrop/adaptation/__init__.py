"""Unsupervised adaptation of a trained run to a new agricultural year, from that year's images only.

``data`` (year-B images, never labels), ``batchnorm`` (AdaBN), ``timeshift`` (TimeMatch-style day-of-year
offset), ``selftrain`` (mean-teacher pseudo-labels), ``fewlabels`` (fine-tuning on k surveyed parcels per
class, the one path that reads year-B labels) and ``run`` (the adapted run directory).
"""

from tropicrop.adaptation.fewlabels import FewLabelOptions
from tropicrop.adaptation.run import METHODS, AdaptOptions, adapt_run, check_options
from tropicrop.adaptation.selftrain import SelfTrainingOptions
from tropicrop.adaptation.timeshift import ShiftEstimate, estimate_shift

__all__ = ["METHODS", "AdaptOptions", "FewLabelOptions", "SelfTrainingOptions", "ShiftEstimate", "adapt_run",
           "check_options", "estimate_shift"]
