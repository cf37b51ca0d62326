"""Example order (Erhan et al. 2010) and curricula."""
import numpy as np
import pytest

from pyquirk.ordering import (CurriculumResult, OrderResult, base_stream, curriculum,
                              function_spread, order_sensitivity, probe_indices, vary_segment)
from pyquirk.results import Result
from pyquirk.seeds import Seeds, stream


def test_vary_segment_changes_only_its_segment():
    base = base_stream(Seeds(order=3), 50, 3)                        # [3, 50]
    early = vary_segment(base, "early", 20, stream("order", 0, 1))
    late = vary_segment(base, "late", 20, stream("order", 0, 2))
    for v in (early, late):
        assert (np.sort(v, axis=1) == np.arange(50)).all()           # every epoch a permutation
    np.testing.assert_array_equal(early[1:], base[1:])
    np.testing.assert_array_equal(early[0, 20:], base[0, 20:])
    assert sorted(early[0, :20]) == sorted(base[0, :20]) and (early[0, :20] != base[0, :20]).any()
    np.testing.assert_array_equal(late[:-1], base[:-1])
    np.testing.assert_array_equal(late[-1, :30], base[-1, :30])
    assert sorted(late[-1, 30:]) == sorted(base[-1, 30:]) and (late[-1, 30:] != base[-1, 30:]).any()
    # the base stream is the order stream's epoch permutations
    rng = Seeds(order=3).rng("order")
    np.testing.assert_array_equal(base[1], [rng.permutation(50) for _ in range(2)][1])


@pytest.mark.parametrize("k, err, match", [(51, ValueError, "k=51 must lie in"),
                                           (1, ValueError, "k=1 must lie in"),
                                           (2.5, TypeError, "k must be an integer")])
def test_vary_segment_bad_k(k, err, match):
    with pytest.raises(err, match=match):
        vary_segment(base_stream(Seeds(), 50, 1), "early", k, stream("order", 0))


def test_order_sensitivity_rejects_k_larger_than_data():
    with pytest.raises(ValueError, match="k=301 must lie in"):
        order_sensitivity(k=301, n_train=300, n_runs=2, n_init=1, epochs=1)
    with pytest.raises(ValueError, match="unknown segment 'middle'"):
        vary_segment(base_stream(Seeds(), 10, 1), "middle", 4, stream("order", 0))
    with pytest.raises(ValueError, match="n_probe=5000"):
        probe_indices(Seeds(), 1000, 5000)


def test_function_spread_matches_definitions():
    rng = np.random.default_rng(0)
    z = rng.standard_normal((5, 30, 4))
    s = function_spread(z)
    var = [np.var(z[:, m, c], ddof=1) for m in range(30) for c in range(4)]
    assert s["logit_var"] == pytest.approx(np.mean(var))
    pred = z.argmax(-1)
    pairs = [(a, b) for a in range(5) for b in range(a + 1, 5)]
    assert s["disagreement"] == pytest.approx(np.mean([(pred[a] != pred[b]).mean() for a, b in pairs]))
    np.testing.assert_allclose(s["deviation"], ((z - z.mean(0)) ** 2).mean(axis=(1, 2)))


@pytest.fixture(scope="module")
def order():
    return order_sensitivity(k=100, n_runs=6, n_init=2, n_train=300, epochs=6, batch_size=10)


def test_early_set_varies_the_function_more_than_late(order):
    """Fixed init; only the first (or last) 100 examples' order varies; MWU over runs."""
    print(f"logit var early/late per seed {order.logit_var.tolist()}, ratio {order.ratio:.2f}, "
          f"p = {order.p_value:.2g}, per seed {order.p_value_seeds}")
    assert (order.logit_var[:, 0] > order.logit_var[:, 1]).all()
    assert order.ratio > 1.5
    assert order.p_value < 0.01
    assert (order.p_value_seeds < 0.05).all()


def test_order_result_roundtrip(order, tmp_path):
    assert isinstance(order, OrderResult) and order.deviation.shape == (2, 2, 6)
    back = Result.load(order.save(tmp_path / "o"))
    np.testing.assert_array_equal(back.logit_var, order.logit_var)
    assert back.p_value == order.p_value
    assert len(order.plot().axes) == 2


def test_probes_come_from_the_probes_stream():
    a, b = probe_indices(Seeds(probes=1), 100, 10), probe_indices(Seeds(probes=1, order=5), 100, 10)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, probe_indices(Seeds(probes=2), 100, 10))
    assert (np.diff(a) > 0).all()


def test_curriculum_orders_and_result(tmp_path):
    r = curriculum(n_seeds=2, n_train=200, epochs=2, batch_size=50, reference_steps=20)
    assert isinstance(r, CurriculumResult) and r.curricula == ["random", "easy_to_hard", "hard_to_easy"]
    assert r.test_acc.shape == (3, 2) and r.test_acc_curve.shape[1:] == (3, 2)
    assert np.isfinite(r.difficulty).all() and r.difficulty.shape == (200,)
    assert np.isnan(r.p_vs_random[0]) and 0 <= r.p_vs_random[1] <= 1
    back = Result.load(r.save(tmp_path / "c"))
    np.testing.assert_array_equal(back.test_acc, r.test_acc)
    assert len(r.plot().axes) == 1
    with pytest.raises(ValueError, match="unknown curriculum 'sorted'"):
        curriculum(curricula=["sorted"], n_train=50)
