"""The native CPU backend: the engine's passes in C++ (``pyquirk._core``), GEMMs in BLAS.

Same functions and shapes as :mod:`pyquirk.backends.reference` (its twin and specification):
``theta: [E, P]``, ``X: [Ex, N, *in]``, ``y: [Ey, N]`` int64 (or ``[Ey, N, C]`` MSE targets) with
``Ex, Ey`` in ``{1, E}``, tangents ``V: [E, k, P]``. The population axis E and the tangent axis k
are batch axes inside C++ (members, shards of the batch and tangent chunks run side by side; the k
tangents of a block share one primal pass; docs/native.md): no Python runs per member or per layer.
``PYQUIRK_NATIVE_CPU=0`` switches the backend off.

Each Net is described to C++ once (:func:`net_spec`, cached per Net); a pass then costs one call
into ``_core``. Nets with layers the native core does not know (user subclasses of
:class:`pyquirk.nn.layers.Layer`) run on the reference backend, with a one-time warning.
"""
from __future__ import annotations

import os
import warnings
import weakref

import numpy as np

from . import reference
from .reference_kernels import L2_STEP_FLOOR
from .._native import load_core
from .._validate import as_labels, require_finite
from ..nn import layers as L

# STYLE 4: a missing or broken _core makes this backend unavailable, never pyquirk
_core, _import_error = load_core()

PASSES = ("net_spec", "logits", "loss", "loss_and_grad", "vjp", "hvp", "input_grad", "set_blas")


def _install_scipy_blas() -> str | None:
    """Hand SciPy's sgemm/dgemm capsules (scipy.linalg.cython_blas) to _core; the reason if that fails."""
    try:
        import scipy
        from scipy.linalg import cython_blas
        capi = cython_blas.__pyx_capi__
        _core.set_blas(capi["sgemm"], capi["dgemm"],
                       f"scipy.linalg.cython_blas sgemm/dgemm (SciPy {scipy.__version__})")
    except (ImportError, KeyError, AttributeError, TypeError, ValueError) as e:
        return f"SciPy's BLAS capsules could not be loaded ({type(e).__name__}: {e})"
    return None


def _availability() -> str | None:
    if _core is None:
        return f"pyquirk._core failed to import ({type(_import_error).__name__}: {_import_error})"
    missing = [name for name in PASSES if not hasattr(_core, name)]
    if missing:
        return f"this build of pyquirk._core lacks the native passes ({', '.join(missing)}); rebuild it"
    return _install_scipy_blas()


_reason = _availability()


def unavailable_reason() -> str | None:
    """``None`` when the native passes are usable, else why not (shown by ``pyquirk.available()``).

    ``PYQUIRK_NATIVE_CPU=0`` switches the native passes off (the registry then falls back to the
    reference backend); they are on by default.
    """
    if os.environ.get("PYQUIRK_NATIVE_CPU", "1") == "0":
        return "the native CPU passes are switched off (PYQUIRK_NATIVE_CPU=0); the reference backend is used"
    return _reason


# ------------------------------------------------------------------------------- net description
_ACTIVATIONS = {L.Identity: "identity", L.ReLU: "relu", L.LeakyReLU: "leaky_relu", L.Tanh: "tanh",
                L.Sigmoid: "sigmoid", L.GELU: "gelu"}


def layer_record(layer) -> dict | None:
    """The native record of one built layer, or ``None`` when the core does not implement its type.

    Types are matched exactly: a subclass may change the math, so it is not the layer it extends.
    """
    t = type(layer)
    if t is L.Dense:
        return {"kind": "dense", "out": layer.out_features}
    if t in (L.Conv1d, L.Conv2d):
        return {"kind": "conv", "out": layer.out_channels, "kernel": list(layer.kernel),
                "stride": list(layer.stride), "padding": list(layer.padding)}
    if t in (L.MaxPool, L.AvgPool):
        return {"kind": "maxpool" if t is L.MaxPool else "avgpool", "kernel": list(layer.kernel),
                "stride": list(layer.stride)}
    if t is L.Flatten:
        return {"kind": "flatten"}
    if t is L.Gate:
        return {"kind": "gate"}
    if t is L.LeakyReLU:
        return {"kind": "leaky_relu", "slope": layer.negative_slope}
    if t in _ACTIVATIONS:
        return {"kind": _ACTIVATIONS[t]}
    return None


def net_spec(net):
    """The ``_core`` description of ``net`` (built once, cached), or ``None`` if it needs the reference.

    The core re-derives every shape and offset from the records; they must agree with ``net.layout``.
    """
    entry = _specs.get(id(net))
    if entry is not None and entry[0]() is net:
        return entry[1]
    records = [layer_record(layer) for layer in net.layers]
    if any(r is None for r in records):
        unknown = sorted({type(layer).__name__ for layer, r in zip(net.layers, records) if r is None})
        warnings.warn(f"the cpu backend has no native pass for layer type(s) {', '.join(unknown)}; "
                      f"this net runs on the reference backend", RuntimeWarning, stacklevel=4)
        spec = None
    else:
        spec = _core.net_spec(records, list(net.input_shape), net.loss_name)
        expected = [s.offset for s in net.layout]
        if (spec.n_params != net.n_params or spec.n_outputs != net.n_outputs
                or list(spec.param_offsets) != expected):
            raise RuntimeError(f"native net description disagrees with the Net's layout: {spec!r} vs {net!r}")
    key = id(net)
    _specs[key] = (weakref.ref(net, lambda _, key=key, specs=_specs: specs.pop(key, None)), spec)
    return spec


# id(net) -> (weak reference to the net, its description); the entry leaves with the net. (A plain
# dict: a WeakKeyDictionary lookup is a Python-level call, 15-19 µs right after a pass, when the
# interpreter's caches are cold.)
_specs: dict = {}


def _c(a):
    return np.ascontiguousarray(a)


def _members(a):
    """``a [E, ...]``; a view broadcast over E (shared by all members) goes in as ``[1, ...]``, no copy."""
    if a.shape[0] > 1 and a.strides[0] == 0:
        a = a[:1]
    return _c(a)


# ------------------------------------------------------------------------------------- the passes
# Net has validated dtypes and ranks; _core checks everything it indexes with: shapes, the range of
# class labels, and NaN/inf in θ, X, MSE targets, V and g (each of its threads scans the rows it
# reads next, where NumPy's scan before the call took 12 % of an E = 64 population step,
# docs/native.md §5). Net asks for the scan with check_finite=True; callers that scanned with NumPy
# already leave it False.
SCANS_FINITE = True


def _spec_or_scan(net, check_finite, theta, X, y=None, **tangents):
    """``net``'s description for _core; ``None`` (the reference runs it) after the checks the core
    would have made: the range of class labels y, and NaN/inf in θ, X, MSE targets y and the
    ``tangents`` (V or g) when ``check_finite``."""
    spec = net_spec(net)
    if spec is None:
        if y is not None and y.dtype.kind in "iu":
            as_labels(y, "y", net.n_outputs)
        if check_finite:
            for name, a in {"theta": theta, "X": X, "y": y, **tangents}.items():
                if a is not None and a.dtype.kind == "f":
                    require_finite(a, name)
    return spec


def logits(net, theta, X, check_finite=False):
    """``[E, N, C]``. Twin: :func:`pyquirk.backends.reference.logits`."""
    spec = _spec_or_scan(net, check_finite, theta, X)
    if spec is None:
        return reference.logits(net, theta, X)
    return _core.logits(spec, _c(theta), _c(X), check_finite=check_finite)


def loss(net, theta, X, y, check_finite=False):
    """Per-sample losses ``[E, N]``. Twin: :func:`pyquirk.backends.reference.loss`."""
    spec = _spec_or_scan(net, check_finite, theta, X, y)
    if spec is None:
        return reference.loss(net, theta, X, y)
    return _core.loss(spec, _c(theta), _c(X), _c(y), check_finite=check_finite)


def loss_and_grad(net, theta, X, y, check_finite=False):
    """Mean loss ``[E]`` and its gradient ``[E, P]``. Twin: :func:`pyquirk.backends.reference.loss_and_grad`."""
    spec = _spec_or_scan(net, check_finite, theta, X, y)
    if spec is None:
        return reference.loss_and_grad(net, theta, X, y)
    losses, grad = _core.loss_and_grad(spec, _c(theta), _c(X), _c(y), check_finite=check_finite)
    return losses.mean(axis=-1), grad  # the mean as Net.loss takes it, so the two agree bit for bit


def vjp(net, theta, X, g, check_finite=False):
    """``∂/∂θ Σ g·z`` for a cotangent ``g: [E, N, C]`` on the logits -> ``[E, P]``.

    Twin: :func:`pyquirk.backends.reference.vjp`.
    """
    spec = _spec_or_scan(net, check_finite, theta, X, g=g)
    if spec is None:
        return reference.vjp(net, theta, X, g)
    return _core.vjp(spec, _c(theta), _c(X), _members(g), check_finite=check_finite)


def hvp(net, theta, X, y, V, check_finite=False):
    """Exact ``H v`` for ``V: [E, k, P]`` -> ``[E, k, P]``; the k tangents share one primal pass.

    Twin: :func:`pyquirk.backends.reference.hvp`.
    """
    spec = _spec_or_scan(net, check_finite, theta, X, y, V=V)
    if spec is None:
        return reference.hvp(net, theta, X, y, V)
    return _core.hvp(spec, _c(theta), _c(X), _c(y), _members(V), check_finite=check_finite)


def input_grad(net, theta, X, y, check_finite=False):
    """Logits ``[E, N, C]`` and ``∂l_n/∂x_n`` ``[E, N, *in]``. Twin: :func:`pyquirk.backends.reference.input_grad`."""
    spec = _spec_or_scan(net, check_finite, theta, X, y)
    if spec is None:
        return reference.input_grad(net, theta, X, y)
    return _core.input_grad(spec, _c(theta), _c(X), _c(y), check_finite=check_finite)


# ---------------------------------------------------------------------- beyond the engine's passes
def attack_loop(net, theta, x0, labels, x, alpha, eps, steps, norm, targeted, lo, hi):
    """Every PGD iteration of :mod:`pyquirk.adversarial` in one call (``_core.attack_loop``).

    ``theta: [P]``, ``x0: [N, *in]``, ``labels: [N]`` int64, ``x: [E, N, *in]`` (the start; it
    receives the last iterate), ``alpha``/``eps``: ``[E, N]`` float64. Returns ``(z, x_best,
    z_best, m_best)`` (see :func:`pyquirk.adversarial.attacks._iterate`, the Python loop it
    equals bit for bit), or None for a net that runs on the reference backend.
    """
    spec = net_spec(net)
    if spec is None:
        return None
    return _core.attack_loop(spec, _c(theta), _c(x0), _c(labels), x, _c(alpha), _c(eps), steps=steps, norm=norm,
                             targeted=targeted, lo=lo, hi=hi, l2_floor=L2_STEP_FLOOR)
