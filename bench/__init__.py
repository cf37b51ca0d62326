"""pyquirk's benchmark suite: ``python -m bench`` prints the table for docs/benchmarks.md.

Importing it makes glibc keep freed memory for this process (``pyquirk._native.keep_freed_memory``):
on these microVMs re-faulting a fresh 4 MB NumPy temporary cost 8 ms, which would be timed as part
of whichever implementation allocated it.
"""
from pyquirk._native import keep_freed_memory

keep_freed_memory()
