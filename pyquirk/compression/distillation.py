"""Knowledge distillation (Hinton, Vinyals & Dean 2015): a student trained on a teacher's soft targets.

Teacher: one net ``θ [P]`` or an ensemble run as a population ``θ [M, P]``. Its soft targets at
temperature T are ``q_T = softmax(z_t / T)``, averaged over the members for an ensemble (the
arithmetic mean of the members' softened distributions).

Student loss for each example, with ``p_T = softmax(z_s / T)`` and weight α of the soft term::

    L = α · T² · CE(q_T, p_T) + (1 − α) · CE(y, softmax(z_s))

The T² keeps the soft term's gradient magnitude independent of T (Hinton et al. §2). Its gradient
at the student's logits, per example (then divided by the batch size)::

    ∂L/∂z_s = α · T · (p_T − q_T) + (1 − α) · (softmax(z_s) − onehot(y))

The engine's losses are CE with integer labels and MSE, so this gradient is formed here and pulled
back to θ by a vector-Jacobian product through the net (:func:`vjp_logits`).

A sweep over T is ONE population: student e has its own ``(T_e, α_e)``; ``α = 0`` is the student on
hard labels alone. All students start from the same θ₀ and see the same batches.
"""
from __future__ import annotations

import time

import numpy as np

from .._validate import as_float_array
from ..backends import reference as _ref
from ..nn.losses import softmax
from ..seeds import as_seeds
from ..train import Adam
from ._loop import minibatch_loop, split_data
from .results import DistillationResult


def vjp_logits(net, theta, X, g_logits):
    """``∂/∂θ Σ_{n,c} g[n, c]·z[n, c]``: the VJP of the logits with cotangent ``g``, per member.

    Uses the reference backend's ``_forward``/``_backward`` with a given cotangent: the engine has no
    public "VJP from logits" entry point yet (a ``net.vjp(theta, X, g_logits)`` would be cleaner and
    could run natively).

    Args:
        theta: ``[E, P]``; X: ``[N, *in]`` shared; g_logits: ``[E, N, C]`` (or a callable
            ``g(z) -> [E, N, C]`` of the logits of the same forward pass).

    Returns:
        (logits ``[E, N, C]``, gradient ``[E, P]``).
    """
    t, X3, _ = net._prepare(theta, X)
    params = net.layer_params(t)
    z, caches = _ref._forward(net, params, X3)
    g = g_logits(z) if callable(g_logits) else np.asarray(g_logits, dtype=z.dtype)
    _, grads = _ref._backward(net, params, caches, g)
    return z, net.flatten(grads, t.shape[:1], t.dtype)


def train_ensemble(net, data, members: int, *, steps: int = 1000, optimizer=None, batch_size: int = 100,
                   seeds=0, backend: str | None = None, progress: bool = False):
    """An ensemble teacher: ``members`` nets trained in lockstep as one population.

    Member e starts from ``net.init(seeds.rng("init", member=e))`` and draws its example order from
    ``seeds.rng("order", member=e)`` (``fit``'s rule for one ``seeds``).

    Returns:
        the population :class:`pyquirk.train.TrainResult` (``theta: [members, P]``).
    """
    from ..train import fit
    s = as_seeds(seeds)
    Xtr, ytr, Xte, yte = split_data(data)
    theta0 = np.stack([net.init(s.rng("init", member=e)) for e in range(members)])
    return fit(net, theta0, Xtr, ytr, optimizer or Adam(1e-2), steps=steps, batch_size=batch_size, seeds=s,
               eval_data=(Xte, yte), eval_every=steps, backend=backend, progress=progress)


def soft_targets(net, theta, X, T, *, backend: str | None = None) -> np.ndarray:
    """Teacher soft targets ``[N, C]`` at temperature T (float64; ensemble-averaged for θ ``[M, P]``)."""
    z = np.asarray(net.logits(theta, X, backend=backend), dtype=np.float64)
    q = softmax(z / float(T))
    return q.mean(axis=0) if q.ndim == 3 else q


def _log_softmax(z):
    m = z.max(axis=-1, keepdims=True)
    return z - m - np.log(np.exp(z - m).sum(axis=-1, keepdims=True))


def distill_loss_grad(z, y, q, T, alpha):
    """Per-member distillation loss (batch mean) and its gradient at the logits.

    Args:
        z: student logits ``[E, N, C]``; y: ``[N]`` int labels; q: soft targets ``[E, N, C]``;
        T, alpha: ``[E]``.

    Returns:
        (loss ``[E]``, ∂loss/∂z ``[E, N, C]`` in z's dtype).
    """
    E, N, C = z.shape
    Tb, ab = T[:, None, None], alpha[:, None, None]
    z64 = z.astype(np.float64)
    log_pT, log_p = _log_softmax(z64 / Tb), _log_softmax(z64)
    onehot = np.eye(C)[y][None]
    soft = -(q * log_pT).sum(-1).mean(-1)
    hard = -(onehot * log_p).sum(-1).mean(-1)
    loss = alpha * T ** 2 * soft + (1 - alpha) * hard
    g = (ab * Tb * (np.exp(log_pT) - q) + (1 - ab) * (np.exp(log_p) - onehot)) / N
    return loss, g.astype(z.dtype)


def distill(student, teacher, data, *, temperatures=(1.0, 2.0, 4.0, 8.0), alpha: float = 0.5,
            steps: int = 2000, optimizer=None, batch_size: int = 100, theta0=None, seeds=0,
            eval_every: int | None = None, backend: str | None = None, progress: bool = False
            ) -> DistillationResult:
    """Train the student on hard labels alone and distilled at each T, as one population.

    Args:
        student: the student :class:`pyquirk.nn.Net`.
        teacher: ``(net, theta)`` with θ ``[P]`` or an ensemble ``[M, P]`` (already trained).
        data: a ``Dataset`` or ``(X_train, y_train, X_test, y_test)``; the teacher and the student
            take the same inputs.
        temperatures: ``[K]`` T > 0 of the distilled students.
        alpha: weight of the soft term in ``(0, 1]`` for every distilled student.
        steps, optimizer (default ``Adam(1e-2)``), batch_size, seeds: the training loop.
        theta0: the students' common θ₀ ``[P]`` (default ``student.init(seeds)``).
        eval_every: steps between test evaluations in the history (default: start and end).

    Returns:
        :class:`DistillationResult`; member 0 is the hard-label student (α = 0).
    """
    t0 = time.perf_counter()
    Xtr, ytr, Xte, yte = split_data(data)
    tnet, tth = teacher
    Ts = as_float_array(np.atleast_1d(temperatures), "temperatures", dtype=np.float64, ndim=1)
    if (Ts <= 0).any():
        raise ValueError(f"temperatures must be > 0, got {Ts.tolist()}")
    if not 0 < float(alpha) <= 1:
        raise ValueError(f"alpha must lie in (0, 1], got {alpha}")
    s = as_seeds(seeds)
    th0 = student.init(s) if theta0 is None else as_float_array(theta0, "theta0", ndim=1)
    T = np.concatenate([[1.0], Ts])
    a = np.concatenate([[0.0], np.full(Ts.size, float(alpha))])
    E = T.size
    q = np.stack([soft_targets(tnet, tth, Xtr, t, backend=backend) for t in T])      # [E, N, C]
    Xtr = np.asarray(Xtr, dtype=th0.dtype)
    ytr = np.asarray(ytr)

    def loss_and_grad(phi, idx):
        out = {}

        def cot(z):
            out["loss"], g = distill_loss_grad(z, ytr[idx], q[:, idx], T, a)
            return g
        _, grad = vjp_logits(student, phi, Xtr[idx], cot)
        return out["loss"], grad

    def record(step, phi):
        return {"step": step, "test_acc": np.asarray(student.accuracy(phi, Xte, yte, backend=backend))}

    run = minibatch_loop(np.broadcast_to(th0, (E, th0.size)), Xtr.shape[0], loss_and_grad,
                         optimizer or Adam(1e-2), steps=steps, batch_size=batch_size, seeds=s, record=record,
                         record_every=eval_every, progress=progress, desc="distill")
    theta = run["phi"]
    members = np.atleast_1d(np.asarray(tnet.accuracy(tth, Xte, yte, backend=backend), dtype=float))
    qt = soft_targets(tnet, tth, Xte, 1.0, backend=backend)
    recs = run["records"]
    return DistillationResult(
        temperatures=T, alphas=a, test_acc=np.asarray(student.accuracy(theta, Xte, yte, backend=backend)),
        train_acc=np.asarray(student.accuracy(theta, Xtr, ytr, backend=backend)),
        history_steps=np.array([r["step"] for r in recs]),
        history_test_acc=np.stack([r["test_acc"] for r in recs]),
        teacher_acc=float((qt.argmax(-1) == yte).mean()), teacher_members_acc=members, theta=theta,
        semantics={"student": repr(student), "teacher": repr(tnet), "ensemble": int(np.ndim(tth) == 2 and
                   np.shape(tth)[0]), "loss": "α·T²·CE(q_T, softmax(z/T)) + (1−α)·CE(y, softmax(z))",
                   "ensemble_targets": "mean of the members' softmax(z/T)", "alpha": float(alpha),
                   "steps": steps, "batch_size": batch_size, "optimizer": run["optimizer"],
                   "population": "member 0: hard labels alone (α=0); members 1..: distilled at each T; "
                                 "same θ₀ and batches"},
        seeds=s.to_dict(), counts={"grad_calls": steps, "students": E, "wall_time_s": time.perf_counter() - t0})


__all__ = ["vjp_logits", "train_ensemble", "soft_targets", "distill_loss_grad", "distill"]
