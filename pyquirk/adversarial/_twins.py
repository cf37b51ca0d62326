"""Which twin an attack-loop kernel call runs (:mod:`._reference` or :mod:`._numba`), by the rule of
:class:`pyquirk.kernels.TwinDispatch`."""
from __future__ import annotations

from ..kernels import TwinDispatch
from . import _reference

#: ``twins(backend)``: the module whose ``pgd_step`` and ``track_best`` a call should use.
twins = TwinDispatch(_reference, f"{__package__}._numba", "the attack kernels")
