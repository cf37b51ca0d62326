"""pyquirk: a laboratory for the unintuitive properties of deep neural networks."""
from __future__ import annotations

__version__ = "0.1.0"

from .backends import available, use_backend  # noqa: E402
from .seeds import Seeds  # noqa: E402

__all__ = ["__version__", "available", "use_backend", "Seeds"]
