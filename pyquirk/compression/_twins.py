"""Which twin a compression kernel call runs: the NumPy reference or the Numba kernel.

The rule of :mod:`pyquirk.kernels`: the resolved backend ``"reference"`` (``backend=``,
:func:`pyquirk.use_backend` or ``PYQUIRK_BACKEND``) gives the NumPy twin; ``"cpu"`` asked for
explicitly gives the Numba twin or a RuntimeError naming the ImportError; otherwise the Numba twin
when numba imports, else the NumPy twin.
"""
from __future__ import annotations

import os

from .. import backends
from . import _reference

_numba = {"module": None, "error": None}


def _load_numba():
    if _numba["module"] is None and _numba["error"] is None:
        try:
            from . import _numba as mod
            _numba["module"] = mod
        except ImportError as e:  # STYLE 4: remembered, shown when asked for
            _numba["error"] = e
    return _numba["module"]


def twins(backend: str | None):
    """The module (:mod:`._reference` or :mod:`._numba`) whose functions a call should use."""
    explicit = (backend is not None or backends._current.get() is not None
                or bool(os.environ.get("PYQUIRK_BACKEND")))
    name = backends.resolve(backend) if explicit else None
    if name == "reference":
        return _reference
    mod = _load_numba()
    if mod is not None:
        return mod
    if name == "cpu":
        e = _numba["error"]
        raise RuntimeError(f"backend 'cpu' is not available for the compression kernels: numba failed to "
                           f"import ({type(e).__name__}: {e})") from e
    return _reference
