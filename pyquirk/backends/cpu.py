"""The native CPU backend: C++ ``_core`` passes plus Numba kernels.

Not built yet (issue: native CPU core). Until then it reports itself unavailable, so the registry
falls back to the reference backend and ``available()`` says why.
"""


def unavailable_reason() -> str:
    return "the native CPU passes are not implemented yet in this build of pyquirk._core"
