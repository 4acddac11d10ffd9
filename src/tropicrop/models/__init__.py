"""Networks for crop mapping from image time series, built by name with :func:`build`.

Every model maps ``images (B, T, C, H, W)`` float, ``doy (B, T)`` day of year and ``valid (B, T)`` bool to
``logits (B, K, H, W)`` for the last date of the sequence.
"""

from tropicrop.models.convlstm import ConvLSTM
from tropicrop.models.registry import (
    MODELS,
    available_models,
    build,
    describe_models,
    is_sequence_model,
    model_options,
)
from tropicrop.models.unet3d import UNet3D
from tropicrop.models.unet_convlstm import (
    EncoderFeatures,
    SequenceFeatures,
    UnetConvLSTM,
    VUnetConvLSTM,
    day_of_year_encoding,
)
from tropicrop.models.utae import UTAE
from tropicrop.models.vunet_convlstm_seq import VUnetConvLSTMSeq

__all__ = [
    "MODELS",
    "UTAE",
    "ConvLSTM",
    "EncoderFeatures",
    "SequenceFeatures",
    "UNet3D",
    "UnetConvLSTM",
    "VUnetConvLSTM",
    "VUnetConvLSTMSeq",
    "available_models",
    "build",
    "day_of_year_encoding",
    "describe_models",
    "is_sequence_model",
    "model_options",
]
