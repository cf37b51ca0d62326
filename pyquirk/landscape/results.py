"""Result objects of :mod:`pyquirk.landscape`: a plane, a 2-D surface, a 1-D path, a trajectory overlay.

All are :class:`pyquirk.results.Result` dataclasses (``save``/``load``/``plot``/``to_dict``). A
:class:`Surface` embeds the :class:`Plane` it was evaluated on (and, when overlaid, the
:class:`TrajectoryOverlay`), so one saved directory holds everything needed to redraw or re-check it.

Conventions:

- the plane's point at coordinates ``(α, β)`` is ``(θ + α·d₁) + β·d₂`` in θ's dtype, computed fresh
  (:func:`pyquirk.kernels.grid_points`);
- ``Surface.loss[i, j]`` is the loss at ``(alphas[i], betas[j])``; plots put α on x and β on y.
"""
from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np

from .. import kernels
from .._validate import as_float_array
from ..results import Result


def check_direction(d, name: str, P: int, dtype=None) -> np.ndarray:
    """``d`` as a finite, non-zero ``[P]`` float vector; errors name ``name``."""
    d = as_float_array(d, name, dtype=dtype, ndim=1, finite=False)
    if d.shape != (P,):
        raise ValueError(f"{name} must have shape [{P}] (one entry per parameter), got {d.shape}")
    if not np.all(np.isfinite(d)):
        raise ValueError(f"{name} contains NaN or infinite values")
    if not np.any(d):
        raise ValueError(f"{name} has zero norm; a direction must be non-zero")
    return d


@dataclasses.dataclass
class Plane(Result):
    """A plane (or a line, ``d2=None``) through parameter space: ``θ(α, β) = (θ + α·d₁) + β·d₂``.

    Attributes:
        origin: θ ``[P]``, the point at ``(0, 0)``.
        d1: first direction ``[P]`` (same dtype as ``origin``).
        d2: second direction ``[P]``, or None for a 1-D slice.
        kind: how the directions were made: ``"random"``, ``"pca"``, ``"solutions"``,
            ``"hessian"`` or ``"given"``.
        info: its semantics: normalisation, bias handling, seeds and stream, cosine of
            ``(d₁, d₂)``, explained variance (PCA), eigenvalues (Hessian), ...
    """

    origin: np.ndarray
    d1: np.ndarray
    d2: np.ndarray | None = None
    kind: str = "given"
    info: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        self.origin = as_float_array(self.origin, "origin", ndim=1)
        P, dt = self.origin.shape[0], self.origin.dtype
        self.d1 = check_direction(self.d1, "d1", P, dt)
        if self.d2 is not None:
            self.d2 = check_direction(self.d2, "d2", P, dt)

    @property
    def n_params(self) -> int:
        return int(self.origin.shape[0])

    @property
    def dims(self) -> int:
        """1 for a line, 2 for a plane."""
        return 1 if self.d2 is None else 2

    @property
    def cosine(self) -> float | None:
        """cos(d₁, d₂) (float64), or None for a line."""
        if self.d2 is None:
            return None
        a, b = self.d1.astype(np.float64), self.d2.astype(np.float64)
        return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))

    def d2_or_zero(self) -> np.ndarray:
        return np.zeros_like(self.d1) if self.d2 is None else self.d2

    def points(self, alphas, betas=None, out: np.ndarray | None = None) -> np.ndarray:
        """Parameter vectors ``[T, P]`` at coordinates ``alphas, betas: [T]``, each computed fresh."""
        alphas = np.atleast_1d(np.asarray(alphas, dtype=np.float64))
        betas = np.zeros_like(alphas) if betas is None else np.atleast_1d(np.asarray(betas, np.float64))
        return kernels.grid_points(self.origin, self.d1, self.d2_or_zero(), alphas, betas, out=out)

    def project(self, thetas) -> tuple[np.ndarray, np.ndarray]:
        """Least-squares coordinates of parameter vectors in this plane (the contours' coordinates).

        ``c_t = argmin_c ‖(θ_t − θ) − [d₁ d₂] c‖₂``, solved in float64 (``numpy.linalg.lstsq``), so
        that ``θ + c_t[0]·d₁ + c_t[1]·d₂`` is the plane's point nearest to θ_t even when d₁ and d₂
        are not orthogonal. (A per-axis dot product ``x·dᵢ/‖dᵢ‖`` is a different coordinate
        system unless the directions are orthonormal.)

        Args:
            thetas: ``[T, P]`` (or ``[P]``).

        Returns:
            coords ``[T, 2]`` (``[T, 1]`` for a line), and the relative residual ``[T]``,
            ``‖θ_t − θ(c_t)‖ / ‖θ_t − θ‖`` (0 for a point in the plane; 0 where ``θ_t = θ``).
        """
        X = as_float_array(thetas, "thetas", ndim=(1, 2))
        X = X[None] if X.ndim == 1 else X
        if X.shape[1] != self.n_params:
            raise ValueError(f"thetas must have last dimension P={self.n_params}, got shape {X.shape}")
        A = np.stack([self.d1] + ([] if self.d2 is None else [self.d2]), axis=1).astype(np.float64)
        D = (X.astype(np.float64) - self.origin.astype(np.float64)).T          # [P, T]
        coords, *_ = np.linalg.lstsq(A, D, rcond=None)
        resid = np.linalg.norm(D - A @ coords, axis=0)
        norm = np.linalg.norm(D, axis=0)
        rel = np.divide(resid, norm, out=np.zeros_like(resid), where=norm > 0)
        return coords.T, rel

    def _plot(self, fig) -> None:
        ax = fig.add_subplot()
        for name, d in (("d1", self.d1), ("d2", self.d2)):
            if d is not None:
                ax.hist(d.astype(np.float64), bins=80, histtype="step", label=name, density=True)
        ax.set(xlabel="entry value", ylabel="density", title=f"{self.kind} directions")
        ax.legend(fontsize="small")


@dataclasses.dataclass
class TrajectoryOverlay(Result):
    """A training trajectory projected onto a plane, with its own and the surface's losses.

    Attributes:
        coords: ``[T, 2]`` least-squares coordinates (``[T, 1]`` on a line); see :meth:`Plane.project`.
        steps: ``[T]`` training step of each snapshot.
        own_loss, own_acc: ``[T]`` loss/accuracy of the snapshots θ_t themselves.
        surface_loss, surface_acc: ``[T]`` loss/accuracy at the projected points
            ``θ + c_t[0]·d₁ + c_t[1]·d₂``, evaluated exactly (not read off the grid).
        residual: ``[T]`` relative distance of θ_t from the plane (0 = in the plane).
    """

    coords: np.ndarray
    steps: np.ndarray
    own_loss: np.ndarray
    own_acc: np.ndarray
    surface_loss: np.ndarray
    surface_acc: np.ndarray
    residual: np.ndarray

    @property
    def max_loss_gap(self) -> float:
        """max_t |surface_loss − own_loss|: how far the contours are from the path's own losses."""
        return float(np.max(np.abs(self.surface_loss - self.own_loss)))

    def _plot(self, fig) -> None:
        from . import plots
        plots.draw_overlay_check(fig, self)


@dataclasses.dataclass
class Surface(Result):
    """A loss landscape on a grid of a :class:`Plane` (DESIGN §4, "Landscape").

    Attributes:
        alphas: ``[A]`` coordinates along d₁; betas: ``[B]`` along d₂ (``[0.]`` on a line).
        loss: ``[A, B]`` mean loss at ``(alphas[i], betas[j])`` (NaN where not evaluated yet).
        acc: ``[A, B]`` accuracy there.
        plane: the :class:`Plane`.
        data_indices: the evaluated examples' indices into the data given, when a stated
            subset (mini-batch mode) was used; None = all of them.
        trajectory: a :class:`TrajectoryOverlay`, or None.
        complete: every point evaluated (False after ``max_tiles`` stopped early).
    """

    alphas: np.ndarray
    betas: np.ndarray
    loss: np.ndarray
    acc: np.ndarray
    plane: Plane
    data_indices: np.ndarray | None = None
    trajectory: TrajectoryOverlay | None = None
    complete: bool = True

    @property
    def origin_loss(self) -> float:
        """Loss at ``(0, 0)`` when that point is on the grid (NaN otherwise)."""
        i, j = np.flatnonzero(self.alphas == 0), np.flatnonzero(self.betas == 0)
        return float(self.loss[i[0], j[0]]) if len(i) and len(j) else float("nan")

    def _plot(self, fig) -> None:
        from . import plots
        plots.draw_contour(fig, self, filled=True)

    def save_figures(self, directory, *, dpi: int = 120) -> dict:
        """Write ``contour.png``, ``filled_contour.png``, ``surface_3d.png`` (and, with a
        trajectory, ``trajectory.png``) into ``directory``; return ``{name: path}``."""
        from . import plots
        return plots.save_surface_figures(self, directory, dpi=dpi)

    def to_npz(self, path) -> Path:
        """Plain NPZ export (``allow_pickle=False`` readable); see :func:`export_arrays` for keys."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, **export_arrays(self))
        return path

    def to_hdf5(self, path) -> Path:
        """HDF5 export with the keys of :func:`export_arrays` (needs ``h5py``)."""
        try:
            import h5py
        except ImportError as e:
            raise ImportError("Surface.to_hdf5 needs h5py (pip install h5py); "
                              f"Surface.to_npz needs nothing extra ({e})") from e
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with h5py.File(os.fspath(path), "w") as f:
            for k, v in export_arrays(self).items():
                if v.dtype.kind != "U":          # the convention string goes in the attributes
                    f.create_dataset(k, data=v)
            f.attrs["convention"] = CONVENTION
            f.attrs["plane_kind"] = self.plane.kind
        return path


CONVENTION = ("loss[i, j] = mean loss at theta = (origin + alphas[i]*d1) + betas[j]*d2, computed "
              "fresh in origin's dtype; acc likewise")


def export_arrays(s: Surface) -> dict:
    """The arrays of an NPZ/HDF5 export: ``alphas, betas, loss, acc, origin, d1, d2`` (zeros on a
    line), plus ``traj_coords, traj_steps, traj_own_loss, traj_surface_loss, traj_residual`` when
    a trajectory is overlaid, and ``data_indices`` for a stated subset."""
    out = {"alphas": s.alphas, "betas": s.betas, "loss": s.loss, "acc": s.acc,
           "origin": s.plane.origin, "d1": s.plane.d1, "d2": s.plane.d2_or_zero(),
           "convention": np.array(CONVENTION)}
    if s.data_indices is not None:
        out["data_indices"] = s.data_indices
    t = s.trajectory
    if t is not None:
        out.update(traj_coords=t.coords, traj_steps=t.steps, traj_own_loss=t.own_loss,
                   traj_surface_loss=t.surface_loss, traj_residual=t.residual)
    return out


@dataclasses.dataclass
class Interpolation(Result):
    """Loss and accuracy along the segment ``θ(α) = (1 − α)·θ_a + α·θ_b`` (Goodfellow et al. 2015).

    Attributes:
        alphas: ``[A]`` ascending; always holds 0.0 and 1.0 exactly (the two end points).
        train_loss, train_acc: ``[A]`` on the training data given.
        test_loss, test_acc: ``[A]`` on the test data, or None.
        labels: names of the end points, e.g. ``("init", "solution")``.
    """

    alphas: np.ndarray
    train_loss: np.ndarray
    train_acc: np.ndarray
    test_loss: np.ndarray | None = None
    test_acc: np.ndarray | None = None
    labels: list = dataclasses.field(default_factory=lambda: ["θ_a", "θ_b"])

    def at(self, alpha: float) -> dict:
        """The metrics at an evaluated α (e.g. 0.0 or 1.0)."""
        i = np.flatnonzero(self.alphas == alpha)
        if not len(i):
            raise KeyError(f"alpha={alpha} was not evaluated")
        keys = ("train_loss", "train_acc", "test_loss", "test_acc")
        return {k: float(getattr(self, k)[i[0]]) for k in keys if getattr(self, k) is not None}

    @property
    def monotone(self) -> bool:
        """Whether the training loss decreases monotonically from α=0 to α=1 (Goodfellow's finding)."""
        return self.largest_rise == 0.0

    @property
    def largest_rise(self) -> float:
        """The biggest climb of the training loss on the way from α=0 to α=1:
        ``max_j (L_j − min_{i ≤ j} L_i)`` over the evaluated α in [0, 1] (0 when monotone)."""
        L = self.train_loss[(self.alphas >= 0) & (self.alphas <= 1)]
        return float(np.max(L - np.minimum.accumulate(L)))

    def _plot(self, fig) -> None:
        from . import plots
        plots.draw_interpolation(fig, self)


__all__ = ["Plane", "Surface", "Interpolation", "TrajectoryOverlay", "export_arrays", "check_direction",
           "CONVENTION"]
