"""The saddle experiment (Dauphin et al. 2014, Fig. 1) and curvature tracking along trajectories.

``saddle_experiment`` trains a small tanh MLP several times, takes starting points along each
training trajectory (log-spaced in steps, so the early, high-loss part is sampled as densely as the
end), finds the critical point near each start (:func:`find_critical_points`, Levenberg-Marquardt
on ∇L with the exact Hessian), and correlates the exact saddle index of the critical points found
with their training loss (Spearman's ρ over the converged ones).

Default setting (all of it recorded in the result's ``semantics``): MNIST-1D, its first 3 classes,
300 training signals, downsampled from 40 to 10 features by averaging blocks of 4; MLP 10-6-3 with
tanh (P = 87), MSE on one-hot targets plus weight decay 1e-2. The weight decay makes the objective
coercive, so every critical point lies at finite distance (with plain CE on separable data the
minima are at infinity and the critical-point search walks off). Full-batch gradient descent with
momentum 0.9, lr 0.5, 300 steps, from a small initialisation (He-normal × 0.1), so the run starts
near the symmetric saddle at the origin. ``loss="ce"`` and other nets/data can be passed.

``track_curvature`` follows λ_max, λ_min and the saddle index along a trajectory: exact (full
Hessian) for small nets, otherwise block Lanczos (``which="both"``) and SLQ with its interval.
"""
from __future__ import annotations

import dataclasses
import time

import numpy as np

from .._validate import as_float_array, check_choice, check_positive_int
from ..results import Result
from ..seeds import Seeds, as_seeds
from .curvature import Curvature, split_data
from .density import slq
from .exact import MAX_DIM, exact_spectrum
from .lanczos import lanczos
from .saddles import CriticalPoints, find_critical_points, plot_index_vs_loss

#: the default experiment (see the module docstring)
DEFAULTS = {"classes": 3, "n_train": 300, "features": 10, "hidden": 6, "loss": "mse",
            "weight_decay": 1e-2, "lr": 0.5, "momentum": 0.9, "train_steps": 300, "init_gain": 0.1,
            "n_runs": 3, "n_starts": 10, "max_iter": 60, "rtol": 1e-6, "data_seed": 42}


@dataclasses.dataclass
class CurvatureTrack(Result):
    """λ_max, λ_min and the saddle index along a trajectory.

    Attributes:
        steps: ``[T]`` training steps of the snapshots.
        loss, grad_norm: ``[T]`` objective and ‖∇‖ at each snapshot.
        lam_max, lam_min: ``[T]`` extreme eigenvalues.
        index: ``[T]`` saddle index (exact, or the SLQ estimate).
        index_lower, index_upper: ``[T]`` its interval (equal to ``index`` when exact).
        method: ``"exact"`` or ``"lanczos+slq"``.
    """

    steps: np.ndarray
    loss: np.ndarray
    grad_norm: np.ndarray
    lam_max: np.ndarray
    lam_min: np.ndarray
    index: np.ndarray
    index_lower: np.ndarray
    index_upper: np.ndarray
    method: str = "exact"

    def _plot(self, fig) -> None:
        fig.set_size_inches(9.0, 3.4)
        ax1, ax2, ax3 = fig.subplots(1, 3)
        plot_track(ax1, ax2, ax3, self)


def plot_track(ax1, ax2, ax3, tr: CurvatureTrack) -> None:
    x = np.maximum(tr.steps, 0.5)
    ax1.loglog(x, tr.loss, color="C0", label="loss")
    ax1.loglog(x, tr.grad_norm, color="C1", label="‖∇L‖")
    ax1.set(xlabel="step", title="loss and gradient")
    ax1.legend(fontsize="small")
    ax2.semilogx(x, tr.lam_max, color="C0", label="λ_max")
    ax2.semilogx(x, tr.lam_min, color="C3", label="λ_min")
    ax2.axhline(0, color="0.6", lw=0.6)
    ax2.set(xlabel="step", title="extreme eigenvalues")
    ax2.legend(fontsize="small")
    ax3.semilogx(x, tr.index, color="C3")
    if np.any(tr.index_upper > tr.index_lower):
        ax3.fill_between(x, tr.index_lower, tr.index_upper, color="C3", alpha=0.2)
    ax3.set(xlabel="step", title=f"saddle index ({tr.method})")


def track_curvature(net, trajectory, data, *, steps=None, params="all", batch_size: int | None = None,
                    weight_decay: float = 0.0, method: str = "auto", max_dim: int = MAX_DIM,
                    slq_runs: int = 8, slq_steps: int = 60, seed: int = 0,
                    progress: bool = False) -> CurvatureTrack:
    """λ_max, λ_min and the saddle index at each snapshot of a trajectory.

    Args:
        net: a :class:`pyquirk.nn.Net`.
        trajectory: ``[T, P]`` snapshots (e.g. ``TrainResult.trajectory``).
        data: ``(X, y)`` or a Dataset (training split).
        steps: ``[T]`` step of each snapshot (default ``0..T-1``).
        params, batch_size, weight_decay: as for :class:`Curvature`.
        method: ``"exact"``, ``"lanczos"`` (block Lanczos for λ_max/λ_min, SLQ for the index) or
            ``"auto"`` (exact when the selection has ≤ max_dim parameters).
        slq_runs, slq_steps, seed: SLQ settings for the estimated index.
    """
    t0 = time.perf_counter()
    traj = as_float_array(trajectory, "trajectory", ndim=2)
    T = len(traj)
    steps = np.arange(T) if steps is None else np.asarray(steps)
    if steps.shape != (T,):
        raise ValueError(f"steps must have shape [{T}], got {steps.shape}")
    method = check_choice(method, ("auto", "exact", "lanczos"), "method")
    out = {k: np.zeros(T) for k in ("loss", "grad_norm", "lam_max", "lam_min", "index", "index_lower", "index_upper")}
    counts = {"hvps": 0, "hvp_calls": 0, "grad_calls": 0}
    from tqdm.auto import tqdm
    for t in tqdm(range(T), desc="curvature", disable=not progress, leave=False):
        curv = Curvature(net, traj[t], data, params=params, batch_size=batch_size, weight_decay=weight_decay)
        curv.counts = counts
        if method == "auto":
            method = "exact" if curv.dim <= max_dim else "lanczos"
        loss, g = curv.loss_and_grad()
        out["loss"][t], out["grad_norm"][t] = loss, np.linalg.norm(g)
        if method == "exact":
            spec = exact_spectrum(curv, max_dim=max_dim)
            out["lam_min"][t], out["lam_max"][t] = spec.eigenvalues[0], spec.eigenvalues[-1]
            out["index"][t] = out["index_lower"][t] = out["index_upper"][t] = spec.index
        else:
            ends = lanczos(curv, 1, "both", seed=seed, keep_vectors=False)
            out["lam_max"][t], out["lam_min"][t] = ends.eigenvalues
            d = slq(curv, slq_runs, slq_steps, seed=seed)
            out["index"][t] = d.index_estimate
            out["index_lower"][t], out["index_upper"][t] = d.index_bounds
    counts["wall_time_s"] = time.perf_counter() - t0
    return CurvatureTrack(steps=steps, method="exact" if method == "exact" else "lanczos+slq", **out,
                          semantics={**curv.semantics(), "method": method},
                          seeds={"probes": int(seed)}, counts=counts)


# ------------------------------------------------------------------------------ the experiment
@dataclasses.dataclass
class SaddleExperiment(Result):
    """Critical points from starts along training trajectories, and their index against loss.

    Attributes:
        points: the :class:`CriticalPoints` (``info`` holds ``run`` and ``step`` of each start).
        spearman, spearman_pvalue: Spearman's ρ of (objective, index) over converged points.
        spearman_data_loss: the same with the data loss alone (without the weight-decay term).
        data_loss: ``[S]`` mean data loss at each critical point.
        n_converged: critical points that met ``‖∇L‖ ≤ rtol·‖∇L(start)‖``.
        training: ``{"steps": [T], "loss": [R, T]}`` the training curves.
        track: curvature along the first run's trajectory.
    """

    points: CriticalPoints
    spearman: float
    spearman_pvalue: float
    spearman_data_loss: float
    data_loss: np.ndarray
    n_converged: int
    training: dict
    track: CurvatureTrack | None = None

    def _plot(self, fig) -> None:
        fig.set_size_inches(10.0, 3.8)
        ax1, ax2, ax3 = fig.subplots(1, 3)
        plot_index_vs_loss(ax1, self.points)
        ax1.set_title(f"critical points: Spearman ρ = {self.spearman:.3f} "
                      f"({self.n_converged}/{len(self.points.loss)})", fontsize=9)
        if self.track is not None:
            x = np.maximum(self.track.steps, 0.5)
            ax2.semilogx(x, self.track.lam_min, color="C3", label="λ_min")
            ax2.axhline(0, color="0.6", lw=0.6)
            ax2.set(xlabel="step", title="λ_min along training")
            ax3.semilogx(x, self.track.index, color="C3", label="index")
            ax3b = ax3.twinx()
            ax3b.loglog(x, self.track.grad_norm, color="C0", lw=0.8)
            ax3b.set_ylabel("‖∇L‖", color="C0")
            ax3.set(xlabel="step", ylabel="index", title="index and ‖∇L‖ along training")


def saddle_data(*, classes: int = 3, n_train: int = 300, features: int = 10, seed: int = 42):
    """MNIST-1D, first ``classes`` classes, ``n_train`` signals, 40 → ``features`` by block means.

    Returns:
        ``(X: [n_train, features] float64, y: [n_train] int64)``.
    """
    from ..data import mnist1d
    ds = mnist1d(seed=seed)
    keep = ds.y_train < classes
    X, y = ds.X_train[keep][:n_train], ds.y_train[keep][:n_train]
    if ds.X_train.shape[1] % features:
        raise ValueError(f"features={features} must divide the signal length {ds.X_train.shape[1]}")
    return X.reshape(len(X), features, -1).mean(-1).astype(np.float64), y.astype(np.int64)


def saddle_net(features: int = 10, hidden: int = 6, classes: int = 3, loss: str = "mse"):
    """The experiment's MLP: ``features``-``hidden``-``classes`` with tanh."""
    from ..nn import Dense, Net, Tanh
    return Net([Dense(hidden), Tanh(), Dense(classes)], input_shape=(features,), loss=loss)


def start_indices(T: int, n: int) -> np.ndarray:
    """``n`` (at most) distinct snapshot indices in ``[0, T)``, log-spaced in step + 1."""
    return np.unique(np.round(np.geomspace(1, T, n)).astype(int) - 1)


def saddle_experiment(net=None, data=None, *, seeds=None, n_runs: int = DEFAULTS["n_runs"],
                      n_starts: int = DEFAULTS["n_starts"], train_steps: int = DEFAULTS["train_steps"],
                      lr: float = DEFAULTS["lr"], momentum: float = DEFAULTS["momentum"],
                      batch_size: int | None = None, weight_decay: float = DEFAULTS["weight_decay"],
                      init_gain: float = DEFAULTS["init_gain"], rtol: float = DEFAULTS["rtol"],
                      max_iter: int = DEFAULTS["max_iter"], track: bool = True,
                      progress: bool = False) -> SaddleExperiment:
    """Dauphin et al. (2014), Fig. 1: index against loss at critical points near training trajectories.

    Args:
        net: the MLP (default :func:`saddle_net`); keep P small (each LM step builds H).
        data: ``(X, y)`` or a Dataset (default :func:`saddle_data`).
        seeds: :class:`pyquirk.seeds.Seeds`/int/dict; run r initialises from the ``init`` stream's
            member r and orders batches from the ``order`` stream's member r.
        n_runs: training runs; n_starts: starts per run (log-spaced along the trajectory).
        train_steps, lr, momentum, batch_size: the training (default full-batch GD with momentum).
        weight_decay: L2 term of the objective, in training and in the critical-point search.
        init_gain: He-normal initialisation gain.
        rtol, max_iter: the critical-point search (:func:`find_critical_points`).
        track: also track λ_min, λ_max and the index along the first run.
        progress: progress bars.
    """
    from scipy.stats import spearmanr

    from ..train import SGD, fit
    t0 = time.perf_counter()
    seeds = Seeds() if seeds is None else as_seeds(seeds)
    net = saddle_net() if net is None else net
    X, y = split_data(saddle_data() if data is None else data)
    X = as_float_array(X, "X", dtype=np.float64)
    n_runs, n_starts = check_positive_int(n_runs, "n_runs"), check_positive_int(n_starts, "n_starts")
    train_steps = check_positive_int(train_steps, "train_steps")
    opt = SGD(lr, momentum=momentum, weight_decay=weight_decay)
    starts, runs, steps, curves, trajs = [], [], [], [], []
    for r in range(n_runs):
        theta0 = net.init(seeds.rng("init", member=r), gain=init_gain, dtype=np.float64)
        res = fit(net, theta0, X, y, opt, steps=train_steps, batch_size=batch_size or len(X),
                  seeds=seeds.replace(order=seeds.order + r), record_every=1, eval_every=1)
        idx = start_indices(len(res.trajectory), n_starts)
        starts.append(res.trajectory[idx])
        runs += [r] * len(idx)
        steps += list(np.asarray(res.trajectory_steps)[idx])
        curves.append(np.asarray(res.history["train_loss"], float))
        curve_steps = np.asarray(res.history["steps"])
        trajs.append((res.trajectory, np.asarray(res.trajectory_steps)))
    cp = find_critical_points(net, np.concatenate(starts), (X, y), weight_decay=weight_decay, rtol=rtol,
                              max_iter=max_iter, info={"run": np.array(runs), "step": np.array(steps)},
                              progress=progress)
    data_loss = np.array([float(net.loss(th, X, y)) for th in cp.theta])
    ok = cp.converged
    rho = spearmanr(cp.loss[ok], cp.index[ok]) if ok.sum() > 2 else (np.nan, np.nan)
    rho_data = spearmanr(data_loss[ok], cp.index[ok])[0] if ok.sum() > 2 else np.nan
    tr = None
    if track:
        traj, tsteps = trajs[0]
        sel = start_indices(len(traj), 40)
        tr = track_curvature(net, traj[sel], (X, y), steps=tsteps[sel], weight_decay=weight_decay)
    semantics = {**cp.semantics, "experiment": "Dauphin et al. 2014 Fig. 1: index vs loss at critical points",
                 "net": repr(net), "n_train": len(X), "n_runs": n_runs, "n_starts_per_run": n_starts,
                 "training": f"SGD(lr={lr}, momentum={momentum}, weight_decay={weight_decay}), "
                             f"{train_steps} steps, batch {batch_size or len(X)}",
                 "init": f"he_normal × {init_gain}", "starts": "log-spaced trajectory snapshots",
                 "spearman": "scipy.stats.spearmanr(objective, index) over converged points"}
    counts = {k: cp.counts[k] + (tr.counts[k] if tr else 0) for k in ("hvps", "hvp_calls", "grad_calls")}
    counts["wall_time_s"] = time.perf_counter() - t0
    return SaddleExperiment(
        points=cp, spearman=float(rho[0]), spearman_pvalue=float(rho[1]),
        spearman_data_loss=float(rho_data), data_loss=data_loss, n_converged=int(ok.sum()),
        training={"steps": curve_steps, "loss": np.array(curves)}, track=tr,
        semantics=semantics, seeds=seeds.to_dict(), counts=counts)


__all__ = ["saddle_experiment", "track_curvature", "SaddleExperiment", "CurvatureTrack",
           "saddle_data", "saddle_net", "start_indices", "DEFAULTS"]
