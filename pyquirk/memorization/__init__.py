"""Memorization and over-parameterisation (Zhang et al. 2017; Belkin et al. 2019; Nakkiran et al. 2019).

- :func:`memorization`: one MLP trained under each corruption of the data (true, partial p, random
  labels, shuffled pixels, random pixels, Gaussian), several seeds, all as one population; learning
  curves, time-to-fit, test error against p (Zhang's Fig. 1).
- :func:`double_descent`: width sweep at a stated label-noise level; train and test error against
  the parameter count, with the number of training examples marked.

The corruptions themselves are in :mod:`pyquirk.data.corruptions`. See docs/memorization.md.
"""
from ._runs import first_reached, init_population, member_seeds, mlp
from .double_descent import DoubleDescentResult, double_descent
from .experiment import DEFAULT_CORRUPTIONS, MemorizationResult, memorization

__all__ = ["memorization", "MemorizationResult", "DEFAULT_CORRUPTIONS", "double_descent",
           "DoubleDescentResult", "mlp", "member_seeds", "init_population", "first_reached"]
