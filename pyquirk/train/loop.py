"""The training loop: mini-batch training of one net or a population of E nets in lockstep.

A population is θ ``[E, P]``: every step is ONE engine call with per-member batches
``X: [E, B, ...]``, ``y: [E, B]`` and one elementwise optimizer update, never a Python loop over
members. Because every per-member computation (stacked GEMMs, elementwise maths, reductions over
the batch) is done the same way for one member as for E, member e of a population produces the same
bits as a single run with member e's θ₀, order and mask (tested on the reference backend; see
docs/training.md for a known engine exception with wider convolutions).

Order rule (the ``order`` RNG stream, DESIGN §4). A run is a list of order streams, one per member:

- ``seeds=s`` (a ``Seeds``, an int or a dict) gives member e the stream ``s.rng("order", member=e)``,
  i.e. ``stream("order", s.order, e)``. A single run is a population of one: it uses member 0.
  So a single run with ``seeds=s`` equals member 0 of a population with ``seeds=s``.
- ``seeds=[s_0, ..., s_{E-1}]`` (population only) gives member e the stream
  ``s_e.rng("order", member=0)``, the very stream a single run with ``seeds=s_e`` uses. A population
  with a list of seeds therefore reproduces E separate single runs exactly.

Each epoch, each member draws ``rng.permutation(N)`` from its stream (epochs in sequence from the
same Generator). Batches are consecutive slices of that permutation; the last, partial batch is
kept (PyTorch ``DataLoader(drop_last=False)``). ``order=`` replaces the streams by given
permutations. Only the order stream is used here: initial parameters come from ``net.init`` (the
``init`` stream), so changing the order seed never changes θ₀.
"""
from __future__ import annotations

import math
import time

import numpy as np
from tqdm.auto import tqdm

from .. import backends
from .._validate import as_float_array, as_labels, check_choice, check_positive_int
from ..seeds import STREAMS, as_seeds
from .optim import check_mask, make_optimizer
from .result import TrainResult

METRICS = ("train_acc", "train_loss", "test_acc", "test_loss")


# ------------------------------------------------------------------------------------ inputs
def _check_data(net, X, y, E, dtype, names=("X", "y")):
    """Validate data against ``net``; returns ``(X, y, N, X per member?, y per member?)``.

    ``X: [N, *in]`` shared or ``[E, N, *in]`` per member; ``y: [N]`` / ``[E, N]`` class labels, or
    float targets ``[N, C]`` / ``[E, N, C]`` for MSE. X is cast to θ's dtype once, here.
    """
    nx, ny = names
    X = as_float_array(X, nx, dtype=dtype)
    d = len(net.input_shape)
    if X.ndim not in (d + 1, d + 2) or X.shape[X.ndim - d:] != net.input_shape:
        raise ValueError(f"{nx} must have shape [N, {', '.join(map(str, net.input_shape))}] or "
                         f"[E, N, ...], got {X.shape}")
    x_member = X.ndim == d + 2
    if x_member and (E is None or X.shape[0] != E):
        raise ValueError(f"{nx} of shape {X.shape} is per member, which needs theta0 of shape [{X.shape[0]}, P]")
    N = X.shape[-d - 1]
    if net.loss_fn.label_kind == "class" or np.asarray(y).dtype.kind in "iu":
        y, feat = as_labels(y, ny, net.n_outputs), 0
    else:
        y, feat = as_float_array(y, ny, dtype=dtype), 1
        if y.shape[-1] != net.n_outputs:
            raise ValueError(f"{ny} targets must have {net.n_outputs} outputs, got shape {y.shape}")
    if y.ndim - feat not in (1, 2):
        raise ValueError(f"{ny} must have shape [N] or [E, N] (plus [C] for targets), got {y.shape}")
    y_member = y.ndim - feat == 2
    if y_member and (E is None or y.shape[0] != E):
        raise ValueError(f"{ny} of shape {y.shape} is per member, which needs theta0 of shape [{y.shape[0]}, P]")
    if y.shape[int(y_member)] != N:
        raise ValueError(f"{ny} has {y.shape[int(y_member)]} samples but {nx} has {N}")
    return X, y, N, x_member, y_member


def _order_streams(seeds, E):
    """(one order Generator per member (1 for a single run), the seeds as a dict for the result)."""
    if isinstance(seeds, np.ndarray) and seeds.ndim == 1:
        seeds = seeds.tolist()
    if isinstance(seeds, (list, tuple)):
        if E is None or len(seeds) != E:
            raise ValueError(f"a list of seeds needs theta0 of shape [len(seeds)={len(seeds)}, P]; "
                             f"got {'a single θ [P]' if E is None else f'E={E} members'}")
        per = [as_seeds(s) for s in seeds]
        return [s.rng("order", member=0) for s in per], {k: [getattr(s, k) for s in per] for k in STREAMS}
    s = as_seeds(seeds)
    return [s.rng("order", member=e) for e in range(E or 1)], s.to_dict()


def _check_order(order, N, E):
    """Given order -> ``(int64 [M, K, N], repeats every epoch?)`` with M in {1, E}."""
    arr = np.asarray(order)
    if arr.dtype.kind not in "iu":
        raise TypeError(f"order must be an integer array, got dtype {arr.dtype}")
    if arr.ndim not in (1, 2, 3) or arr.shape[-1] != N:
        raise ValueError(f"order must have shape [N={N}], [epochs, N] or [E, epochs, N], got {arr.shape}")
    if arr.ndim == 3 and (E is None or arr.shape[0] != E):
        raise ValueError(f"order of shape {arr.shape} is per member, which needs theta0 of shape "
                         f"[{arr.shape[0]}, P]")
    if arr.size == 0:
        raise ValueError("order is empty")
    if not np.array_equal(np.sort(arr, axis=-1), np.broadcast_to(np.arange(N), arr.shape)):
        raise ValueError(f"order must hold a permutation of 0..{N - 1} in every epoch")
    repeat = arr.ndim == 1
    arr = (arr if arr.ndim == 3 else arr.reshape(1, -1, N)).astype(np.int64, copy=False)
    return arr, repeat


def _batch(A, idx, per_member):
    """Rows ``idx: [M, b]`` of ``A`` (shared ``[N, ...]`` or per member ``[E, N, ...]``).

    Returns ``[b, ...]`` (shared batch, M = 1) or ``[E, b, ...]`` (per-member batches).
    """
    if per_member:
        return A[np.arange(A.shape[0])[:, None], idx]
    return A[idx[0]] if idx.shape[0] == 1 else A[idx]


def _evaluate(net, theta, X, y, backend):
    """(mean loss, accuracy) on all of ``X`` from one forward pass: scalars, or [E] for θ [E, P].

    Same values as ``net.loss`` and ``net.accuracy`` (integer labels are one-hot encoded for MSE;
    accuracy against float targets uses their arg-max).
    """
    z = net.logits(theta, X, backend=backend)                         # [N, C] or [E, N, C]
    if y.dtype.kind in "iu":
        labels = y
        target = y if net.loss_fn.label_kind == "class" else np.eye(net.n_outputs, dtype=z.dtype)[y]
    else:
        labels, target = y.argmax(-1), y
    return net.loss_fn.per_sample(z, target).mean(axis=-1), (z.argmax(-1) == labels).mean(axis=-1)


def _resolve_length(epochs, steps, nb, given):
    """Planned number of steps, and a check that a given order covers it."""
    if steps is not None:
        total = check_positive_int(steps, "steps")
    else:
        if epochs is None:
            epochs = 1 if given is None or given[1] else given[0].shape[1]
        total = check_positive_int(epochs, "epochs") * nb
    if given is not None and not given[1]:
        need = math.ceil(total / nb)
        if given[0].shape[1] < need:
            raise ValueError(f"order covers {given[0].shape[1]} epoch(s) but the run needs {need}")
    return total


# ------------------------------------------------------------------------------------ fit
def fit(net, theta0, X, y, optimizer, *, epochs: int | None = None, steps: int | None = None,
        batch_size: int = 100, seeds=0, order=None, mask=None, eval_data=None,
        eval_every: int | None = None, record_every: int | None = None,
        stop_at: float | None = None, stop_metric: str = "train_acc", progress: bool = False,
        backend: str | None = None) -> TrainResult:
    """Train ``net`` from ``theta0`` by mini-batch steps of ``optimizer``.

    Args:
        net: a :class:`pyquirk.nn.Net`.
        theta0: initial parameters [P], or [E, P] for a population trained in lockstep.
        X: inputs [N, *in] shared by all members, or [E, N, *in] per member.
        y: labels [N] / [E, N] (int classes), or targets [N, C] / [E, N, C] for MSE.
        optimizer: an :class:`SGD`/:class:`Adam`, a name, or a config dict (see ``make_optimizer``).
        epochs: passes over the data (default: the epochs in ``order`` if given, else 1).
        steps: exact number of optimizer steps; overrides ``epochs``.
        batch_size: examples per step; the last batch of an epoch may be smaller (kept).
        seeds: ``Seeds``/int/dict, or (population) a list of E of them; see the module's order rule.
        order: given example order, int [N] (every epoch), [epochs, N] (all members) or
            [E, epochs, N]; each row a permutation of 0..N-1. Replaces the seeded order.
        mask: bool [P] or [E, P]; False entries are frozen (kept bit-exact from ``theta0``).
        eval_data: ``(X_test, y_test)``, shared or per member, evaluated at every record point.
        eval_every: steps between record points (default: once per epoch); step 0 and the last
            step are always recorded. Record points are where ``stop_at`` is checked.
        record_every: steps between trajectory snapshots of θ (default: no trajectory).
        stop_at: stop once ``stop_metric`` reaches this value (>= for accuracy, <= for loss); a
            population stops when every member has reached it (all keep stepping until then).
        stop_metric: one of ``"train_acc"``, ``"train_loss"``, ``"test_acc"``, ``"test_loss"``.
        progress: show a tqdm progress bar.
        backend: engine backend for every pass (see :mod:`pyquirk.backends`).

    Returns:
        :class:`TrainResult` with θ, history [T] or [T, E], trajectory, ``time_to_fit``, seeds and
        semantics.
    """
    t_start = time.perf_counter()
    theta0 = as_float_array(theta0, "theta0", ndim=(1, 2))
    if theta0.shape[-1] != net.n_params:
        raise ValueError(f"theta0 must have last dimension P={net.n_params}, got shape {theta0.shape}")
    E = theta0.shape[0] if theta0.ndim == 2 else None
    opt = make_optimizer(optimizer)
    X, y, N, x_member, y_member = _check_data(net, X, y, E, theta0.dtype)
    B = check_positive_int(batch_size, "batch_size")
    nb = math.ceil(N / B)
    mask = check_mask(mask, theta0.shape)
    given = None if order is None else _check_order(order, N, E)
    total = _resolve_length(epochs, steps, nb, given)
    eval_every = nb if eval_every is None else check_positive_int(eval_every, "eval_every")
    if record_every is not None:
        record_every = check_positive_int(record_every, "record_every")
    if eval_data is not None:
        if not isinstance(eval_data, (tuple, list)) or len(eval_data) != 2:
            raise TypeError("eval_data must be a pair (X_test, y_test)")
        Xt, yt, *_ = _check_data(net, eval_data[0], eval_data[1], E, theta0.dtype,
                                 ("eval_data[0]", "eval_data[1]"))
    _check_stop(stop_at, stop_metric, eval_data)
    rngs, seeds_dict = _order_streams(seeds, E)
    backend = backends.resolve(backend)          # resolved once: every pass of the run uses it

    theta = theta0.copy()
    state = opt.init(theta)
    rec = _Recorder(net, X, y, None if eval_data is None else (Xt, yt), E, stop_at, stop_metric,
                    record_every, backend)
    bar = tqdm(total=total, desc="fit", disable=not progress, leave=False)
    stopped = rec.record(0, theta)
    step = 0
    while step < total and not stopped:
        epoch, j = divmod(step, nb)
        if j == 0:
            if given is None:
                perm = np.stack([rng.permutation(N) for rng in rngs])   # [E or 1, N]
            else:
                perm = given[0][:, 0 if given[1] else epoch]
        idx = perm[:, j * B:(j + 1) * B]                                 # [E or 1, b]
        loss, grad = net.loss_and_grad(theta, _batch(X, idx, x_member), _batch(y, idx, y_member),
                                       backend=backend)
        theta, state = opt.step(theta, grad, state, mask)
        step += 1
        rec.add_batch_loss(loss)
        bar.update(1)
        if step % eval_every == 0 or step == total:
            stopped = rec.record(step, theta)
            bar.set_postfix(train_acc=f"{np.mean(rec.hist['train_acc'][-1]):.3f}")
        if record_every is not None and (step % record_every == 0 or step == total or stopped):
            rec.snapshot(step, theta)
    bar.close()

    traj, traj_steps = rec.trajectory()
    semantics = _semantics(net, opt, B, nb, N, total, given, seeds, eval_every, record_every, stop_at,
                           stop_metric, mask, E, theta0.dtype, backend, x_member or y_member)
    return TrainResult(
        theta=theta, theta0=theta0.copy(), history=rec.history(nb), trajectory=traj,
        trajectory_steps=traj_steps, steps_done=step, time_to_fit=rec.time_to_fit(),
        semantics=semantics, seeds=seeds_dict,
        counts={"grad_calls": step, "evals": len(rec.hist["steps"]),
                "wall_time_s": time.perf_counter() - t_start})


# ------------------------------------------------------------------------------------ helpers of fit
def _check_stop(stop_at, stop_metric, eval_data):
    check_choice(stop_metric, METRICS, "stop_metric")
    if stop_at is None:
        return
    if isinstance(stop_at, bool) or not isinstance(stop_at, (int, float, np.integer, np.floating)) \
            or not math.isfinite(stop_at):
        raise ValueError(f"stop_at must be a finite number, got {stop_at!r}")
    if stop_metric.startswith("test") and eval_data is None:
        raise ValueError(f"stop_metric={stop_metric!r} needs eval_data")


class _Recorder:
    """History at record points, θ snapshots, and time-to-fit bookkeeping for one :func:`fit`."""

    def __init__(self, net, X, y, test, E, stop_at, stop_metric, record_every, backend):
        self.net, self.X, self.y, self.test, self.E, self.backend = net, X, y, test, E, backend
        self.stop_at, self.stop_metric, self.record_every = stop_at, stop_metric, record_every
        keys = ("steps", "train_loss", "train_acc", "batch_loss") + (("test_loss", "test_acc") if test else ())
        self.hist = {k: [] for k in keys}
        self.traj, self.traj_steps = [], []
        self.ttf = np.full(E or 1, -1, dtype=np.int64)
        self.batch_sum, self.batch_n = 0.0, 0

    def add_batch_loss(self, loss):
        self.batch_sum, self.batch_n = self.batch_sum + loss, self.batch_n + 1

    def record(self, step, theta) -> bool:
        """Append a record point (and, at step 0, a snapshot); True once the stop criterion holds."""
        h = self.hist
        h["steps"].append(step)
        loss, acc = _evaluate(self.net, theta, self.X, self.y, self.backend)
        h["train_loss"].append(loss)
        h["train_acc"].append(acc)
        h["batch_loss"].append(self.batch_sum / self.batch_n if self.batch_n else np.full(self.E or (), np.nan))
        self.batch_sum, self.batch_n = 0.0, 0
        if self.test is not None:
            loss, acc = _evaluate(self.net, theta, *self.test, self.backend)
            h["test_loss"].append(loss)
            h["test_acc"].append(acc)
        if step == 0:
            self.snapshot(0, theta)
        if self.stop_at is None:
            return False
        value = np.atleast_1d(h[self.stop_metric][-1])
        hit = value >= self.stop_at if self.stop_metric.endswith("acc") else value <= self.stop_at
        self.ttf[hit & (self.ttf < 0)] = step
        return bool(np.all(self.ttf >= 0))

    def snapshot(self, step, theta):
        if self.record_every is not None and (not self.traj_steps or self.traj_steps[-1] != step):
            self.traj.append(theta.copy())
            self.traj_steps.append(step)

    def history(self, nb) -> dict:
        out = {k: np.asarray(v) for k, v in self.hist.items()}
        out["steps"] = out["steps"].astype(np.int64)
        out["epoch"] = out["steps"] / nb
        return out

    def trajectory(self):
        if not self.traj:
            return None, None
        return np.stack(self.traj), np.asarray(self.traj_steps, dtype=np.int64)

    def time_to_fit(self):
        if self.stop_at is None:
            return None
        return self.ttf if self.E is not None else int(self.ttf[0])


def _semantics(net, opt, B, nb, N, total, given, seeds, eval_every, record_every, stop_at, stop_metric,
               mask, E, dtype, backend, per_member) -> dict:
    """The choices a run was made with, for ``TrainResult.semantics``."""
    if given is not None:
        rule = "given permutations"
    elif isinstance(seeds, (list, tuple, np.ndarray)):
        rule = "per-member seeds list: member e uses seeds[e].rng('order', member=0)"
    else:
        rule = "member e (a single run is member 0) uses seeds.rng('order', member=e)"
    return {
        "net": repr(net), "optimizer": opt.config(), "batch_size": B, "drop_last": False,
        "batches_per_epoch": nb, "n_train": N, "steps_planned": total,
        "order": "given" if given is not None else "seeded",
        "order_rule": rule + "; one permutation per epoch, consecutive batches, last partial batch kept",
        "history": "train_*/test_*: full data set at each record point; batch_loss: mean of the "
                   "mini-batch losses since the previous record point",
        "eval_every": eval_every, "record_every": record_every,
        "stop_at": stop_at, "stop_metric": stop_metric,
        "stop_rule": "a population stops when every member has reached stop_at",
        "masked": mask is not None, "n_frozen": 0 if mask is None else int((~mask).sum()),
        "population": E, "dtype": np.dtype(dtype).name, "backend": backend,
        "data_per_member": bool(per_member),
    }


__all__ = ["fit", "METRICS"]
