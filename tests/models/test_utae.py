"""U-TAE specifics: the L-TAE attention over dates, the target date and the parameter budget."""

from __future__ import annotations

import torch

from tiny import SMALL, like_trained, make_inputs
from tropicrop.models import UTAE, build
from tropicrop.models.interface import SharedEncoding
from tropicrop.models.utae import LTAE, collapse_time, seasonal_encoding


def test_attention_is_zero_at_padded_dates_and_sums_to_one() -> None:
    torch.manual_seed(0)
    ltae = LTAE(16, 16, d_model=32, heads=4).eval()
    x = torch.randn(2, 5, 16, 3, 4)
    doy = torch.randint(1, 366, (2, 5))
    valid = torch.ones(2, 5, dtype=torch.bool)
    valid[0, :3] = False
    out, attention = ltae(x, doy, valid, torch.tensor([4, 4]))
    assert out.shape == (2, 16, 3, 4) and attention.shape == (4, 2, 5, 3, 4)
    assert attention[:, 0, :3].abs().max() == 0
    torch.testing.assert_close(attention.sum(2), torch.ones(4, 2, 3, 4))


def test_upsampled_attention_keeps_padded_dates_out_of_the_skips() -> None:
    attention = torch.softmax(torch.randn(2, 1, 3, 2, 2), dim=2)
    attention[:, :, 0] = 0.0
    attention = attention / attention.sum(2, keepdim=True)
    features = torch.randn(1, 3, 4, 8, 8)
    with_garbage = features.clone()
    with_garbage[:, 0] = 1e6
    torch.testing.assert_close(collapse_time(with_garbage, attention), collapse_time(features, attention))


def test_the_target_date_changes_the_output() -> None:
    """The same dates with a later target (the last date) give another map: the network knows the target."""
    torch.manual_seed(0)
    model = like_trained(build("utae", num_classes=4, **SMALL["utae"]))
    images, doy, valid = make_inputs(1, 4, 16, 16)
    with torch.no_grad():
        features = model.encode(images[0]).sequence(torch.arange(4).view(1, 4))
        last = model.decode(features, doy, valid)
        earlier = valid.clone()
        earlier[0, 3] = False  # the same features, but the target is date 2
        assert (model.decode(features, doy, earlier) - last).abs().max() > 1e-4


def test_seasonal_encoding_is_periodic_over_the_year() -> None:
    code = seasonal_encoding(torch.tensor([1.0, 366.25, 182.0]), 8)
    assert code.shape == (3, 8)
    torch.testing.assert_close(code[0], code[1], atol=1e-4, rtol=0)
    assert (code[0] - code[2]).abs().max() > 1


def test_recommended_configuration_is_under_1_5m_parameters() -> None:
    model = UTAE(2, 8)
    assert 800_000 < sum(p.numel() for p in model.parameters()) < 1_500_000


def test_prediction_encodes_each_date_once_and_equals_the_forward_pass_of_every_window() -> None:
    import datetime as dt

    from tropicrop.inference import Net, Plan, net_probabilities, predictor_for
    from tropicrop.windows.dates import target_window

    torch.manual_seed(0)
    model = like_trained(build("utae", num_classes=4, **SMALL["utae"]))
    dates = [dt.date(2019, m, 10) for m in range(1, 13)] + [dt.date(2020, m, 10) for m in range(1, 4)]
    frames = torch.randn(len(dates), 2, 24, 20)
    net = Net("all-months", None, predictor_for(model))
    plans = [Plan(d, k, net, target_window(dates, d, 12)) for k, d in enumerate(dates[2:])]
    assert isinstance(model, SharedEncoding)  # else inference runs forward per window and this test proves nothing
    with torch.inference_mode():
        shared = dict(net_probabilities(model, frames, {i: i for i in range(len(dates))}, plans))
        for plan in plans:
            idx = torch.from_numpy(plan.window.indices)
            images = torch.where((idx >= 0).view(-1, 1, 1, 1), frames[idx.clamp_min(0)], 0.0)[None]
            doy, valid = torch.from_numpy(plan.window.doy)[None], torch.from_numpy(plan.window.valid)[None]
            expected = torch.softmax(model(images, doy, valid), dim=1)[0]
            torch.testing.assert_close(shared[plan], expected, atol=1e-5, rtol=1e-4)
