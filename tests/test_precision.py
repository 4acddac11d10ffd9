"""bfloat16: detection of fast bf16 hardware, ``auto`` precision and its names, as training and prediction
resolve them (the networks' bf16 numerics: tests/models/test_autocast.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tropicrop import precision
from tropicrop.errors import ConfigError
from tropicrop.inference import select_device
from tropicrop.precision import autocast_dtype, resolve_precision
from tropicrop.training import TrainConfig


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


def test_an_unknown_trainer_precision_is_refused_naming_the_choices() -> None:
    cfg = TrainConfig()
    assert cfg.trainer.precision == "auto"
    with pytest.raises(ConfigError, match=r"'precision' is 'bf17'.*auto, 32, bf16.*did you mean 'bf16'"):
        cfg.trainer.precision = "bf17"
    cfg.trainer.precision = "BF16-Mixed"  # names are read regardless of case
    assert cfg.trainer.precision == "bf16-mixed"
