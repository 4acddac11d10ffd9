"""VUnetConvLSTM many-to-many (vunet_convlstm_seq): every step of one pass is the window ending there."""

from __future__ import annotations

import pytest
import torch

from tiny import SMALL, like_trained, make_inputs
from tropicrop.models import VUnetConvLSTM, VUnetConvLSTMSeq

OPTIONS = SMALL["vunet_convlstm_seq"]


def test_sequence_pass_at_the_last_date_equals_vunet_convlstm_with_the_same_weights() -> None:
    """A trained VUnetConvLSTM's weights load into the sequence network, and its own path (one ConvLSTM
    pass, steps decoded with their date's skips) gives the N-to-1 network's map at the last date.
    (``forward`` is inherited from VUnetConvLSTM: comparing it with VUnetConvLSTM's would compare a
    function with itself.)"""
    torch.manual_seed(0)
    plain = like_trained(VUnetConvLSTM(2, 5, **OPTIONS))
    seq = VUnetConvLSTMSeq(2, 5, **OPTIONS).eval()
    seq.load_state_dict(plain.state_dict())
    images, doy, valid = make_inputs(2, 5, 20, 28)
    valid[1, :2] = False
    last = torch.zeros_like(valid)
    last[:, -1] = True
    with torch.no_grad():
        want = plain(images, doy, valid)
        torch.testing.assert_close(seq.forward_sequence(images, doy, valid)[:, -1], want, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(seq.forward_steps(images, doy, valid, last), want, atol=1e-5, rtol=1e-5)


def test_every_step_equals_the_window_that_ends_there() -> None:
    torch.manual_seed(0)
    model = like_trained(VUnetConvLSTMSeq(2, 5, **OPTIONS))
    images, doy, valid = make_inputs(2, 5, 16, 24)
    valid[0, :2] = False
    with torch.no_grad():
        every = model.forward_sequence(images, doy, valid)
        assert every.shape == (2, 5, 5, 16, 24)
        assert every[0, :2].abs().max() == 0  # padded dates are not decoded
        for t in range(2, 5):
            window = model(images[:, : t + 1], doy[:, : t + 1], valid[:, : t + 1])
            torch.testing.assert_close(every[:, t], window, atol=1e-5, rtol=1e-5)


def test_steps_are_decoded_in_row_major_order_and_only_where_asked() -> None:
    torch.manual_seed(0)
    model = like_trained(VUnetConvLSTMSeq(2, 4, **OPTIONS))
    images, doy, valid = make_inputs(2, 4, 16, 16)
    steps = torch.tensor([[False, True, False, False], [True, False, False, True]])
    with torch.no_grad():
        chosen = model.forward_steps(images, doy, valid, steps)
        every = model.forward_sequence(images, doy, valid)
    torch.testing.assert_close(chosen, every[steps], atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="valid dates"):
        valid[0, 1] = False
        model.forward_steps(images, doy, valid, steps)


def test_one_pass_over_encoded_frames_serves_several_targets() -> None:
    """What prediction does: encode a tile's dates once, one ConvLSTM pass, decode the target steps."""
    torch.manual_seed(0)
    model = like_trained(VUnetConvLSTMSeq(2, 4, **OPTIONS))
    images, doy, _ = make_inputs(1, 6, 16, 16)
    frames, frame_doy = images[0], doy[0]
    features = model.encode(frames, frame_doy)
    index = torch.arange(6).view(1, 6)
    steps = torch.zeros(1, 6, dtype=torch.bool)
    steps[0, [2, 5]] = True
    with torch.no_grad():
        got = model.decode_steps(features, index, doy, torch.ones(1, 6, dtype=torch.bool), steps)
        for k, t in enumerate((2, 5)):
            window = model(images[:, : t + 1], doy[:, : t + 1], torch.ones(1, t + 1, dtype=torch.bool))
            torch.testing.assert_close(got[k : k + 1], window, atol=1e-5, rtol=1e-5)
