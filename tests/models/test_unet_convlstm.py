"""Tests of the ConvLSTM layer, the UnetConvLSTM family and the model registry."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor

from tiny import SMALL_NET, like_trained, make_inputs, with_padded_dates
from tropicrop.inference.prepare import fold_batchnorm, prepare_for_inference
from tropicrop.models import (
    ConvLSTM,
    UnetConvLSTM,
    VUnetConvLSTM,
    available_models,
    build,
    describe_models,
)
from tropicrop.models.reference import ConvLSTMCell

NETWORKS = ["unet_convlstm", "vunet_convlstm"]
TINY = {"encoder_channels": (4, 4, 8, 8), "lstm_channels": 8, "decoder_channels": (8, 4, 4), "head_channels": 4}


def naive_convlstm(layer: ConvLSTM, x: Tensor, valid: Tensor | None = None) -> Tensor:
    """Reference: the textbook cell (tropicrop.models.reference) with the layer's convolution, stepped over
    every date; all hidden states."""
    b, t = x.shape[:2]
    cell = ConvLSTMCell(layer.in_channels + layer.constant_channels, layer.hidden_channels)
    cell.conv = layer.conv
    h = x.new_zeros(b, layer.hidden_channels, *x.shape[-2:])
    c = torch.zeros_like(h)
    out = []
    for s in range(t):
        h_new, c_new = cell(x[:, s], h, c)
        if valid is None:
            h, c = h_new, c_new
        else:
            m = valid[:, s].view(b, 1, 1, 1)
            h, c = torch.where(m, h_new, h), torch.where(m, c_new, c)
        out.append(h)
    return torch.stack(out, dim=1)


# --- ConvLSTM layer ---------------------------------------------------------------------------------------


def test_convlstm_returns_last_state_or_whole_sequence() -> None:
    x = torch.randn(2, 4, 3, 6, 7)
    assert ConvLSTM(3, 5)(x).shape == (2, 5, 6, 7)
    assert ConvLSTM(3, 5, return_sequence=True)(x).shape == (2, 4, 5, 6, 7)


def test_convlstm_has_one_conv_for_all_gates_with_forget_bias_one() -> None:
    layer = ConvLSTM(3, 5)
    convs = [m for m in layer.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 1 and convs[0].out_channels == 4 * 5 and convs[0].in_channels == 3 + 5
    bias = layer.conv.bias
    assert bias is not None
    assert torch.equal(bias[5:10], torch.ones(5))
    assert torch.equal(bias[:5], torch.zeros(5)) and torch.equal(bias[10:], torch.zeros(10))


def test_convlstm_split_convolution_equals_naive_concat_convolution() -> None:
    torch.manual_seed(0)
    layer = ConvLSTM(3, 6, return_sequence=True)
    with torch.no_grad():
        layer.conv.bias.normal_()  # type: ignore[union-attr]
    x = torch.randn(3, 5, 3, 5, 4)
    valid = torch.tensor([[1, 1, 1, 1, 1], [0, 0, 1, 1, 1], [1, 0, 1, 0, 1]], dtype=torch.bool)
    expected, expected_masked = naive_convlstm(layer, x), naive_convlstm(layer, x, valid)
    torch.testing.assert_close(layer(x), expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(layer(x, valid), expected_masked, atol=1e-5, rtol=1e-5)
    with torch.no_grad():  # the inference path (nothing saved for backward)
        torch.testing.assert_close(layer(x, valid), expected_masked, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("return_sequence", [False, True])
def test_convlstm_gradients_equal_naive_autograd(return_sequence: bool) -> None:
    """The hand-written backward through time matches autograd on the naive loop (float64), with partly
    valid steps, a step where no sequence is valid and leading padding."""
    torch.manual_seed(0)
    layer = ConvLSTM(3, 4, return_sequence=return_sequence).double()
    x = torch.randn(3, 5, 3, 5, 4, dtype=torch.float64, requires_grad=True)
    valid = torch.tensor([[1, 1, 0, 1, 1], [0, 0, 0, 1, 1], [0, 1, 0, 0, 1]], dtype=torch.bool)
    weights = torch.randn(layer(x, valid).shape, dtype=torch.float64)

    def reference(x: Tensor, valid: Tensor) -> Tensor:
        seq = naive_convlstm(layer, x, valid)
        return seq if return_sequence else seq[:, -1]

    grads = []
    for fn in (layer, reference):
        layer.zero_grad()
        x.grad = None
        (fn(x, valid) * weights).sum().backward()
        grads.append([x.grad.clone(), *(p.grad.clone() for p in layer.parameters())])  # type: ignore[union-attr]
    for ours, ref in zip(*grads, strict=True):
        torch.testing.assert_close(ours, ref, atol=1e-10, rtol=1e-10)


def test_convlstm_constant_channels_equal_convolving_constant_maps() -> None:
    """Day-of-year-like channels given as values (B, T, k) give the output and gradients of the naive loop
    over frames with k constant maps appended (zero padding at the border included), in float64."""
    torch.manual_seed(0)
    layer = ConvLSTM(3, 4, constant_channels=2).double()
    with torch.no_grad():
        layer.conv.bias.normal_()  # type: ignore[union-attr]
    x = torch.randn(2, 5, 3, 5, 6, dtype=torch.float64)
    constants = torch.randn(2, 5, 2, dtype=torch.float64)
    valid = torch.tensor([[1, 1, 0, 1, 1], [0, 0, 1, 1, 1]], dtype=torch.bool)
    maps = torch.cat((x, constants[..., None, None].expand(2, 5, 2, 5, 6)), dim=2)
    grads = []
    for run in (lambda: layer(x, valid, constants), lambda: naive_convlstm(layer, maps, valid)[:, -1]):
        layer.zero_grad()
        out = run()
        out.square().sum().backward()
        grads.append([out.detach(), *(p.grad.clone() for p in layer.parameters())])  # type: ignore[union-attr]
    for ours, ref in zip(*grads, strict=True):
        torch.testing.assert_close(ours, ref, atol=1e-10, rtol=1e-10)
    with torch.no_grad():  # without gradients too
        torch.testing.assert_close(layer(x, valid, constants), grads[1][0], atol=1e-10, rtol=1e-10)
    with pytest.raises(ValueError, match="constant channel"):
        layer(x, valid)


@pytest.mark.parametrize("grad", [True, False])
def test_convlstm_constants_per_step_or_in_the_frames_gates_agree(grad: bool) -> None:
    """Constants added to each frame's input gates once (``input_gates(frames, constants)``) give what
    ``recur`` gives adding them at every step, read from a table of frames shared by sequences (float64)."""
    torch.manual_seed(0)
    layer = ConvLSTM(3, 4, constant_channels=2).double()
    frames = torch.randn(5, 3, 4, 6, dtype=torch.float64)
    frame_values = torch.randn(5, 2, dtype=torch.float64)
    index = torch.tensor([[-1, 0, 1, 2], [1, 2, 3, 4], [4, 4, 0, 3]])
    valid = index >= 0
    constants = frame_values[index.clamp_min(0)]
    with torch.set_grad_enabled(grad):
        per_step = layer.recur(layer.input_gates(frames), valid, constants, index)
        in_gates = layer.recur(layer.input_gates(frames, frame_values), valid, index=index, constants_in_gates=True)
    torch.testing.assert_close(in_gates, per_step, atol=1e-10, rtol=1e-10)
    with pytest.raises(ValueError, match="in its gates: constants must be None"):
        layer.recur(layer.input_gates(frames, frame_values), valid, constants, index, constants_in_gates=True)
    with pytest.raises(ValueError, match=r"constants must be \(N, 2\) = \(5, 2\)"):
        layer.input_gates(frames, frame_values[:4])
    with pytest.raises(ValueError, match="0 constant channel"):
        ConvLSTM(3, 4).double().input_gates(frames, frame_values)


def test_convlstm_leading_padded_steps_give_unpadded_output() -> None:
    torch.manual_seed(0)
    layer = ConvLSTM(3, 6)
    x = torch.randn(2, 4, 3, 5, 5)
    k = 3
    padded = torch.cat([torch.randn(2, k, 3, 5, 5), x], dim=1)  # padded content must not matter
    valid = torch.ones(2, k + 4, dtype=torch.bool)
    valid[:, :k] = False
    torch.testing.assert_close(layer(padded, valid), layer(x), atol=1e-5, rtol=1e-5)


def test_convlstm_sequence_without_valid_date_gives_zero_state() -> None:
    layer = ConvLSTM(3, 4)
    x = torch.randn(2, 3, 3, 5, 5, requires_grad=True)
    out = layer(x, torch.zeros(2, 3, dtype=torch.bool))
    assert torch.equal(out, torch.zeros(2, 4, 5, 5))
    out.sum().backward()
    assert x.grad is not None and torch.equal(x.grad, torch.zeros_like(x))


def test_convlstm_rejects_wrong_channel_count() -> None:
    with pytest.raises(ValueError, match="ConvLSTM expects"):
        ConvLSTM(3, 5)(torch.randn(1, 2, 4, 5, 5))


# --- UnetConvLSTM and VUnetConvLSTM -----------------------------------------------------------------------


@pytest.mark.parametrize("name", NETWORKS)
@pytest.mark.parametrize("size", [(32, 32), (48, 72), (37, 45)])
def test_network_returns_last_date_logits_for_any_tile_size(name: str, size: tuple[int, int]) -> None:
    model = build(name, num_classes=8)
    images, doy, valid = make_inputs(2, 3, *size)
    valid[0, 0] = False
    logits = model(images, doy, valid)
    assert logits.shape == (2, 8, *size)
    assert torch.isfinite(logits).all()


@pytest.mark.parametrize("name", NETWORKS)
def test_network_leading_padded_dates_give_unpadded_output(name: str) -> None:
    torch.manual_seed(0)
    model = like_trained(build(name, num_classes=5))
    images, doy, valid = make_inputs(2, 4, 16, 16)
    k = 3
    pad_images, pad_doy, pad_valid = with_padded_dates(images, doy, valid, k)
    with torch.no_grad():
        expected = model(images, doy, valid)
        got = model(pad_images, pad_doy, pad_valid)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", NETWORKS)
def test_zeros_padding_sees_padded_dates_as_data(name: str) -> None:
    torch.manual_seed(0)
    model = like_trained(build(name, num_classes=5, padding="zeros"))
    images, doy, valid = make_inputs(1, 4, 16, 16)
    k = 3
    pad_images = torch.cat([torch.zeros(1, k, 2, 16, 16), images], dim=1)
    pad_doy = torch.cat([torch.full((1, k), 100), doy], dim=1)
    pad_valid = torch.cat([torch.zeros(1, k, dtype=torch.bool), valid], dim=1)
    with torch.no_grad():
        diff = (model(pad_images, pad_doy, pad_valid) - model(images, doy, valid)).abs().max()
    assert diff > 1e-4


@pytest.mark.parametrize("name", NETWORKS)
def test_gradients_reach_every_parameter(name: str) -> None:
    torch.manual_seed(0)
    model = build(name, num_classes=4, **TINY).train()
    images, doy, valid = make_inputs(2, 4, 16, 16)
    valid[0, :2] = False
    model(images, doy, valid).square().mean().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert missing == []


def test_training_step_runs_under_bfloat16_autocast() -> None:
    model = build("vunet_convlstm", num_classes=4, **TINY).train()
    images, doy, valid = make_inputs(2, 4, 16, 16)
    valid[0, :2] = False
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = model(images, doy, valid)
    logits.float().square().mean().backward()
    grad = model.lstm.conv.weight.grad
    assert grad is not None and grad.dtype == torch.float32 and torch.isfinite(grad).all()


def test_table3_network_has_about_3m_parameters_mostly_in_convlstm() -> None:
    model = build("unet_convlstm", in_channels=2, num_classes=6)
    total = sum(p.numel() for p in model.parameters())
    lstm = sum(p.numel() for p in model.lstm.parameters())
    assert 2_900_000 < total < 3_400_000
    assert lstm == (64 + 256) * 9 * 4 * 256 + 4 * 256
    assert lstm > total / 2
    v_model = build("vunet_convlstm", in_channels=2, num_classes=6)
    assert sum(p.numel() for p in v_model.parameters()) - total == 2 * 9 * 4 * 256  # 2 doy channels


@pytest.mark.parametrize("name", NETWORKS)
def test_eval_output_does_not_depend_on_batch_composition(name: str) -> None:
    torch.manual_seed(0)
    model = like_trained(build(name, num_classes=5))
    images, doy, valid = make_inputs(3, 4, 16, 16)
    valid[1, :2] = False
    valid[2, :1] = False
    with torch.no_grad():
        batch = model(images, doy, valid)
        alone = model(images[1:2], doy[1:2], valid[1:2])
    torch.testing.assert_close(alone, batch[1:2], atol=1e-5, rtol=1e-5)


def test_padded_frames_never_reach_batchnorm_statistics() -> None:
    model = build("unet_convlstm", num_classes=4, **TINY).train()
    images, doy, valid = make_inputs(2, 4, 16, 16)
    images[:, :2] = 1e6  # garbage at padded dates
    valid[:, :2] = False
    model(images, doy, valid)
    first_bn = model.encoder[0][1]
    assert first_bn.running_mean.abs().max() < 10


def test_vunet_uses_day_of_year_and_unet_ignores_it() -> None:
    images, doy, valid = make_inputs(1, 4, 16, 16)
    for cls, changes in ((UnetConvLSTM, False), (VUnetConvLSTM, True)):
        torch.manual_seed(0)
        model = like_trained(cls(2, 4, **TINY))
        with torch.no_grad():
            diff = (model(images, doy, valid) - model(images, doy + 90, valid)).abs().max()
        assert (diff > 1e-6) == changes


@pytest.mark.parametrize("frames_doy", [False, True])
def test_encoded_dates_can_be_reused_across_target_months(frames_doy: bool) -> None:
    """Dates encoded once decode into every window that contains them, whether the day of year enters the
    gates at encoding (each frame's own) or at every step."""
    torch.manual_seed(0)
    model = like_trained(build("vunet_convlstm", num_classes=4, **TINY))
    scene, scene_doy, _ = make_inputs(1, 6, 20, 20)  # one scene with 6 dates
    with torch.no_grad():
        feats = model.encode(scene[0], scene_doy[0] if frames_doy else None)  # every date encoded once
        # windows of 4 dates ending at date 2 (one padded month) and at date 5
        index = torch.tensor([[-1, 0, 1, 2], [2, 3, 4, 5]])
        valid = index >= 0
        doy = scene_doy[0][index.clamp_min(0)]
        reused = model.decode(feats.sequence(index), doy, valid)
        direct_0 = model(scene[:, :3], scene_doy[:, :3], torch.ones(1, 3, dtype=torch.bool))
        direct_1 = model(scene[:, 2:], scene_doy[:, 2:], torch.ones(1, 4, dtype=torch.bool))
    torch.testing.assert_close(reused, torch.cat([direct_0, direct_1]), atol=1e-5, rtol=1e-5)


def test_decode_rejects_days_of_year_other_than_the_encoded_ones() -> None:
    model = like_trained(build("vunet_convlstm", num_classes=4, **TINY))
    scene, scene_doy, _ = make_inputs(1, 4, 16, 16)
    index = torch.tensor([[-1, 0, 1, 2]])
    doy = scene_doy[0][index.clamp_min(0)]
    with torch.no_grad():
        feats = model.encode(scene[0], scene_doy[0]).sequence(index)
        model.decode(feats, doy + torch.tensor([[50, 0, 0, 0]]), index >= 0)  # a padded date's doy is not used
        with pytest.raises(ValueError, match="sequence 0, date 2: the gates were encoded with day of year"):
            model.decode(feats, doy + torch.tensor([[0, 0, 1, 0]]), index >= 0)
        with pytest.raises(ValueError, match=r"doy must have shape \(N,\) = \(4,\)"):
            model.encode(scene[0], scene_doy[0, :3])


def test_last_date_must_be_valid() -> None:
    model = build("unet_convlstm", num_classes=4, **TINY)
    images, doy, valid = make_inputs(2, 3, 16, 16)
    valid[1, -1] = False
    with pytest.raises(ValueError, match="last date"):
        model(images, doy, valid)


def test_wrong_input_shapes_are_rejected_with_the_shape() -> None:
    model = build("unet_convlstm", num_classes=4, **TINY)
    images, doy, valid = make_inputs(2, 3, 16, 16)
    with pytest.raises(ValueError, match="doy must have shape"):
        model(images, doy[:, :2], valid)
    with pytest.raises(ValueError, match="images must have shape"):
        model(images[:, :, :1], doy, valid)


def test_doy_encoding_is_on_the_unit_circle() -> None:
    from tropicrop.models import day_of_year_encoding

    code = day_of_year_encoding(torch.tensor([1, 92, 365]))
    assert code.shape == (3, 2)
    torch.testing.assert_close(code.norm(dim=-1), torch.ones(3))
    assert (code[0] - code[2]).norm() < 0.05  # 1 January is next to 31 December


# --- registry ---------------------------------------------------------------------------------------------


def test_registry_builds_models_by_name_with_options() -> None:
    assert set(NETWORKS) <= set(available_models())
    model = build("vunet_convlstm", in_channels=3, num_classes=9, lstm_channels=12, padding="zeros")
    assert isinstance(model, VUnetConvLSTM)
    assert model.lstm.hidden_channels == 12 and model.padding == "zeros"


def test_registry_unknown_name_suggests_the_closest() -> None:
    with pytest.raises(ValueError, match="did you mean 'unet_convlstm'.*available: .*unet_convlstm, vunet_convlstm"):
        build("unet_convlstn", num_classes=4)


def test_registry_unknown_option_is_named() -> None:
    with pytest.raises(TypeError, match="no option 'lstm_channel'.*did you mean 'lstm_channels'"):
        build("unet_convlstm", num_classes=4, lstm_channel=8)


def test_invalid_padding_mode_is_rejected() -> None:
    with pytest.raises(ValueError, match="padding must be one of"):
        build("unet_convlstm", num_classes=4, padding="reflect")


def test_describe_models_lists_name_parameter_count_and_description() -> None:
    rows = describe_models(in_channels=2, num_classes=7)
    assert [r[0] for r in rows] == available_models()
    for name, count, text in rows:
        assert count > 500_000 and text and "\n" not in text, name


def test_split_conv_matches_functional_conv_over_concatenation() -> None:
    """The weight split of one Conv2d is exactly the convolution over concatenated channels."""
    conv = torch.nn.Conv2d(3 + 4, 8, 3, padding=1)
    x, h = torch.randn(2, 3, 5, 5), torch.randn(2, 4, 5, 5)
    split = F.conv2d(x, conv.weight[:, :3], conv.bias, padding=1) + F.conv2d(h, conv.weight[:, 3:], padding=1)
    torch.testing.assert_close(split, conv(torch.cat([x, h], 1)), atol=1e-5, rtol=1e-5)


def test_folding_batchnorm_keeps_the_outputs() -> None:
    model = like_trained(build("vunet_convlstm", num_classes=5, lstm_channels=8))
    x, doy = torch.randn(2, 4, 2, 16, 16), torch.randint(1, 366, (2, 4))
    valid = torch.ones(2, 4, dtype=torch.bool)
    valid[1, :2] = False
    with torch.no_grad():
        before = model(x, doy, valid)
        fold_batchnorm(model)
        after = model(x, doy, valid)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())
    torch.testing.assert_close(after, before, atol=1e-4, rtol=1e-4)
    with pytest.raises(ValueError, match="eval-mode"):
        fold_batchnorm(build("unet_convlstm", num_classes=3))


@pytest.mark.parametrize("size", [(32, 32), (37, 45)])
def test_channels_last_layout_keeps_the_outputs(size: tuple[int, int]) -> None:
    """The inference layout (BatchNorm folded, U-Net channels-last: ``prepare_for_inference`` on the CPU, as
    ``load_run`` uses it) gives the same logits, through ``forward`` and through shared encoding."""
    model = like_trained(build("vunet_convlstm", num_classes=5, lstm_channels=8))
    x, doy = torch.randn(2, 4, 2, *size), torch.randint(1, 366, (2, 4))
    valid = torch.ones(2, 4, dtype=torch.bool)
    valid[1, :2] = False
    with torch.no_grad():
        before = model(x, doy, valid)
        prepare_for_inference(model, torch.device("cpu"))
        assert model.encoder[0][0].weight.is_contiguous(memory_format=torch.channels_last)
        after = model(x, doy, valid)
        feats = model.encode(x[0], doy[0])
        shared = model.decode(feats.sequence(torch.arange(4).view(1, 4)), doy[:1], valid[:1])
    assert after.is_contiguous()
    torch.testing.assert_close(after, before, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(shared, before[:1], atol=1e-4, rtol=1e-4)


def test_the_multilook_input_is_the_boosters_mean_filter() -> None:
    from scipy.ndimage import uniform_filter

    from tropicrop.models.unet_convlstm import multilook

    frames = torch.randn(2, 2, 9, 7)
    expected = uniform_filter(frames.numpy(), size=(1, 1, 3, 3), mode="nearest")
    assert torch.allclose(multilook(frames, 3), torch.from_numpy(expected), atol=1e-5)


@pytest.mark.parametrize("name", ["unet_convlstm", "vunet_convlstm"])
def test_a_network_with_looks_sees_raw_and_multilooked_bands(name: str) -> None:
    torch.manual_seed(0)
    net = build(name, num_classes=3, looks=3, **SMALL_NET)
    assert net.encoder[0][0].in_channels == 4
    images, doy, valid = make_inputs(2, 3, 12, 12)
    assert net(images, doy, valid).shape == (2, 3, 12, 12)
    with pytest.raises(ValueError, match="odd"):
        build(name, num_classes=3, looks=2, **SMALL_NET)
