"""Properties every temporal network of issue 17 shares (utae, unet3d, vunet_convlstm_seq): the common
interface on any tile size, padded dates masked exactly, batch independence, and a training step that
learns."""

from __future__ import annotations

import pytest
import torch

from tiny import SMALL, like_trained, make_inputs, with_padded_dates
from tropicrop.losses import FocalLoss
from tropicrop.models import build, describe_models

NETWORKS = list(SMALL)


@pytest.mark.parametrize("name", NETWORKS)
@pytest.mark.parametrize("size", [(32, 32), (37, 53), (9, 13)])
def test_returns_last_date_logits_for_any_tile_size(name: str, size: tuple[int, int]) -> None:
    model = build(name, num_classes=6, **SMALL[name])
    images, doy, valid = make_inputs(2, 4, *size)
    valid[0, 0] = False
    logits = model(images, doy, valid)
    assert logits.shape == (2, 6, *size)
    assert torch.isfinite(logits).all()


@pytest.mark.parametrize("name", NETWORKS)
def test_leading_padded_dates_give_the_shorter_windows_output(name: str) -> None:
    torch.manual_seed(0)
    model = like_trained(build(name, num_classes=5, **SMALL[name]))
    images, doy, valid = make_inputs(2, 4, 24, 20)
    k = 3
    pad_images, pad_doy, pad_valid = with_padded_dates(images, doy, valid, k, scale=100)  # garbage at padded dates
    with torch.no_grad():
        expected = model(images, doy, valid)
        got = model(pad_images, pad_doy, pad_valid)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", NETWORKS)
def test_eval_output_does_not_depend_on_the_rest_of_the_batch(name: str) -> None:
    torch.manual_seed(0)
    model = like_trained(build(name, num_classes=5, **SMALL[name]))
    images, doy, valid = make_inputs(3, 4, 16, 16)
    valid[1, :2] = False
    valid[2, :1] = False
    with torch.no_grad():
        batch = model(images, doy, valid)
        alone = model(images[1:2, 2:], doy[1:2, 2:], valid[1:2, 2:])
    torch.testing.assert_close(alone, batch[1:2], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", NETWORKS)
def test_the_network_uses_the_day_of_year(name: str) -> None:
    torch.manual_seed(0)
    model = like_trained(build(name, num_classes=5, **SMALL[name]))
    images, doy, valid = make_inputs(1, 4, 16, 16)
    with torch.no_grad():
        diff = (model(images, doy, valid) - model(images, (doy + 120) % 365 + 1, valid)).abs().max()
    assert diff > 1e-4


@pytest.mark.parametrize("name", NETWORKS)
def test_training_steps_reduce_the_loss_on_a_tiny_batch(name: str) -> None:
    torch.manual_seed(0)
    model = build(name, num_classes=4, **SMALL[name]).train()
    images, doy, valid = make_inputs(4, 4, 16, 16)
    valid[0, :2] = False
    labels = torch.randint(1, 4, (4, 16, 16), generator=torch.Generator().manual_seed(3))
    loss_fn = FocalLoss(gamma=0.0)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(8):
        optimiser.zero_grad()
        loss = loss_fn(model(images, doy, valid), labels)
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert losses[-1] < 0.9 * losses[0]


@pytest.mark.parametrize("name", NETWORKS)
def test_gradients_reach_every_parameter(name: str) -> None:
    torch.manual_seed(0)
    model = like_trained(build(name, num_classes=4, **SMALL[name])).train()
    images, doy, valid = make_inputs(2, 4, 16, 16)
    valid[0, :2] = False
    forward = getattr(model, "forward_sequence", model)
    forward(images, doy, valid).square().mean().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert missing == []


def test_models_command_lists_the_new_networks_and_utae_is_under_1_5m_parameters() -> None:
    rows = {name: count for name, count, _ in describe_models(2, 7)}
    assert {"utae", "unet3d", "vunet_convlstm_seq"} <= set(rows)
    assert rows["utae"] < 1_500_000
    assert rows["vunet_convlstm_seq"] == rows["vunet_convlstm"]  # the same network, decoded at more steps


def test_inference_interfaces_are_declared_where_inference_relies_on_them() -> None:
    from tropicrop.models.interface import SequenceDecoding, SharedEncoding

    shared = {name for name in NETWORKS if isinstance(build(name, num_classes=3, **SMALL[name]), SharedEncoding)}
    assert shared == {"utae", "vunet_convlstm_seq"}  # unet3d's convolutions mix dates: forward per window
    sequence = {name for name in NETWORKS if isinstance(build(name, num_classes=3, **SMALL[name]), SequenceDecoding)}
    assert sequence == {"vunet_convlstm_seq"}
