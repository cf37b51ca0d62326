"""Loading the C++ extension ``pyquirk._core`` (one place, for the cpu backend and the CSR kernel).

OpenMP threads. ``_core`` uses GNU OpenMP for its element-wise loops and slot-parallel GEMMs. By
default GNU OpenMP's idle threads spin-wait after each parallel region; on a machine whose cores
are shared, the spinning threads take the cores from the thread doing the work, and a small pass
ran 10-30x slower (docs/native.md, "Threads under load"). Unless the user has chosen a policy,
``OMP_WAIT_POLICY`` is set to ``PASSIVE`` before ``_core`` (and with it libgomp) loads. A libgomp
already initialised in the process (loaded earlier by another library) keeps its policy.
"""
from __future__ import annotations

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
