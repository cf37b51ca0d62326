"""pyquirk's benchmark suite: ``python -m bench`` prints the table for docs/benchmarks.md.

Importing it prepares this process so that one implementation's leftovers are not timed as part of
the next one's run:

- glibc keeps freed memory (``pyquirk._native.keep_freed_memory``): on these microVMs re-faulting a
  fresh 4 MB NumPy temporary cost 8 ms, charged to whichever implementation allocated it;
- NumPy's OpenBLAS workers stop spin-waiting 2²² cycles (≈ 2 ms) after a call instead of 2²⁸
  (≈ 0.1 s; ``OPENBLAS_THREAD_TIMEOUT``, read when NumPy loads, so set here before it does, unless
  the user set it). While they spin they take a core from whatever runs next: interleaved with the
  NumPy reference path, an E = 64 population step used 29.5 ms of CPU instead of 20.0 ms, and
  torch.func's 66 ms instead of 48 ms. Consecutive BLAS calls inside one pass are closer than 2 ms,
  so the reference path keeps its warm workers.
"""
import os

os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "22")

from pyquirk._native import keep_freed_memory  # noqa: E402  (after the variable: it imports NumPy)

keep_freed_memory()
