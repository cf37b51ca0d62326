"""Curvature of the loss: Hessian spectra, saddle points and critical points (issue 4, DESIGN §4).

H is the Hessian of the *mean* loss over the stated data set (size-weighted batches), with respect
to an explicit parameter selection, recorded in every result. Everything goes through the block
HVP of :class:`Curvature` (k tangents share one primal pass).

>>> curv = Curvature(net, theta, (X, y), params="all", batch_size=256)
>>> top = lanczos(curv, k=5, which="largest")         # eigenvalues, residuals, converged, seed
>>> tr = hutchpp(curv, 99)                           # estimate ± standard error
>>> dens = slq(curv, n_runs=10, n_steps=80)          # σ is a standard deviation
>>> check_estimators(curv).table()                   # every estimator against the exact spectrum
>>> saddle_experiment().plot()                       # Dauphin et al. 2014, Fig. 1

See ``docs/hessian.md`` for the semantics, the diagnostics and the critical-point method.
"""
from .curvature import Curvature, DenseOperator, ggn_product
from .density import slq
from .exact import check_estimators, exact_spectrum, full_hessian
from .experiment import (CurvatureTrack, SaddleExperiment, saddle_data, saddle_experiment, saddle_net,
                         track_curvature)
from .lanczos import bottom_eigen, lanczos, power_iteration, top_eigen
from .results import DensityResult, EigenResult, EstimatorCheck, SaddleIndex, Spectrum, TraceResult
from .saddles import CriticalPoints, find_critical_points, saddle_index
from .trace import hutchinson, hutchpp

__all__ = [
    "Curvature", "DenseOperator", "ggn_product",
    "lanczos", "top_eigen", "bottom_eigen", "power_iteration",
    "hutchinson", "hutchpp", "slq",
    "full_hessian", "exact_spectrum", "check_estimators",
    "saddle_index", "find_critical_points", "track_curvature", "saddle_experiment", "saddle_data", "saddle_net",
    "EigenResult", "TraceResult", "DensityResult", "Spectrum", "EstimatorCheck", "SaddleIndex",
    "CriticalPoints", "CurvatureTrack", "SaddleExperiment",
]
