"""The solution space: loss landscapes, batched (Li et al. 2018; Goodfellow, Vinyals & Saxe 2015).

>>> from pyquirk import landscape as ls
>>> plane = ls.random_plane(net, theta, seed=0)              # filter-normalised Gaussian d1, d2
>>> surf = ls.evaluate_grid(net, plane, X, y)                # 51×51 over [-1, 1]², tiles + shortcut
>>> surf.save_figures("out/")                                # contour, filled, 3-D PNGs
>>> path = ls.interpolate(net, theta0, theta, (X, y), (Xt, yt))   # 1-D, both end points

Semantics (DESIGN §4, "Landscape"; docs/landscape.md):

- directions are Gaussian, from the ``probes`` RNG stream (sub-stream 0 for d₁, 1 for d₂);
- filter normalisation per output unit/channel, ``d ← d/(‖d‖ + 1e-10)·‖θ‖``; biases get a zero
  direction unless ``keep_biases=True``;
- grid points are ``(θ + α·d₁) + β·d₂``, computed fresh; the default grid is 51×51 over [−1, 1]²;
- 1-D interpolation always evaluates both end points;
- PCA directions come from ``θ_t − θ_final``; trajectories are projected by least squares onto
  the contours' own ``[d₁ d₂]``.
"""
from __future__ import annotations

from . import plots
from .directions import (NORMS, hessian_plane, layer_normalize, normalize_direction, orthogonalize,
                         pca_plane, random_direction, random_plane, solutions_plane)
from .evaluate import evaluate_thetas, shortcut_supported
from .grid import evaluate_grid, grid_axis
from .interpolate import interpolate, interpolation_axis
from .results import Interpolation, Plane, Surface, TrajectoryOverlay, export_arrays
from .trajectory import overlay_trajectory

__all__ = ["plots", "NORMS", "Plane", "Surface", "Interpolation", "TrajectoryOverlay",
           "random_direction", "normalize_direction", "layer_normalize", "orthogonalize",
           "random_plane", "solutions_plane", "pca_plane", "hessian_plane",
           "evaluate_grid", "grid_axis", "interpolate", "interpolation_axis",
           "overlay_trajectory", "evaluate_thetas", "shortcut_supported", "export_arrays"]
