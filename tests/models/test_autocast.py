"""The ConvLSTM and the networks under bf16 autocast against float32 (loose tolerances: bf16 keeps 8 mantissa
bits), with the cell state kept in float32."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode

from tropicrop.inference.prepare import prepare_for_inference
from tropicrop.models import ConvLSTM, build
from tropicrop.models.convlstm import _run_forward

TINY = {"encoder_channels": (4, 8), "lstm_channels": 16, "decoder_channels": (8,), "head_channels": 8}


def _cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(F.cosine_similarity(a.flatten().double(), b.flatten().double(), dim=0))


def test_convlstm_under_bf16_autocast_is_close_to_float32_and_keeps_its_state_in_float32() -> None:
    torch.manual_seed(0)
    lstm = ConvLSTM(6, 16, constant_channels=2, return_sequence=True)
    x = torch.randn(3, 7, 6, 8, 8, requires_grad=True)
    constants = torch.randn(3, 7, 2)
    valid = torch.ones(3, 7, dtype=torch.bool)
    valid[0, :3] = False
    valid[1, 2] = False
    ref = lstm(x, valid, constants)
    grad_out = torch.randn_like(ref)
    ref_grads = torch.autograd.grad((ref * grad_out).sum(), [x, lstm.conv.weight])
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = lstm(x, valid, constants)
    assert out.dtype == torch.bfloat16
    assert (out.float() - ref).abs().max() < 0.05
    grads = torch.autograd.grad((out.float() * grad_out).sum(), [x, lstm.conv.weight])
    assert grads[1].dtype == torch.float32
    for g, r in zip(grads, ref_grads, strict=True):
        assert _cosine(g, r) > 0.99
    # inference path (no gradients, frames table): same closeness
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        out_inf = lstm(x, valid, constants)
    assert (out_inf.float() - ref).abs().max() < 0.05
    # the recurrence on bf16 pre-activations keeps the cell state and the gates in float32
    gates = lstm.input_gates(x.detach()[0].to(torch.bfloat16).float()).to(torch.bfloat16).unsqueeze(1)
    hs, saved = _run_forward(gates, lstm.conv.weight[:, 8:].to(torch.bfloat16), None, 1, store=True)
    assert hs.dtype == torch.bfloat16 and {s[1].dtype for s in saved} | {s[4].dtype for s in saved} == {torch.float32}


@pytest.mark.parametrize("name", ["unet_convlstm", "vunet_convlstm"])
def test_network_logits_under_bf16_autocast_are_close_to_float32(name: str) -> None:
    torch.manual_seed(0)
    model = build(name, in_channels=2, num_classes=5, **TINY).eval()
    images = torch.randn(2, 6, 2, 20, 20)
    doy = torch.randint(1, 366, (2, 6))
    valid = torch.ones(2, 6, dtype=torch.bool)
    valid[1, :2] = False
    with torch.inference_mode():
        ref = model(images, doy, valid)
        prepare_for_inference(model, torch.device("cpu"))  # BatchNorm folded, channels-last: as load_run prepares it
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = model(images, doy, valid)
    assert (out.float() - ref).abs().max() < 0.05 * ref.abs().max()
    assert (out.float().argmax(1) == ref.argmax(1)).float().mean() > 0.95


class _ConvolutionDtypes(TorchDispatchMode):
    """Records the dtypes of every convolution (forward, transposed, weight gradient) run under it."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[str, torch.dtype]] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        if func.overloadpacket in (torch.ops.aten.convolution, torch.ops.aten.convolution_backward):
            transposed = func.overloadpacket is torch.ops.aten.convolution and bool(args[6])
            name = "transposed" if transposed else func.overloadpacket.__name__
            self.seen.append((name, args[0].dtype))
        return func(*args, **(kwargs or {}))


def test_convlstm_backward_under_bf16_autocast_runs_its_convolutions_in_bf16() -> None:
    """Training under bf16 autocast: the hand-written backward through time runs its recurrent convolutions
    (the transposed one per step, the weight gradient over all steps) in bf16, not float32 (autocast is off
    in backward; the forward's dtype must carry over)."""
    torch.manual_seed(0)
    lstm = ConvLSTM(6, 16, constant_channels=2)
    x = torch.randn(2, 5, 6, 8, 8, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = lstm(x, torch.ones(2, 5, dtype=torch.bool), torch.randn(2, 5, 2))
    record = _ConvolutionDtypes()
    with record:
        out.float().sum().backward()
    recurrent = [dtype for name, dtype in record.seen if name in ("transposed", "convolution_backward")]
    assert len([n for n, _ in record.seen if n == "transposed"]) >= 4  # one per step after the first
    assert recurrent and set(recurrent) == {torch.bfloat16}, record.seen
    assert lstm.conv.weight.grad is not None and lstm.conv.weight.grad.dtype == torch.float32
