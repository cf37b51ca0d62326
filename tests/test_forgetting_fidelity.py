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
  (its single-task accuracy in the sequence), on every member.

docs/forgetting.md holds the full-size figures (and HAT's gap to independent single-task nets).
"""
import numpy as np
import pytest

from pyquirk.data import mnist1d
from pyquirk.forgetting import metrics as M
from pyquirk.forgetting.loop import learn
from pyquirk.forgetting.scenarios import permuted
from pyquirk.forgetting.strategies import EWC, HAT, Naive, Replay
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
