"""Fidelity of pyquirk.forgetting (issue 9 acceptance), on reduced settings.

5-task permuted MNIST-1D (``mnist1d()``, permutations from ``stream("data", 0)``, task 0 the
identity), task-incremental (a 10-way head per task), the first 1000 training and 500 test
signals of every task; MLP 40-100-100-50, SGD lr 0.1 momentum 0.9 (state reset per task),
4 epochs of batches of 64 per task; seeds ``Seeds(0)`` and ``Seeds(1)`` as one population.

Claims checked (forgetting = max-based forgetting (Chaudhry et al. 2018), mean over members):

- naive fine-tuning forgets: BWT ≤ −0.08 (accuracies here are ~0.37 just after learning a task);
- EWC (λ = 10, true Fisher on 200 samples), replay (reservoir memory of 1000) and HAT (s_max 400,
  c 0.75) each cut forgetting by at least 50 % against naive;
- HAT keeps every task's accuracy within 2 points of the accuracy it had right after learning it
  (its single-task accuracy in the sequence), on every member;
- HAT keeps task accuracy within 2 points of the **single-task** accuracy (one network per task
  from the same θ₀, same architecture and budget), given capacity for the sequence: 5-task split
  MNIST-1D (all signals of each class pair), MLP 40-300-300-10, the tour's schedule (SGD lr 0.1
  momentum 0.9, 5 epochs of batches of 64 per task), s_max 400, c 0.75, seeds ``Seeds(0)`` …
  ``Seeds(4)`` as one population. The mean gap over tasks and members must be ≤ 2 points and no
  member's gap above 3.5 (measured: 1.41, members 0.60 … 2.39). With the 100-unit MLP of the
  other tests the same run gives 4.1 (each task gets a third of the units and the last task,
  digits 8/9, loses 12 points), so this test fails if HAT loses capacity or plasticity.

docs/forgetting.md holds the full-size figures (and HAT's gap to single-task nets per width).
"""
import numpy as np
import pytest

from pyquirk.data import mnist1d
from pyquirk.forgetting import metrics as M
from pyquirk.forgetting.loop import learn
from pyquirk.forgetting.scenarios import permuted, split
from pyquirk.forgetting.strategies import EWC, HAT, Naive, Replay, SingleTask
from pyquirk.train import SGD

SETTINGS = dict(seeds=[0, 1], hidden=(100, 100), epochs=4, batch_size=64, optimizer=SGD(0.1, momentum=0.9))


@pytest.fixture(scope="module")
def runs():
    sc = permuted(mnist1d(), 5, seed=0, n_train=1000, n_test=500)
    strategies = {"naive": Naive(), "ewc": EWC(lam=10.0), "replay": Replay(memory_size=1000), "hat": HAT()}
    return {name: learn(sc, s, **SETTINGS) for name, s in strategies.items()}


def test_naive_forgets(runs):
    R = runs["naive"].R
    assert M.bwt(R).mean() <= -0.08, M.bwt(R)
    assert np.all(M.bwt(R) == -M.forgetting_last(R))
    assert np.all(R[:, -1, 0] < R[:, 0, 0] - 0.05)                         # task 1 decays


@pytest.mark.parametrize("name", ["ewc", "replay", "hat"])
def test_strategies_halve_forgetting(runs, name):
    f_naive = M.forgetting_max(runs["naive"].R).mean()
    f = M.forgetting_max(runs[name].R).mean()
    assert f <= 0.5 * f_naive, (name, f, f_naive)


def test_hat_keeps_each_task(runs):
    R = runs["hat"].R
    drop = np.diagonal(R, axis1=-2, axis2=-1)[:, :-1] - R[:, -1, :-1]       # [E, T−1]
    assert np.abs(drop).max() <= 0.02, drop


#: HAT against single-task nets: a width that gives HAT room for five tasks (docs/forgetting.md)
CAPACITY = dict(seeds=[0, 1, 2, 3, 4], hidden=(300, 300), epochs=5, batch_size=64,
                optimizer=SGD(0.1, momentum=0.9))


def test_hat_within_2_points_of_single_task():
    sc = split(mnist1d(), n_tasks=5)
    hat = learn(sc, HAT(s_max=400, c=0.75), **CAPACITY).R
    single = np.diagonal(learn(sc, SingleTask(), **CAPACITY).R, axis1=-2, axis2=-1)    # [E, T]
    gap = single - hat[:, -1, :]                                                       # [E, T]
    assert gap.mean() <= 0.02, gap.mean(axis=-1)
    assert gap.mean(axis=-1).max() <= 0.035, gap.mean(axis=-1)
