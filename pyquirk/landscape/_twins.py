"""Which twin a landscape kernel call runs (:mod:`._reference` or :mod:`._numba`), by the rule of
:class:`pyquirk.kernels.TwinDispatch`."""
from __future__ import annotations

from ..kernels import TwinDispatch
from . import _reference

#: ``twins(backend)``: the module whose ``combine`` a call should use.
twins = TwinDispatch(_reference, f"{__package__}._numba", "the landscape kernels")
