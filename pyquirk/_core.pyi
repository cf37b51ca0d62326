"""Type stub for the C++ extension ``pyquirk._core`` (source: csrc/bindings.cpp)."""
from typing import TypedDict

__version__: str

class BuildInfo(TypedDict):
    compiler: str
    """The C++ compiler and its version, e.g. ``"GCC 12.2.0"``."""
    cxx_standard: str
    """The C++ standard the module was compiled as, e.g. ``"C++17"``."""
    blas: str
    """Which BLAS the native GEMMs use; ``"none (GEMMs not yet native)"`` until the native passes land."""
    cuda: bool
    """True when CMake found a CUDA compiler and built the CUDA parts (``PYQUIRK_CUDA``)."""
    openmp: bool
    """True when the module was compiled with OpenMP."""
    version: str
    """The pyquirk version the module was built from."""

def build_info() -> BuildInfo:
    """How this ``_core`` was built."""
    ...
