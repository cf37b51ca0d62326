"""The forgetting experiment: several strategies over one scenario, seeds as a population.

:func:`run_experiment` runs each strategy with :func:`pyquirk.forgetting.learn` on the same
scenario and the same seeds (member e of every strategy starts from the same θ₀ and sees the same
batch order), plus the references:

- ``"joint"``: joint training on all tasks at once (``Joint(incremental=False)``: its last row is
  HAT's ``A_J^{τ≤T−1}``, so ρ is reported after the last task);
- ``"single"``: one network per task from θ₀ (:class:`SingleTask`), whose ``R[j, j]`` is the
  single-task accuracy each strategy is compared with (``single_gap``).

``population=True`` trains the E seeds of a strategy in lockstep (one engine call per step);
``population=False`` loops over the seeds, one run each (the same numbers, for the benchmark).
"""
from __future__ import annotations

import time

import numpy as np

from ..seeds import as_seeds
from . import metrics as M
from .loop import learn
from .results import ContinualResult, ForgettingResult
from .scenarios import Scenario
from .strategies import HAT, Joint, SingleTask, Strategy, make_strategy

#: the default experiment; docs/forgetting.md explains every choice
DEFAULTS = {
    "hidden": (100, 100), "epochs": 5, "batch_size": 64, "lr": 0.1, "momentum": 0.9,
    "strategies": {"naive": {}, "ewc": {"lam": 10.0}, "replay": {"memory_size": 1000}, "hat": {}},
}


def _strategies(spec) -> dict[str, Strategy]:
    if isinstance(spec, dict):
        items = [make_strategy(k, **(v or {})) for k, v in spec.items()]
    else:
        items = [make_strategy(s) for s in ([spec] if isinstance(spec, (str, Strategy)) else spec)]
    out = {}
    for s in items:
        if s.name in out:
            raise ValueError(f"strategy {s.name!r} given twice; run the variants as separate experiments")
        out[s.name] = s
    if not out:
        raise ValueError("strategies is empty")
    return out


def _concat(results: list[ContinualResult]) -> ContinualResult:
    """Per-seed runs -> one result with the members stacked, as a population run stores them."""
    r0 = results[0]
    counts = {k: sum(r.counts.get(k, 0) for r in results) for k in r0.counts}
    extras = {}
    for k, v in r0.extras.items():
        vals = [r.extras[k] for r in results]
        extras[k] = np.concatenate(vals, axis=0) if isinstance(v, np.ndarray) and v.ndim else v
    seeds = {k: sum((list(r.seeds[k]) for r in results), []) for k in r0.seeds}
    return ContinualResult(
        strategy=r0.strategy, setting=r0.setting, R=np.concatenate([r.R for r in results]),
        baseline=np.concatenate([r.baseline for r in results]),
        first_task=np.concatenate([r.first_task for r in results], axis=1),
        first_task_epoch=r0.first_task_epoch, loss=np.concatenate([r.loss for r in results], axis=2),
        theta=np.concatenate([r.theta for r in results]), extras=extras,
        semantics={**r0.semantics, "population": len(results), "looped": True}, seeds=seeds, counts=counts)


def random_baseline(scenario: Scenario) -> np.ndarray:
    """``[T]`` HAT's A_R: the random stratified classifier's accuracy on each task's own classes."""
    return np.array([M.random_accuracy(t.y_train, t.y_test, t.n_classes) for t in scenario.tasks])


def run_experiment(scenario: Scenario, strategies=None, *, seeds=(0, 1, 2), references=("joint", "single"),
                   population: bool = True, hidden=None, epochs: int | None = None, batch_size: int | None = None,
                   optimizer=None, backend: str | None = None, progress: bool = False) -> ForgettingResult:
    """Every strategy (and reference) over ``scenario``, each a population of ``len(seeds)`` runs.

    Args:
        scenario: a :class:`Scenario`; HAT needs ``setting="task"``.
        strategies: names, Strategy objects, or ``{name: options}``; default
            ``DEFAULTS["strategies"]`` (naive, EWC, replay, HAT).
        seeds: one member per seed (an int, a Seeds or a dict each).
        references: any of ``"joint"`` and ``"single"`` (see the module docstring).
        population: train the seeds in lockstep (True) or loop over them (False).
        hidden, epochs, batch_size: network and schedule (defaults from :data:`DEFAULTS`).
        optimizer: default ``SGD(lr=DEFAULTS["lr"], momentum=DEFAULTS["momentum"])``, state reset
            at every task.
        backend, progress: passed to :func:`learn`.

    Returns:
        :class:`ForgettingResult` with one :class:`ContinualResult` per strategy and reference,
        the random baseline and the metrics table (mean and std over members).
    """
    from ..train import SGD

    t0 = time.perf_counter()
    chosen = _strategies(DEFAULTS["strategies"] if strategies is None else strategies)
    refs = {"joint": Joint(incremental=False), "single": SingleTask()}
    for r in references:
        if r not in refs:
            raise ValueError(f"unknown reference {r!r}; expected 'joint' and/or 'single'")
        chosen.setdefault(r, refs[r])
    seeds = [as_seeds(s) for s in (seeds if isinstance(seeds, (list, tuple)) else [seeds])]
    if not seeds:
        raise ValueError("seeds is empty: give at least one seed")
    opt = optimizer or SGD(DEFAULTS["lr"], momentum=DEFAULTS["momentum"])
    kw = dict(hidden=hidden or DEFAULTS["hidden"], epochs=epochs or DEFAULTS["epochs"],
              batch_size=batch_size or DEFAULTS["batch_size"], optimizer=opt, backend=backend, progress=progress)
    if scenario.setting != "task" and any(isinstance(s, HAT) for s in chosen.values()):
        raise ValueError("HAT needs setting='task' (the task ID at test time); drop it or use "
                         "scenario.with_setting('task')")
    runs = {}
    for name, strat in chosen.items():
        if population:
            runs[name] = learn(scenario, strat, seeds=seeds, **kw)
        else:
            runs[name] = _concat([learn(scenario, make_strategy(strat.config()), seeds=[s], **kw) for s in seeds])
    res = ForgettingResult(scenario=scenario.to_dict(), runs=runs, random=random_baseline(scenario),
                           semantics={"strategies": {n: s.config() for n, s in chosen.items()},
                                      "references": list(references), "population": bool(population),
                                      "epochs": kw["epochs"], "batch_size": kw["batch_size"],
                                      "hidden": list(np.atleast_1d(kw["hidden"])), "optimizer": opt.config(),
                                      "rho": "HAT's ρ after the last task, against the joint run"},
                           seeds={k: [getattr(s, k) for s in seeds] for k in seeds[0].to_dict()},
                           counts={"wall_time_s": time.perf_counter() - t0,
                                   "per_strategy_s": {n: r.counts["wall_time_s"] for n, r in runs.items()}})
    res.table = metric_table(res)
    return res


def metric_table(res: ForgettingResult) -> dict:
    """``{name: {metric: mean over members, metric_std: std}}``.

    Strategies get every metric of :func:`pyquirk.forgetting.metrics.summarize` (ρ against the
    joint run) plus, when the single-task reference ran, ``single_gap``, the mean over tasks of
    (single-task accuracy − final accuracy), and ``intransigence`` (Chaudhry et al. 2018) against
    the single-task accuracies; ``single_gap = intransigence + forgetting_last·(T−1)/T``.
    The references get what is meaningful for them:
    ``joint`` its ``acc`` (final row) and ``rho`` (0 by definition); ``single`` its ``acc``, the
    mean single-task accuracy ``mean_j R[j, j]``.
    """
    single = res.runs.get("single")

    def stats(v):
        v = np.asarray(v, dtype=float)
        ok = v[np.isfinite(v)]
        return (float(ok.mean()), float(ok.std())) if ok.size else (float("nan"), float("nan"))

    table = {}
    for name, run in res.runs.items():
        m = res.per_member(name)
        if name == "single":
            m = {"acc": np.diagonal(run.R, axis1=-2, axis2=-1).mean(axis=-1)}
        elif name == "joint":
            m = {"acc": m["acc"], "rho": m["rho"]}
        elif single is not None:
            ref = np.diagonal(single.R, axis1=-2, axis2=-1)
            m["single_gap"] = (ref - run.R[:, -1, :]).mean(axis=-1)
            m["intransigence"] = M.intransigence(run.R, ref)
        table[name] = {}
        for k, v in m.items():
            table[name][k], table[name][k + "_std"] = stats(v)
    return table


__all__ = ["DEFAULTS", "run_experiment", "metric_table", "random_baseline"]
