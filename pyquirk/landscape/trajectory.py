"""Training trajectories on a landscape plane (Li et al. 2018, §7), with the check of loss-landscape #1.

The overlay uses the contours' own coordinates: each snapshot θ_t is projected by least squares
onto ``[d₁ d₂]`` around the plane's origin (:meth:`Plane.project`), so the plotted point
``(α_t, β_t)`` is the grid coordinate of the plane's point nearest to θ_t. Because θ_t is in general
*not* in the plane, the contour value there is not θ_t's loss. Both are reported: ``own_loss``
(θ_t itself) and ``surface_loss`` (the plane's point ``θ + α_t·d₁ + β_t·d₂``, evaluated exactly on
the same examples), with the relative distance of θ_t from the plane. For a snapshot that lies in
the plane the two losses agree to rounding.
"""
from __future__ import annotations

import numpy as np

from .._validate import as_float_array
from .evaluate import Evaluator, PlaneFamily, _Given, evaluate_thetas
from .results import Plane, TrajectoryOverlay


def _snapshots(trajectory, P, dtype):
    traj = as_float_array(getattr(trajectory, "trajectory", trajectory), "trajectory", dtype=dtype, ndim=2)
    if traj.shape[1] != P:
        raise ValueError(f"trajectory must have shape [T, P={P}], got {traj.shape} "
                         "(a population's trajectory [T, E, P]: pass one member, traj[:, e])")
    return traj


def _steps(trajectory, steps, T):
    if steps is None:
        steps = getattr(trajectory, "trajectory_steps", None)
    steps = np.arange(T) if steps is None else np.asarray(steps)
    if steps.shape != (T,):
        raise ValueError(f"trajectory_steps must have shape [{T}], got {steps.shape}")
    return steps.astype(np.int64)


def overlay_with(net, plane: Plane, trajectory, steps, ev: Evaluator, *, backend=None) -> TrajectoryOverlay:
    """The overlay, evaluated by ``ev`` (the surface's own evaluator: same examples, same path)."""
    traj = _snapshots(trajectory, plane.n_params, plane.origin.dtype)
    steps = _steps(trajectory, steps, len(traj))
    coords, resid = plane.project(traj)
    a = coords[:, 0]
    b = coords[:, 1] if coords.shape[1] > 1 else np.zeros_like(a)
    s_loss, s_acc = ev(a, b)
    idx = np.arange(len(traj))
    own = Evaluator(net, _Given(traj), ev.X, ev.labels if net.loss_fn.label_kind == "class" else ev.target,
                    shortcut=False, chunk=ev.chunk, tile=ev.tile, backend=backend)
    o_loss, o_acc = own(idx.astype(np.float64))
    return TrajectoryOverlay(coords, steps, o_loss, o_acc, s_loss, s_acc, resid,
                             semantics={"projection": "least squares onto [d1, d2] around the origin "
                                        "(numpy.linalg.lstsq, float64): the contours' coordinates",
                                        "own_loss": "loss of theta_t itself",
                                        "surface_loss": "loss at origin + a_t*d1 + b_t*d2, evaluated "
                                        "exactly on the surface's examples",
                                        "residual": "||theta_t - projection|| / ||theta_t - origin||"})


def overlay_trajectory(net, plane: Plane, trajectory, X, y, *, steps=None, shortcut: bool = True,
                       chunk: int | None = None, backend: str | None = None) -> TrajectoryOverlay:
    """Project ``trajectory`` onto ``plane`` and evaluate both its own and the surface's losses.

    Args:
        net: the network; plane: the :class:`Plane` of the contours.
        trajectory: ``[T, P]`` snapshots, or a :class:`~pyquirk.train.TrainResult` (its
            ``trajectory`` and ``trajectory_steps``).
        X, y: the examples the surface was evaluated on (use the same subset!).
        steps: ``[T]`` training steps (default: from the TrainResult, else 0..T-1).
    """
    ev = Evaluator(net, PlaneFamily(plane), X, y, shortcut=shortcut, chunk=chunk, backend=backend)
    return overlay_with(net, plane, trajectory, steps, ev, backend=backend)


__all__ = ["overlay_trajectory", "overlay_with", "evaluate_thetas"]
