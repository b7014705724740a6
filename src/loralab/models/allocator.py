"""CPU training: freed activation memory goes back to the operating system.

PyTorch's CPU tensors come from the C library's malloc. glibc serves blocks below its mmap
threshold from the heap, and raises that threshold (up to 32 MB) each time a large block is
freed, so after the first step every activation tensor lives in the heap; a checkpointed
step keeps a few small tensors per layer alive among the freed ones, the heap cannot shrink
past them, and it grows by most of a layer's temporaries per layer: measured on SmolLM2-135M
at batch 2 x 448 with checkpointing, 0.07 GB of live tensors held 1.1 GB more RSS
(docs/benchmarks.md). A fixed threshold of MMAP_THRESHOLD bytes makes every larger block its
own mapping, returned to the system when freed, so RSS follows the live tensors.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

MMAP_THRESHOLD = 256 * 1024
M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter


def return_freed_memory() -> bool:
    """Fix glibc's mmap threshold (Linux); True when it was set."""
    if not sys.platform.startswith("linux"):
        return False
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name or "libc.so.6")
        return bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD))
    except (OSError, AttributeError):  # another C library (musl) has no mallopt
        return False
