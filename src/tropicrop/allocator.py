"""Keep freed memory in the process instead of handing it back to the kernel after every tensor.

glibc's malloc serves large blocks (above a threshold that starts at 128 KiB) with fresh ``mmap`` pages and
returns them with ``munmap`` when freed, and trims the top of the heap whenever 128 KiB are free there. A
training step of the demo's networks allocates and frees activations of tens of MiB, so every step maps,
zero-fills and unmaps the same memory again: one Baseline 1 net of the demo made 3.8 million page faults in
6 epochs and spent 9.5 of its 36 s in the kernel (``benchmarks/allocator.py``). With the mmap threshold at
its maximum (32 MiB) and the trim threshold at twice that, malloc reuses freed blocks: 0.16 million page
faults, 30 s, the same validation F1 (only where memory comes from changes, never a number). Dask's nanny
makes it worse in its workers: it starts them with ``MALLOC_TRIM_THRESHOLD_=65536``, which also freezes the
mmap threshold at 128 KiB (prediction blocks 1.5x slower, ``benchmarks/dask_predict.py``).

The ``tropicrop`` command calls :func:`keep_freed_memory` once at start, and the Dask worker plugin in each
worker. The cost is at most 64 MiB of freed memory kept by a process. A user who sets glibc's own
``MALLOC_MMAP_THRESHOLD_`` or ``MALLOC_TRIM_THRESHOLD_`` for the command keeps those settings; elsewhere than
glibc (macOS, Windows, musl) nothing is changed.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform

M_TRIM_THRESHOLD = -1  # mallopt parameter numbers of <malloc.h>
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 * 1024 * 1024  # glibc's largest allowed value on 64-bit (HEAP_MAX_SIZE / 2)
TRIM_THRESHOLD = 2 * MMAP_THRESHOLD  # the ratio glibc keeps in its dynamic mode
USER_SETTINGS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")  # glibc's environment variables


def keep_freed_memory(respect_environment: bool = True) -> bool:
    """Set glibc's mmap and trim thresholds (see the module docstring); whether both were set.

    False where the C library is not glibc, or, with ``respect_environment``, where the thresholds were chosen
    through glibc's environment variables (a Dask worker passes False: its nanny set them, not the user).
    """
    if platform.libc_ver()[0] != "glibc":
        return False
    if respect_environment and any(name in os.environ for name in USER_SETTINGS):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return False
    mmap_set = libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)
    trim_set = libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)  # set even if the first one was refused
    return bool(mmap_set) and bool(trim_set)
