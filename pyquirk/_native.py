"""Loading the C++ extension ``pyquirk._core`` (one place, for the cpu backend and the CSR kernel).

OpenMP threads. ``_core`` uses GNU OpenMP for its element-wise loops and slot-parallel GEMMs. By
default GNU OpenMP's idle threads spin-wait after each parallel region; on a machine whose cores
are shared, the spinning threads take the cores from the thread doing the work, and a small pass
ran 10-30x slower (docs/native.md, "Threads under load"). Unless the user has chosen a policy,
``OMP_WAIT_POLICY`` is set to ``PASSIVE`` before ``_core`` (and with it libgomp) loads. A libgomp
already initialised in the process (loaded earlier by another library) keeps its policy.

Freed memory. glibc hands large blocks (over 128 KiB at first) back to the kernel when they are
freed, so every fresh NumPy temporary of that size is page-faulted in again; in the microVMs these
machines are, a page fault costs microseconds, and ``T - 0.1 * T`` on a [64, 15210] float32 array
took 8.6 ms instead of 0.4 ms (an E = 64 population's SGD update cost as much as its gradient).
pyquirk's own processes (the ``pyquirk`` command and the benchmark suite) call
:func:`keep_freed_memory`; importing the library changes nothing.
"""
from __future__ import annotations

import ctypes
import os

_state: dict = {}


def load_core():
    """``(module, None)`` when ``pyquirk._core`` imports, else ``(None, the ImportError)``."""
    if not _state:
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        try:
            from . import _core
            _state.update(module=_core, error=None)
        except ImportError as e:  # STYLE 4: a missing or broken _core disables the native paths only
            _state.update(module=None, error=e)
    return _state["module"], _state["error"]


def keep_freed_memory() -> bool:
    """Have glibc serve blocks up to 32 MiB from its heap and keep up to 512 MiB of freed memory
    (``mallopt``), unless the user set ``MALLOC_MMAP_THRESHOLD_`` or ``MALLOC_TRIM_THRESHOLD_``.
    Returns whether it was applied (False off glibc)."""
    if {"MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_"} & set(os.environ):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc
        return False
    M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3     # <malloc.h>; 32 MiB is glibc's largest threshold
    return bool(mallopt(M_MMAP_THRESHOLD, 32 << 20)) and bool(mallopt(M_TRIM_THRESHOLD, 512 << 20))
