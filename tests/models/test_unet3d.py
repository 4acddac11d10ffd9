"""3D U-Net specifics: temporal reductions and padded dates kept out of BatchNorm."""

from __future__ import annotations

import pytest
import torch

from tiny import SMALL, like_trained, make_inputs
from tropicrop.models import build
from tropicrop.models.unet3d import TemporalReduction


@pytest.mark.parametrize("reduction", ["mean", "max", "attention"])
def test_every_reduction_masks_padded_dates_exactly(reduction: str) -> None:
    torch.manual_seed(0)
    model = like_trained(build("unet3d", num_classes=4, **SMALL["unet3d"], reduction=reduction))
    images, doy, valid = make_inputs(2, 3, 16, 16)
    pad_images = torch.cat([1e3 * torch.randn(2, 2, 2, 16, 16), images], dim=1)
    pad_doy = torch.cat([torch.randint(1, 366, (2, 2)), doy], dim=1)
    pad_valid = torch.cat([torch.zeros(2, 2, dtype=torch.bool), valid], dim=1)
    with torch.no_grad():
        torch.testing.assert_close(model(pad_images, pad_doy, pad_valid), model(images, doy, valid),
                                   atol=1e-5, rtol=1e-5)


def test_reductions_over_valid_dates() -> None:
    x = torch.arange(6, dtype=torch.float32).view(1, 3, 2, 1, 1)  # dates 0, 1, 2 hold (0,1), (2,3), (4,5)
    valid = torch.tensor([[False, True, True]])
    assert TemporalReduction(2, "mean")(x, valid).flatten().tolist() == [3.0, 4.0]
    assert TemporalReduction(2, "max")(x, valid).flatten().tolist() == [4.0, 5.0]
    with pytest.raises(ValueError, match="reduction"):
        TemporalReduction(2, "median")


def test_padded_dates_never_reach_batchnorm_statistics() -> None:
    model = build("unet3d", num_classes=4, **SMALL["unet3d"]).train()
    images, doy, valid = make_inputs(2, 4, 16, 16)
    images[:, :2] = 1e6
    valid[:, :2] = False
    model(images, doy, valid)
    first_bn = model.encoder[0].first.norm
    assert first_bn.running_mean.abs().max() < 10
