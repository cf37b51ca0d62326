"""Helpers shared by the memorization, initialization and ordering experiments.

- :func:`mlp`: the small MLPs these experiments use (``Dense``/activation stacks);
- :func:`member_seeds`: the per-run ``Seeds`` of a population (run s shifts every stream by s);
- :func:`init_population`: θ₀ ``[E, P]`` from per-member init seeds;
- :func:`first_reached`: time-to-fit from a recorded history;
- :func:`classification_data`: a classification data set (MNIST-1D by default), flattened.
"""
from __future__ import annotations

import numpy as np

from .._validate import check_choice, check_positive_int
from ..seeds import STREAMS, Seeds, as_seeds

ACTIVATIONS = ("relu", "tanh")


def mlp(n_in: int, hidden, n_classes: int, act: str = "relu", loss: str = "ce"):
    """``Net([Dense(h), act, ..., Dense(n_classes)], input_shape=(n_in,))``.

    Args:
        n_in: input features; hidden: widths of the hidden layers (an int for one layer);
        n_classes: outputs; act: ``"relu"`` or ``"tanh"``.
    """
    from ..nn import Dense, Net, ReLU, Tanh
    check_choice(act, ACTIVATIONS, "activation")
    hidden = [hidden] if isinstance(hidden, (int, np.integer)) else list(hidden)
    layers = []
    for i, h in enumerate(hidden):
        layers += [Dense(check_positive_int(h, f"hidden[{i}]")), ReLU() if act == "relu" else Tanh()]
    return Net(layers + [Dense(n_classes)], input_shape=(n_in,), loss=loss)


def member_seeds(seeds, n: int) -> list[Seeds]:
    """Run s of n gets ``Seeds`` with every stream's seed shifted by s (run 0 is ``seeds`` itself).

    A population built from these reproduces n separate runs ``fit(..., seeds=member_seeds[s])``
    exactly (the training loop's per-member seeds rule).
    """
    base = Seeds() if seeds is None else as_seeds(seeds)
    n = check_positive_int(n, "n_seeds")
    return [Seeds(**{k: getattr(base, k) + s for k in STREAMS}) for s in range(n)]


def classification_data(ds, n_train: int | None, n_test: int | None):
    """``(ds, X_train [N, D], X_test [M, D])``: ``ds`` (MNIST-1D when None), cut to its first
    ``n_train`` / ``n_test`` examples when given, with the inputs flattened.

    Raises:
        ValueError: the data set has fewer than 2 classes.
    """
    if ds is None:
        from ..data import mnist1d
        ds = mnist1d()
    if n_train is not None or n_test is not None:
        ds = ds.subset(n_train=n_train, n_test=n_test)
    if ds.n_classes < 2:
        raise ValueError("a classification data set is needed")
    return ds, ds.X_train.reshape(ds.n_train, -1), ds.X_test.reshape(ds.n_test, -1)


def init_population(net, seeds: list[Seeds], scheme: str = "he_normal", gain: float = 1.0,
                    dtype=np.float32) -> np.ndarray:
    """θ₀ ``[len(seeds), P]``: row s is ``net.init(seeds[s], scheme, gain)``."""
    return np.stack([net.init(s, scheme=scheme, gain=gain, dtype=dtype) for s in seeds])


def first_reached(steps, values, threshold: float) -> np.ndarray:
    """First recorded step at which ``values >= threshold`` (−1 where never).

    Args:
        steps: [T] record steps; values: [T, ...] metric (e.g. train accuracy).
    Returns:
        int64 array of ``values.shape[1:]``.
    """
    steps, values = np.asarray(steps), np.asarray(values)
    hit = values >= threshold
    first = np.argmax(hit, axis=0)
    return np.where(hit.any(axis=0), steps[first], -1).astype(np.int64)


def blas_threads_limit(n: int | None):
    """``threadpoolctl.threadpool_limits(n, "blas")`` as a context manager; a no-op for n=None or
    without threadpoolctl (a scikit-learn dependency).

    For the small dense solves and products of these experiments one BLAS thread is faster: on 2
    cores shared with other work, multi-threaded OpenBLAS spent 100× longer on them (measured).
    """
    import contextlib
    if n is None:
        return contextlib.nullcontext()
    n = check_positive_int(n, "blas_threads")
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(limits=n, user_api="blas")


def stack_members(arrays: list[np.ndarray]) -> np.ndarray:
    """``np.stack`` of per-member arrays (all the same shape) into ``[E, ...]``."""
    return np.ascontiguousarray(np.stack(arrays))


class DivergenceGuard:
    """A view of a ``Net`` for :func:`pyquirk.train.fit` that lets population members diverge.

    The engine's passes reject a non-finite θ, so one member whose weights overflow (an init
    scale far too large, say) would stop the whole population. Through this guard, members
    whose θ row is not finite are evaluated at θ = 0 and reported with NaN loss, NaN logits and
    a zero gradient, so under SGD or Adam they stay non-finite (diverged) while every other
    member computes exactly what it would without the guard (members are independent).
    Everything else is delegated to the wrapped net.
    """

    def __init__(self, net):
        self._net = net

    def __getattr__(self, name):
        return getattr(self._net, name)

    def __repr__(self):
        return repr(self._net)

    @staticmethod
    def _split(theta):
        theta = np.asarray(theta)
        bad = ~np.isfinite(theta).all(axis=-1)
        if not bad.any():
            return theta, None
        return np.where(bad[..., None], 0, theta).astype(theta.dtype), bad

    def loss_and_grad(self, theta, X, y, backend=None):
        safe, bad = self._split(theta)
        loss, grad = self._net.loss_and_grad(safe, X, y, backend=backend)
        if bad is not None:
            loss, grad = np.where(bad, np.nan, loss), np.where(bad[..., None], 0, grad).astype(grad.dtype)
        return loss, grad

    def logits(self, theta, X, backend=None):
        safe, bad = self._split(theta)
        z = self._net.logits(safe, X, backend=backend)
        if bad is not None:
            z = np.where(bad.reshape(bad.shape + (1,) * (z.ndim - bad.ndim)), np.nan, z).astype(z.dtype)
        return z


def diverged(theta) -> np.ndarray:
    """Members whose θ has a non-finite entry: ``[E]`` bool (or a bool for θ ``[P]``)."""
    return ~np.isfinite(np.asarray(theta)).all(axis=-1)
