"""Performance tunables, as module-level defaults that tests and users may patch.

Only *speed* lives here, never semantics: every value below changes how fast a kernel runs, not
what it returns (the kernels' results do not depend on them, and the tests check that by patching
them to extreme values). The numerical constants that are part of a definition (the 1e-12 floor of
the L2 step, the 1e-10 of filter normalization) live with their formulas in :mod:`pyquirk.kernels`.

Every kernel reads these at call time, so ``monkeypatch.setattr(pyquirk.config, "SELECT_RADIX_BITS", 4)``
takes effect on the next call without recompiling anything.
"""
from __future__ import annotations

#: Bits of |θ|'s IEEE pattern that name a bin in magnitude selection (histograms and the window
#: pass), clamped to [1, 20] and, for small scopes, to about log2(n). 16 gives 2**16 int64 bins
#: (512 KiB) per block and resolves the exponent plus 8 mantissa bits of a float32 (5 of a float64).
#: Below 8 (float32) or 11 (float64) bits the exact path's non-finite check needs an extra pass.
SELECT_RADIX_BITS: int = 16

#: Bits resolved per serial refinement pass over the gathered candidates, clamped to [1, 20].
SELECT_REFINE_BITS: int = 16

#: Magnitude selection first tries one pass over a window of bins placed by a fixed sample (the
#: first SELECT_SAMPLE_RUN entries of every SELECT_SAMPLE_RUN·SELECT_SAMPLE_EVERY), with a margin of
#: SELECT_SAMPLE_MARGIN standard deviations of the sample rank; if the k-th entry falls outside the
#: window it runs the two exact passes. Scopes under SELECT_SAMPLE_MIN entries, or
#: SELECT_SAMPLE_EVERY = 0, go straight to the two passes.
SELECT_SAMPLE_RUN: int = 16
SELECT_SAMPLE_EVERY: int = 32
SELECT_SAMPLE_MARGIN: float = 8.0
SELECT_SAMPLE_MIN: int = 1 << 18

#: Entries per chunk of the window pass (rounded down to a multiple of 8, at least 8): a vectorised
#: loop writes the chunk's mask and flags its window entries, then a short loop gathers them.
SELECT_CHUNK: int = 1024

#: Smallest number of scope entries worth a parallel block of its own in magnitude selection; the
#: scope is cut into ``min(threads, n // SELECT_MIN_BLOCK)`` blocks (at least one).
SELECT_MIN_BLOCK: int = 1 << 16

#: Parallel element-wise kernels (grid points) split each row into chunks of this many elements
#: for ``prange``.
ELEMENTWISE_CHUNK: int = 1 << 15

#: Parallel element-wise kernels smaller than this many elements run serially: a parallel launch
#: costs tens of microseconds on a quiet machine, and milliseconds when other processes hold the cores.
PARALLEL_MIN_SIZE: int = 1 << 17
