"""Keep freed memory in the process instead of handing it back to the kernel after every training step.

glibc's malloc serves large blocks (above a threshold that starts at 128 KiB) with fresh ``mmap`` pages and
returns them with ``munmap`` when freed, and trims the top of the heap whenever 128 KiB are free there. A
training step of the demo's networks allocates and frees activations of tens of MiB, so every step maps,
zero-fills and unmaps the same memory again: one Baseline 1 net of the demo made 6.9 million page faults and
spent 20 s of its 90 s in the kernel (`benchmarks/allocator.py`). Raising the mmap threshold to its maximum
(32 MiB) and the trim threshold to 1 GiB lets malloc reuse freed blocks; the same net then trains in 70 s with
the same epochs and the same weights (only where memory comes from changes, never a number).

The cost is memory that stays with the process after use, at most the trim threshold above what it holds at
its peak; :func:`keep_freed_memory` is called once by the ``tropicrop`` command. A user who sets glibc's own
``MALLOC_MMAP_THRESHOLD_`` or ``MALLOC_TRIM_THRESHOLD_`` keeps those settings; elsewhere than glibc (macOS,
Windows, musl) nothing is changed.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import platform

M_TRIM_THRESHOLD = -1  # mallopt parameter numbers of <malloc.h>
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 * 1024 * 1024  # glibc's largest allowed value on 64-bit (HEAP_MAX_SIZE / 2)
TRIM_THRESHOLD = 1024 * 1024 * 1024
USER_SETTINGS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")  # glibc's environment variables


def keep_freed_memory() -> bool:
    """Set glibc's mmap and trim thresholds (see the module docstring); whether they were set.

    False where the C library is not glibc, or where the user chose the thresholds through glibc's
    environment variables.
    """
    if platform.libc_ver()[0] != "glibc" or any(name in os.environ for name in USER_SETTINGS):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return False
    return bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
