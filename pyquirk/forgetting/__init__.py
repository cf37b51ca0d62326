"""Neural networks forget what they learn: continual-learning scenarios, strategies and metrics.

>>> from pyquirk.data import mnist1d
>>> from pyquirk.forgetting import permuted, learn, EWC, metrics
>>> sc = permuted(mnist1d(), n_tasks=5, seed=0)                 # task-incremental, a head per task
>>> res = learn(sc, EWC(lam=100), seeds=[0, 1, 2], epochs=5)    # 3 runs as one population
>>> res.R.shape                                                  # [E, T, T]
>>> metrics.bwt(res.R), metrics.forgetting_max(res.R)

- :mod:`.scenarios`: permuted, split, shifted (1-D), rotated (images); task / class / domain settings;
- :mod:`.strategies`: naive, single-task and joint references, replay, EWC (separate / online), HAT;
- :mod:`.metrics`: ACC, BWT, FWT, last- and max-based forgetting, HAT's ρ;
- :func:`learn` (one strategy), :func:`run_experiment` (several, with the references).

See docs/forgetting.md for every equation, default and citation.
"""
from __future__ import annotations

from . import metrics
from .experiment import DEFAULTS, run_experiment
from .loop import continual_mlp, head_cross_entropy, learn
from .results import ContinualResult, ForgettingResult
from .scenarios import SETTINGS, Scenario, Task, permuted, rotated, shifted, split
from .strategies import (EWC, HAT, STRATEGIES, Joint, Naive, Replay, SingleTask, Strategy, fisher_diagonal,
                         make_strategy)

__all__ = ["metrics", "Scenario", "Task", "SETTINGS", "permuted", "split", "shifted", "rotated",
           "learn", "continual_mlp", "head_cross_entropy", "run_experiment", "DEFAULTS",
           "ContinualResult", "ForgettingResult", "Strategy", "Naive", "SingleTask", "Joint", "Replay",
           "EWC", "HAT", "STRATEGIES", "make_strategy", "fisher_diagonal"]
