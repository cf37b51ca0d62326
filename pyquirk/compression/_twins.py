"""Which twin a compression kernel call runs: the NumPy reference or the Numba kernel.

The rule of :mod:`pyquirk.kernels` (one dispatcher, :class:`pyquirk.kernels.TwinDispatch`): the
resolved backend ``"reference"`` (``backend=``, :func:`pyquirk.use_backend` or ``PYQUIRK_BACKEND``)
gives the NumPy twin; ``"cpu"`` asked for explicitly gives the Numba twin or a RuntimeError naming
the ImportError; otherwise the Numba twin when numba imports, else the NumPy twin.
"""
from __future__ import annotations

from ..kernels import TwinDispatch
from . import _reference

#: ``twins(backend)``: the module (:mod:`._reference` or :mod:`._numba`) whose functions a call should use.
twins = TwinDispatch(_reference, f"{__package__}._numba", "the compression kernels")
_numba = twins.numba
