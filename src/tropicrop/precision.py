"""Which floating-point precision to train and predict in: bfloat16 where the hardware runs it fast.

bfloat16 keeps float32's exponent range with an 8-bit mantissa, so networks train and predict in it under
``torch.autocast`` without loss scaling. It pays only where the hardware has bf16 arithmetic units: on x86
CPUs the AVX512-BF16 dot-product instructions or AMX tiles (oneDNN then runs bf16 convolutions and matmuls
at about twice the float32 rate), on NVIDIA GPUs the tensor cores of compute capability 8.0 (Ampere) and
later. Elsewhere bf16 is emulated through float32 and is slower, so ``auto`` falls back to float32.

Precision names are Lightning's (``32-true``, ``bf16-mixed``, ``16-mixed``, ...); ``predict --precision``
also takes the short forms ``32``, ``bf16`` and ``auto``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch

AUTO = "auto"
FLOAT32 = "32-true"
BF16_MIXED = "bf16-mixed"
SHORT_NAMES = {"32": FLOAT32, "bf16": BF16_MIXED, "16": "16-mixed"}
PREDICT_CHOICES = (AUTO, "32", "bf16")
CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16")  # /proc/cpuinfo flags of x86 bf16 arithmetic


def _cpuinfo_flags(path: Path = Path("/proc/cpuinfo")) -> set[str]:
    """The CPU feature flags the Linux kernel reports (empty where there is no /proc/cpuinfo)."""
    try:
        text = path.read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.partition(":")[2].split())
    return set()


def cpu_has_fast_bf16() -> bool:
    """Whether this CPU has bf16 arithmetic units (AVX512-BF16 or AMX) that oneDNN uses.

    Asks torch's own CPU feature detection first (the same that picks oneDNN's kernels) and the kernel's
    flags second; a CPU that only emulates bf16 (``torch.ops.mkldnn._is_mkldnn_bf16_supported`` is also true
    for plain AVX512) does not count, since bf16 is slower than float32 there.
    """
    if not torch.backends.mkldnn.is_available():
        return False
    probes: list[Callable[[], bool]] = [getattr(torch.cpu, name) for name in
                                        ("_is_avx512_bf16_supported", "_is_amx_tile_supported") if hasattr(torch.cpu, name)]
    if any(probe() for probe in probes):
        return True
    return bool(_cpuinfo_flags() & set(CPU_BF16_FLAGS))


def cuda_has_fast_bf16() -> bool:
    """Whether the current CUDA device has bf16 tensor cores (compute capability >= 8.0)."""
    if not torch.cuda.is_available():
        return False
    major, _minor = torch.cuda.get_device_capability()
    return major >= 8


def device_type(accelerator: str) -> str:
    """``"cuda"`` or ``"cpu"``: where a run with Lightning's ``accelerator`` setting computes on this machine."""
    acc = accelerator.lower()
    if acc in ("gpu", "cuda") or (acc == AUTO and torch.cuda.is_available()):
        return "cuda" if torch.cuda.is_available() else "cpu"
    return "cpu"


def fast_bf16(device: str) -> bool:
    """Whether bf16 is fast on ``device`` (``"cpu"`` or ``"cuda"``) of this machine."""
    return cuda_has_fast_bf16() if device == "cuda" else cpu_has_fast_bf16()


def resolve_precision(precision: str, accelerator: str = "cpu") -> str:
    """Lightning's precision name for ``precision``: ``auto`` becomes ``bf16-mixed`` where bf16 is fast on the
    device ``accelerator`` resolves to and ``32-true`` elsewhere; short names (``32``, ``bf16``) are expanded;
    anything else is returned as given (Lightning checks it)."""
    name = precision.strip().lower()
    if name == AUTO:
        return BF16_MIXED if fast_bf16(device_type(accelerator)) else FLOAT32
    return SHORT_NAMES.get(name, precision)


def autocast_dtype(precision: str, device: str) -> torch.dtype | None:
    """The ``torch.autocast`` dtype of a resolved precision on ``device``, or ``None`` for float32.

    bf16 runs on the CPU and the GPU; float16 only on the GPU (CPUs have no float16 autocast worth using).
    """
    name = precision.lower()
    if name.startswith("bf16"):
        return torch.bfloat16
    if name.startswith("16") and device == "cuda":
        return torch.float16
    return None


def precision_label(dtype: torch.dtype | None) -> str:
    """Short name of an autocast dtype for logs: ``bf16``, ``fp16`` or ``32``."""
    return {torch.bfloat16: "bf16", torch.float16: "fp16"}.get(dtype, "32") if dtype is not None else "32"
