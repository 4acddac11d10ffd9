"""The fast networks equal the paper's plain ones (tropicrop.models.reference), in outputs and gradients."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

from tropicrop.models import build
from tropicrop.models.reference import REFERENCES

SMALL = {"encoder_channels": (4, 4, 8, 8), "lstm_channels": 6, "decoder_channels": (8, 4, 4), "head_channels": 4}


def pair(name: str, padding: str) -> tuple[nn.Module, nn.Module]:
    """A fast network with perturbed weights and BatchNorm statistics, and the reference with its state dict."""
    fast = build(name, 2, num_classes=5, padding=padding, **SMALL).double()
    gen = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for key, tensor in fast.state_dict().items():
            if tensor.is_floating_point():
                tensor.add_(0.2 * torch.randn(tensor.shape, generator=gen, dtype=tensor.dtype))
                if key.endswith("running_var"):
                    tensor.abs_().add_(0.5)
    reference = REFERENCES[name](2, 5, padding=padding, **SMALL).double()
    reference.load_state_dict(fast.state_dict(), strict=True)  # same parameter names, same shapes
    return fast, reference


def inputs() -> tuple[Tensor, Tensor, Tensor]:
    """Two sequences of 5 dates on a 13 x 19 tile (padded inside to 16 x 24); the second has 2 padded dates."""
    gen = torch.Generator().manual_seed(0)
    images = torch.randn(2, 5, 2, 13, 19, generator=gen, dtype=torch.float64)
    doy = torch.randint(1, 366, (2, 5), generator=gen)
    valid = torch.ones(2, 5, dtype=torch.bool)
    valid[1, :2] = False
    images[1, :2] = 0.0  # what the windows hold at padded dates
    return images, doy, valid


@pytest.mark.parametrize("padding", ["mask", "zeros"])
@pytest.mark.parametrize("name", ["unet_convlstm", "vunet_convlstm"])
@pytest.mark.parametrize("train", [False, True])
def test_fast_network_equals_the_reference_in_outputs_and_gradients(name: str, padding: str, train: bool) -> None:
    fast, reference = pair(name, padding)
    fast.train(train)
    reference.train(train)
    images, doy, valid = inputs()
    x_fast, x_ref = images.clone().requires_grad_(), images.clone().requires_grad_()
    out_fast, out_ref = fast(x_fast, doy, valid), reference(x_ref, doy, valid)
    torch.testing.assert_close(out_fast, out_ref, rtol=1e-10, atol=1e-10)
    weights = torch.randn(out_fast.shape, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    (out_fast * weights).sum().backward()
    (out_ref * weights).sum().backward()
    torch.testing.assert_close(x_fast.grad, x_ref.grad, rtol=1e-9, atol=1e-10)
    grads_ref = dict(reference.named_parameters())
    for key, param in fast.named_parameters():
        assert param.grad is not None and grads_ref[key].grad is not None, key
        torch.testing.assert_close(param.grad, grads_ref[key].grad, rtol=1e-9, atol=1e-10, msg=key)


def test_the_reference_sees_the_day_of_year_only_in_the_v_network() -> None:
    images, doy, valid = inputs()
    for name, changes in (("unet_convlstm", False), ("vunet_convlstm", True)):
        _, reference = pair(name, "mask")
        reference.eval()
        with torch.no_grad():
            moved = not torch.allclose(reference(images, doy, valid), reference(images, (doy + 90) % 365 + 1, valid))
        assert moved == changes, name


def test_a_wrong_padding_mode_would_be_caught() -> None:
    """The equivalence test can fail: the mask and zeros networks differ on a window with padded dates."""
    fast, _ = pair("unet_convlstm", "mask")
    _, zeros = pair("unet_convlstm", "zeros")
    images, doy, valid = inputs()
    fast.eval()
    zeros.eval()
    with torch.no_grad():
        assert not torch.allclose(fast(images, doy, valid)[1], zeros(images, doy, valid)[1])
