"""bfloat16: detection of fast bf16 hardware, ``auto`` precision, and bf16 autocast numerics of the ConvLSTM
and the networks against float32 (loose tolerances: bf16 keeps 8 mantissa bits)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from tropicrop import precision
from tropicrop.errors import ConfigError
from tropicrop.inference import select_device
from tropicrop.models import ConvLSTM, build
from tropicrop.models.convlstm import _run_forward
from tropicrop.precision import autocast_dtype, resolve_precision
from tropicrop.training import TrainConfig, check_config

TINY = {"encoder_channels": (4, 8), "lstm_channels": 16, "decoder_channels": (8,), "head_channels": 8}


@pytest.fixture
def no_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


@pytest.mark.parametrize(("fast", "expected"), [(True, "bf16-mixed"), (False, "32-true")])
def test_auto_precision_is_bf16_only_where_the_cpu_has_bf16_units(monkeypatch: pytest.MonkeyPatch, no_gpu: None,
                                                                  fast: bool, expected: str) -> None:
    monkeypatch.setattr(precision, "cpu_has_fast_bf16", lambda: fast)
    assert resolve_precision("auto", "cpu") == expected
    assert resolve_precision("auto", "auto") == expected  # no GPU: the CPU decides
    assert select_device("cpu", "auto") == (torch.device("cpu"), torch.bfloat16 if fast else None)


@pytest.mark.parametrize(("capability", "expected"), [((8, 0), "bf16-mixed"), ((9, 0), "bf16-mixed"), ((7, 5), "32-true")])
def test_auto_precision_on_a_gpu_follows_its_compute_capability(monkeypatch: pytest.MonkeyPatch,
                                                                capability: tuple[int, int], expected: str) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda *a: capability)
    monkeypatch.setattr(precision, "cpu_has_fast_bf16", lambda: expected == "32-true")  # the CPU must not decide
    assert resolve_precision("auto", "gpu") == expected
    assert resolve_precision("auto", "auto") == expected


def test_cpu_detection_uses_torch_probes_then_the_kernel_flags(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"):
        monkeypatch.setattr(torch.cpu, name, lambda: False, raising=False)
    cpuinfo = tmp_path / "cpuinfo"
    read = precision._cpuinfo_flags
    monkeypatch.setattr(precision, "_cpuinfo_flags", lambda: read(cpuinfo))
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f\n")
    assert not precision.cpu_has_fast_bf16()  # AVX512 alone only emulates bf16
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu avx512f avx512_bf16\n")
    assert precision.cpu_has_fast_bf16()
    cpuinfo.write_text("flags\t\t: fpu\n")
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: True, raising=False)
    assert precision.cpu_has_fast_bf16()
    assert read(tmp_path / "missing") == set()


def test_precision_names_and_autocast_dtypes() -> None:
    assert resolve_precision("32") == "32-true" and resolve_precision("bf16") == "bf16-mixed"
    assert resolve_precision("bf16-true") == "bf16-true"  # Lightning names pass through
    assert autocast_dtype("bf16-mixed", "cpu") == torch.bfloat16
    assert autocast_dtype("16-mixed", "cuda") == torch.float16
    assert autocast_dtype("16-mixed", "cpu") is None and autocast_dtype("32-true", "cpu") is None


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
        model.fold_batchnorm().use_channels_last()  # as prediction prepares it
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = model(images, doy, valid)
    assert (out.float() - ref).abs().max() < 0.05 * ref.abs().max()
    assert (out.float().argmax(1) == ref.argmax(1)).float().mean() > 0.95


def test_an_unknown_trainer_precision_is_refused_naming_the_choices() -> None:
    cfg = TrainConfig()
    assert cfg.trainer.precision == "auto"
    cfg.trainer.precision = "bf17"
    with pytest.raises(ConfigError, match=r"trainer.precision is 'bf17'.*auto, 32, bf16"):
        check_config(cfg)
