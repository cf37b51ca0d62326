"""Backend registry (DESIGN §3).

A backend is a module that implements the engine's passes (``logits``, ``loss``,
``loss_and_grad``, ``hvp``, ``input_grad``) for a :class:`pyquirk.nn.Net`. Names:

- ``reference``: plain NumPy (:mod:`pyquirk.backends.reference`), always present; the specification.
- ``cpu``: the ``_core`` C++ extension plus Numba kernels (a later issue).
- ``cuda``: CuPy arrays plus CUDA kernels (a later issue).

Resolution order for a pass: an explicit ``backend=`` argument, then :func:`use_backend`, then the
``PYQUIRK_BACKEND`` environment variable, then the fastest available backend. Importing pyquirk never
fails because an optional backend is missing; the ImportError is kept and raised, with its cause,
only when that backend is asked for.
"""
from __future__ import annotations

import contextlib
import contextvars
import importlib
import os
from types import ModuleType

#: Backends in order of preference (fastest first) for automatic choice.
BACKENDS = ("cuda", "cpu", "reference")

_modules: dict[str, ModuleType] = {}
_errors: dict[str, str] = {}
_current: contextvars.ContextVar[str | None] = contextvars.ContextVar("pyquirk_backend", default=None)


def _load(name: str) -> ModuleType | None:
    if name in _modules:
        return _modules[name]
    if name in _errors:
        return None
    try:
        mod = importlib.import_module(f"{__name__}.{name}")
        reason = getattr(mod, "unavailable_reason", lambda: None)()
        if reason:
            raise ImportError(reason)
    except ImportError as e:  # keep the first cause, show it when asked
        _errors[name] = f"{type(e).__name__}: {e}"
        return None
    _modules[name] = mod
    return mod


def available() -> dict[str, str | None]:
    """Map each backend name to ``None`` if usable, else the reason it is not."""
    return {name: (None if _load(name) else _errors[name]) for name in BACKENDS}


def _validate_name(name) -> str:
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; expected one of {', '.join(BACKENDS)}")
    return name


def requested(backend: str | None = None) -> str | None:
    """The backend asked for by argument, :func:`use_backend` or ``PYQUIRK_BACKEND``; None if none."""
    for choice in (backend, _current.get(), os.environ.get("PYQUIRK_BACKEND") or None):
        if choice is not None:
            return _validate_name(choice)
    return None


def resolve(backend: str | None = None) -> str:
    """The backend name a pass will use, following the DESIGN §3 resolution order."""
    name = requested(backend)
    return name if name is not None else next(n for n in BACKENDS if _load(n) is not None)


def get(backend: str | None = None) -> ModuleType:
    """The backend module for ``backend`` (resolved as in :func:`resolve`)."""
    # A loaded backend asked for by name, in one lookup: every pass asks, right after the previous
    # pass evicted the interpreter's caches (Net.hvp's Python cost 30-70 µs less, docs/native.md §5).
    mod = _modules.get(backend) if type(backend) is str else None
    if mod is not None:
        return mod
    name = resolve(backend)
    mod = _load(name)
    if mod is None:
        raise RuntimeError(f"backend {name!r} is not available: {_errors[name]}")
    return mod


@contextlib.contextmanager
def use_backend(name: str):
    """Context manager: passes inside use backend ``name`` unless given ``backend=`` explicitly."""
    _validate_name(name)
    token = _current.set(name)
    try:
        yield name
    finally:
        _current.reset(token)
