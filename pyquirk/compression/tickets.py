"""Pruning experiments: one-shot accuracy-vs-sparsity curves, iterative pruning and lottery tickets.

**Pruning curve** (Han et al. 2015/2016): train a dense net, prune it one-shot to each sparsity by
each method (global magnitude, layer-wise magnitude, random), then retrain the survivors from the
trained values with the mask frozen. Every (method, sparsity) arm retrains in ONE population run
(``fit`` with θ ``[E, P]`` and masks ``[E, P]``), all arms seeing the same example order.

**Iterative pruning and lottery tickets** (Frankle & Carbin 2019). Train dense; then for each round
prune ``p`` of the surviving weights (``p`` of what is left, so after r rounds about ``1 − (1−p)^r``
is pruned), rewind the survivors and retrain:

- ``rewind="init"``: to θ₀ (the winning-ticket protocol);
- ``rewind=k`` (int): to θ at step k of the dense run (late rewinding); the round trains
  ``steps − k`` steps;
- ``rewind="none"``: keep the trained values (fine-tuning), training ``finetune_steps``.

Controls, trained in lockstep with the ticket as one population, same mask and example order:
``"reinit"`` (the same mask on a fresh random initialisation, drawn once from the ``init`` stream's
sub-stream :data:`~pyquirk.compression.pruning.REINIT_KEY`) and ``"random_mask"`` (a random mask with
the same number of pruned entries in every tensor, :func:`random_mask_like`, on the ticket's start).

Presets (:data:`PRESETS`): ``"frankle-carbin"`` — layer-wise 20 %, 10 % on the output layer, rewind
to init; ``"global"`` — global 20 % over every layer but the output layer, rewind to init.
"""
from __future__ import annotations

import time

import numpy as np

from .._validate import check_choice, check_positive_int
from ..seeds import as_seeds, stream
from ..train import Adam, fit
from . import pruning as P
from ._loop import split_data
from .results import PruningCurve, TicketResult

PRESETS = {
    "frankle-carbin": {"scope": "layer", "p": 0.2, "output_p": 0.1, "keep_output": False, "rewind": "init"},
    "global": {"scope": "global", "p": 0.2, "output_p": None, "keep_output": True, "rewind": "init"},
}
METHODS = ("global", "layer", "random")
CONTROLS = ("reinit", "random_mask")


def _train(net, theta0, data, optimizer, steps, batch_size, seeds, mask=None, record_every=None,
           backend=None, progress=False):
    """``fit`` on the training split, evaluated on the test split at the end only."""
    Xtr, ytr, Xte, yte = data
    E = None if np.ndim(theta0) == 1 else np.shape(theta0)[0]
    return fit(net, theta0, Xtr, ytr, optimizer, steps=steps, batch_size=batch_size,
               seeds=seeds if E is None else [seeds] * E, mask=mask, eval_data=(Xte, yte),
               eval_every=steps, record_every=record_every, backend=backend, progress=progress)


def train_dense(net, data, *, steps: int = 2000, optimizer=None, batch_size: int = 100, seeds=0,
                theta0=None, record_every: int | None = None, backend=None, progress=False):
    """Train the dense reference net (``fit`` from ``net.init(seeds)`` unless ``theta0`` is given).

    Returns:
        the :class:`pyquirk.train.TrainResult`.
    """
    s = as_seeds(seeds)
    theta0 = net.init(s) if theta0 is None else theta0
    return _train(net, theta0, split_data(data), optimizer or Adam(1e-2), steps, batch_size, s,
                  record_every=record_every, backend=backend, progress=progress)


# ========================================================================================= curves
def pruning_curve(net, data, sparsities, *, methods=METHODS, theta=None, dense_steps: int = 2000,
                  retrain_steps: int = 1000, optimizer=None, retrain_optimizer=None, batch_size: int = 100,
                  keep_output: bool = False, seeds=0, backend=None, progress=False) -> PruningCurve:
    """Test accuracy against sparsity for one-shot pruning methods, before and after retraining.

    Args:
        net: a :class:`pyquirk.nn.Net`.
        data: a ``Dataset`` or ``(X_train, y_train, X_test, y_test)``.
        sparsities: ``[S]`` weight sparsities in ``[0, 1)``.
        methods: any of ``"global"``, ``"layer"`` (magnitude) and ``"random"``.
        theta: the trained dense ``[P]``; None trains one for ``dense_steps``.
        retrain_steps: steps of masked retraining from the pruned trained values.
        optimizer: of the dense run (default ``Adam(1e-2)``); retrain_optimizer: of the retraining
            (default: ``optimizer``).
        keep_output: exclude the output layer from pruning (sparsity then counts the rest).

    Returns:
        :class:`PruningCurve`.
    """
    t0 = time.perf_counter()
    s = as_seeds(seeds)
    d = split_data(data)
    methods = [check_choice(m, METHODS, "methods") for m in methods]
    sp = np.asarray(sparsities, dtype=np.float64).reshape(-1)
    if sp.size == 0:
        raise ValueError("sparsities is empty")
    opt = optimizer or Adam(1e-2)
    dense_run = None
    if theta is None:
        dense_run = train_dense(net, d, steps=dense_steps, optimizer=opt, batch_size=batch_size, seeds=s,
                                backend=backend, progress=progress)
        theta = dense_run.theta
    masks, arms = [], []
    for m in methods:
        for q in sp:
            if m == "random":
                mask = P.prune_random(net, float(q), keep_output=keep_output, rng=s)
            else:
                mask = P.prune_magnitude(net, theta, float(q), scope=m, keep_output=keep_output, backend=backend)
            masks.append(mask)
            arms.append((m, float(q)))
    masks = np.stack(masks)                                                  # [E, P]
    start = P.apply_mask(np.broadcast_to(theta, masks.shape), masks)
    before = net.accuracy(start, d[2], d[3], backend=backend)                # [E]
    run = _train(net, start, d, retrain_optimizer or opt, retrain_steps, batch_size, s, mask=masks,
                 backend=backend, progress=progress)
    after = np.asarray(run.history["test_acc"][-1])
    shape = (len(methods), sp.size)
    achieved = np.array([P.scope_sparsity(net, mk, keep_output=keep_output) for mk in masks]).reshape(shape)
    dense_acc = float(net.accuracy(theta, d[2], d[3], backend=backend))
    return PruningCurve(
        methods=list(methods), sparsities=sp, acc_pruned=np.asarray(before).reshape(shape),
        acc_retrained=after.reshape(shape), achieved_sparsity=achieved, dense_acc=dense_acc,
        masks=masks.reshape(shape + (net.n_params,)), theta_dense=np.asarray(theta),
        theta_retrained=run.theta.reshape(shape + (net.n_params,)),
        semantics={"net": repr(net), "prune": "one-shot from the trained dense θ, then masked retraining "
                   "from the pruned trained values (all arms as one population, same example order)",
                   "keep_output": keep_output, "weights_only": True, "dense_steps": None if dense_run is None
                   else dense_steps, "retrain_steps": retrain_steps, "batch_size": batch_size,
                   "optimizer": run.semantics["optimizer"], "random_mask_stream": "init/MASK_KEY"},
        seeds=s.to_dict(),
        counts={"grad_calls": run.steps_done + (0 if dense_run is None else dense_run.steps_done),
                "members": int(masks.shape[0]), "wall_time_s": time.perf_counter() - t0})


# ========================================================================================= tickets
def per_round_fraction(target: float, rounds: int) -> float:
    """The p that reaches sparsity ``target`` after ``rounds`` rounds: ``1 − (1 − target)^(1/rounds)``
    (up to the rounding of each round's count)."""
    rounds = check_positive_int(rounds, "rounds")
    if not 0 <= target < 1:
        raise ValueError(f"target must lie in [0, 1), got {target}")
    return 1.0 - (1.0 - target) ** (1.0 / rounds)


def _rewind_spec(rewind, steps):
    if rewind in ("init", "none"):
        return rewind
    if isinstance(rewind, (int, np.integer)) and not isinstance(rewind, bool):
        if not 0 <= rewind < steps:
            raise ValueError(f"rewind step must lie in [0, steps={steps}), got {rewind}")
        return "init" if rewind == 0 else int(rewind)
    raise ValueError(f"rewind must be 'init', 'none' or a step (int), got {rewind!r}")


def lottery_ticket(net, data, rounds: int, *, preset: str | None = "frankle-carbin", p: float | None = None,
                   scope: str | None = None, output_p: float | None = None, keep_output: bool | None = None,
                   rewind=None, controls=CONTROLS, steps: int = 1000, finetune_steps: int | None = None,
                   optimizer=None, batch_size: int = 100, seeds=0, theta0=None, backend=None,
                   progress=False) -> TicketResult:
    """Iterative magnitude pruning with rewinding, and its controls (Frankle & Carbin 2019).

    Args:
        net: a :class:`pyquirk.nn.Net`; data: a ``Dataset`` or a 4-tuple.
        rounds: pruning rounds after the dense run.
        preset: ``"frankle-carbin"``, ``"global"`` or None; explicit arguments override it.
        p, scope, output_p, keep_output: per-round pruning (see :func:`prune_magnitude`).
        rewind: ``"init"``, ``"none"`` or a step k.
        controls: subset of ``("reinit", "random_mask")``.
        steps: training steps of the dense run and of each round.
        finetune_steps: steps per round with ``rewind="none"`` (default ``steps``).
        theta0: initial θ ``[P]`` (default ``net.init(seeds)``).

    Returns:
        :class:`TicketResult`; round 0 is the dense net (every arm equal there).
    """
    t0 = time.perf_counter()
    rounds = check_positive_int(rounds, "rounds")
    cfg = dict(PRESETS[check_choice(preset, PRESETS, "preset")]) if preset is not None else \
        {"scope": "global", "p": 0.2, "output_p": None, "keep_output": False, "rewind": "init"}
    for k, v in (("p", p), ("scope", scope), ("output_p", output_p), ("keep_output", keep_output),
                 ("rewind", rewind)):
        if v is not None:
            cfg[k] = v
    if cfg["scope"] == "global" and output_p is None:   # a preset's output_p is a layer-scope option
        cfg["output_p"] = None
    steps = check_positive_int(steps, "steps")
    rw = _rewind_spec(cfg["rewind"], steps)
    controls = [check_choice(c, CONTROLS, "controls") for c in controls]
    s = as_seeds(seeds)
    d = split_data(data)
    opt = optimizer or Adam(1e-2)
    theta0 = net.init(s) if theta0 is None else np.asarray(theta0)
    P.prune_magnitude(net, theta0, cfg["p"], scope=cfg["scope"], keep_output=cfg["keep_output"],
                      output_p=cfg["output_p"])                                  # validate before training
    dense = _train(net, theta0, d, opt, steps, batch_size, s, backend=backend, progress=progress,
                   record_every=rw if isinstance(rw, int) else None)
    start = {"init": theta0, "none": None}.get(rw) if not isinstance(rw, int) else \
        dense.trajectory[list(dense.trajectory_steps).index(rw)]
    round_steps = (finetune_steps or steps) if rw == "none" else steps - (rw if isinstance(rw, int) else 0)
    reinit = net.init(P._generator(s, P.REINIT_KEY), dtype=theta0.dtype)
    arms = ["ticket"] + controls
    acc = {a: [float(dense.history["test_acc"][-1])] for a in arms}
    tr_acc = {a: [float(dense.history["train_acc"][-1])] for a in arms}
    masks = [np.ones(net.n_params, bool)]
    prev, grad_calls = dense.theta, dense.steps_done
    for r in range(1, rounds + 1):
        mask = P.prune_magnitude(net, prev, cfg["p"], scope=cfg["scope"], mask=masks[-1],
                                 keep_output=cfg["keep_output"], output_p=cfg["output_p"], backend=backend)
        base = prev if rw == "none" else start
        th, mk = [base], [mask]
        if "reinit" in controls:
            th.append(reinit), mk.append(mask)
        if "random_mask" in controls:
            rng = stream("init", s.init, P.MASK_KEY, r)
            th.append(base), mk.append(P.random_mask_like(net, mask, rng, select="weights"))
        mk = np.stack(mk)
        run = _train(net, P.apply_mask(np.stack(th), mk), d, opt, round_steps, batch_size, s, mask=mk,
                     backend=backend, progress=progress)
        for e, a in enumerate(arms):
            acc[a].append(float(run.history["test_acc"][-1][e]))
            tr_acc[a].append(float(run.history["train_acc"][-1][e]))
        masks.append(mask)
        prev, grad_calls = run.theta[0], grad_calls + run.steps_done
    masks = np.stack(masks)
    return TicketResult(
        arms=arms, sparsity=np.array([P.sparsity(net, m) for m in masks]),
        scope_sparsity=np.array([P.scope_sparsity(net, m, keep_output=cfg["keep_output"]) for m in masks]),
        test_acc={a: np.array(v) for a, v in acc.items()}, train_acc={a: np.array(v) for a, v in tr_acc.items()},
        masks=masks, theta0=np.asarray(theta0), theta_dense=dense.theta, theta_ticket=prev,
        semantics={"net": repr(net), "preset": preset, **{k: cfg[k] for k in ("p", "scope", "output_p",
                   "keep_output")}, "rewind": rw, "steps": steps, "round_steps": round_steps,
                   "batch_size": batch_size, "optimizer": dense.semantics["optimizer"],
                   "p_meaning": "fraction of the surviving weights of the scope pruned each round",
                   "controls": {"reinit": "same mask, fresh init (init stream, REINIT_KEY)",
                                "random_mask": "random mask with the same per-tensor counts, ticket's start "
                                               "(init stream, keys MASK_KEY and the round)"},
                   "order": "every arm and round uses the order stream of the given seeds"},
        seeds=s.to_dict(), counts={"grad_calls": grad_calls, "wall_time_s": time.perf_counter() - t0})


__all__ = ["PRESETS", "METHODS", "CONTROLS", "train_dense", "pruning_curve", "per_round_fraction",
           "lottery_ticket"]
