"""pyquirk.hessian saddles: critical points, the Dauphin experiment, curvature along trajectories.

The critical-point criterion is checked with the engine's own gradient (not the solver's), and
the index with an independent ``numpy.linalg.eigvalsh`` of the full Hessian.
"""
import numpy as np
import pytest

from _tol import assert_close
from nets import problem
from pyquirk.hessian import (Curvature, CurvatureTrack, SaddleExperiment, find_critical_points, full_hessian,
                             saddle_experiment, track_curvature)
from pyquirk.hessian.experiment import saddle_data, saddle_net, start_indices
from pyquirk.results import Result

#: issue 4 acceptance
GRAD_REDUCTION = 1e-6
SPEARMAN_MIN = 0.8
WD = 1e-2


@pytest.fixture(scope="module")
def data():
    return saddle_data()


def objective_grad(net, theta, X, y, wd=WD):
    return net.grad(theta, X, y) + wd * theta


def test_critical_point_near_the_origin_is_a_saddle(data):
    X, y = data
    net = saddle_net()
    starts = np.stack([net.init(s, gain=0.1, dtype=np.float64) for s in (0, 1)])
    cp = find_critical_points(net, starts, (X, y), weight_decay=WD, max_iter=40)
    assert cp.converged.all()
    for s in range(2):
        g0 = np.linalg.norm(objective_grad(net, starts[s], X, y))
        g = np.linalg.norm(objective_grad(net, cp.theta[s], X, y))
        assert g <= GRAD_REDUCTION * g0
        assert cp.start_grad_norm[s] == pytest.approx(g0, rel=1e-12)
        H = full_hessian(Curvature(net, cp.theta[s], (X, y), weight_decay=WD))
        lam = np.linalg.eigvalsh(0.5 * (H + H.T))
        assert cp.n_negative[s] == np.sum(lam < -len(lam) * np.finfo(float).eps * np.abs(lam).max()) > 0
        assert cp.index[s] == cp.n_negative[s] / net.n_params
        assert_close([cp.lam_min[s], cp.lam_max[s]], [lam[0], lam[-1]], "exact")
        hist = cp.grad_history[s]
        assert hist[0] == cp.start_grad_norm[s] and np.nanmin(hist) == hist[cp.iterations[s]]
    # both starts reach the same symmetric saddle (same loss and index)
    assert cp.loss[0] == pytest.approx(cp.loss[1], rel=1e-9) and cp.index[0] == cp.index[1]


def test_unconverged_starts_are_reported(data):
    X, y = data
    net = saddle_net()
    cp = find_critical_points(net, net.init(3, dtype=np.float64), (X, y), weight_decay=WD, max_iter=1)
    assert cp.iterations[0] == 1 and not cp.converged[0]
    assert cp.grad_norm[0] > GRAD_REDUCTION * cp.start_grad_norm[0]
    assert np.isnan(cp.grad_history[0, 2:]).all()


def test_saddle_experiment_index_grows_with_loss(tmp_path):
    """Dauphin et al. (2014) Fig. 1 on the quick setting: converged points and Spearman ρ > 0.8."""
    exp = saddle_experiment(seeds=0, n_runs=2, n_starts=6)
    cp = exp.points
    assert len(cp.loss) == 12 and exp.n_converged >= 9
    ok = cp.converged
    assert np.all(cp.reduction[ok] <= GRAD_REDUCTION)
    assert exp.spearman > SPEARMAN_MIN and exp.spearman_data_loss > SPEARMAN_MIN
    assert len(np.unique(cp.index[ok])) >= 3                   # several distinct critical points
    assert cp.index[ok].max() > 0.05 and cp.index[ok].min() < 0.05
    assert set(cp.info["run"]) == {0, 1} and cp.info["step"].max() == 300
    tr = exp.track
    assert isinstance(tr, CurvatureTrack) and tr.method == "exact" and tr.index[0] > tr.index[-1]
    exp.save(tmp_path / "exp")
    back = Result.load(tmp_path / "exp")
    assert isinstance(back, SaddleExperiment) and np.array_equal(back.points.index, cp.index)
    assert back.spearman == exp.spearman and back.seeds == exp.seeds
    back.plot(tmp_path / "exp.png")
    assert (tmp_path / "exp.png").stat().st_size > 1000


def test_track_curvature_exact_and_estimated_agree():
    net, theta, X, y = problem("mlp-tanh", n=60, seed=2)
    rng = np.random.default_rng(0)
    traj = theta + 0.3 * rng.standard_normal((3, net.n_params))
    ex = track_curvature(net, traj, (X, y), steps=[0, 10, 20], method="exact")
    est = track_curvature(net, traj, (X, y), method="lanczos", slq_runs=10, slq_steps=40)
    assert ex.method == "exact" and est.method == "lanczos+slq"
    assert np.array_equal(ex.steps, [0, 10, 20])
    assert_close(est.lam_max, ex.lam_max, "exact")
    assert_close(est.lam_min, ex.lam_min, "exact")
    assert np.all((est.index_lower <= ex.index) & (ex.index <= est.index_upper))
    assert_close(ex.loss, [net.loss(t, X, y) for t in traj], "exact")
    assert ex.counts["hvps"] == 3 * net.n_params


def test_start_indices_are_log_spaced_and_distinct():
    idx = start_indices(301, 10)
    assert idx[0] == 0 and idx[-1] == 300 and np.all(np.diff(idx) > 0)
    assert np.all(np.diff(idx)[1:] >= np.diff(idx)[:-1])      # gaps widen
    assert len(start_indices(3, 10)) == 3


@pytest.mark.parametrize("call, err, match", [
    (lambda n, t, d: find_critical_points(n, t, d, rtol=0.0), ValueError, "rtol and atol"),
    (lambda n, t, d: find_critical_points(n, t, d, max_dim=10), ValueError, "max_dim"),
    (lambda n, t, d: find_critical_points(n, t[None, None], d), ValueError, "starts must have"),
    (lambda n, t, d: find_critical_points(n, np.r_[t[:-1], np.nan], d), ValueError, "starts contains NaN"),
    (lambda n, t, d: find_critical_points(n, t, (d[0][:0], d[1][:0])), ValueError, "data is empty"),
    (lambda n, t, d: find_critical_points(n, t, d, max_iter=0), ValueError, "max_iter"),
    (lambda n, t, d: track_curvature(n, t[None], d, steps=[1, 2]), ValueError, "steps must have shape"),
    (lambda n, t, d: track_curvature(n, t[None], d, method="power"), ValueError, "method"),
    (lambda n, t, d: track_curvature(n, t, d), ValueError, "trajectory must have 2"),
])
def test_bad_input(call, err, match):
    net, theta, X, y = problem("mlp-tanh", n=10)
    with pytest.raises(err, match=match):
        call(net, theta, (X, y))
