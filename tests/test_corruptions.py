"""Corruptions obey their definitions (DESIGN §4 Memorization; issue 7)."""
import numpy as np
import pytest
from scipy import stats

from pyquirk.data import Dataset, mnist1d
from pyquirk.data.corruptions import (KINDS, Compose, Gaussian, PartialLabels, RandomLabels,
                                      ShuffledPixels, corrupt, make_corruption)
from pyquirk.seeds import Seeds


@pytest.fixture(scope="module")
def ds():
    return mnist1d()


def _images(seed=0):
    rng = np.random.default_rng(seed)
    X = rng.random((300, 1, 4, 5)).astype(np.float32)
    return Dataset(X[:200], rng.integers(0, 3, 200), X[200:], rng.integers(0, 3, 100), n_classes=3)


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_partial_changes_within_binomial_bounds(ds, p):
    """Each label is replaced w.p. p by a uniform class of C, so the CHANGED fraction is p(C-1)/C."""
    out = corrupt(ds, "partial", p, seed=3)
    N, C = ds.n_train, ds.n_classes
    changed = int((out.y_train != ds.y_train).sum())
    q = p * (C - 1) / C
    lo, hi = stats.binom.ppf([1e-6, 1 - 1e-6], N, q)
    assert lo <= changed <= hi, (changed, N * q)
    rec = out.meta["corruption"][-1]
    assert rec["n_changed"] == changed and rec["expected_changed_fraction"] == pytest.approx(q)
    lo, hi = stats.binom.ppf([1e-6, 1 - 1e-6], N, p)
    assert lo <= rec["n_replaced"] <= hi
    # test labels and inputs untouched
    np.testing.assert_array_equal(out.y_test, ds.y_test)
    np.testing.assert_array_equal(out.X_train, ds.X_train)
    np.testing.assert_array_equal(out.X_test, ds.X_test)


def test_partial_is_nested_in_p_and_random_labels_is_p1(ds):
    a, b = corrupt(ds, "partial", 0.2, seed=5), corrupt(ds, "partial", 0.6, seed=5)
    ch_a, ch_b = a.y_train != ds.y_train, b.y_train != ds.y_train
    assert not (ch_a & ~ch_b).any()                      # replaced at 0.2 ⊂ replaced at 0.6
    np.testing.assert_array_equal(corrupt(ds, "random_labels", seed=5).y_train,
                                  corrupt(ds, "partial", 1.0, seed=5).y_train)
    assert corrupt(ds, "partial", 0.0, seed=5).y_train.tolist() == ds.y_train.tolist()


def test_random_labels_are_uniform_and_independent_of_truth(ds):
    y = corrupt(ds, "random_labels", seed=1).y_train
    counts = np.bincount(y, minlength=ds.n_classes)
    assert stats.chisquare(counts).pvalue > 1e-4
    table = np.zeros((ds.n_classes, ds.n_classes))
    np.add.at(table, (ds.y_train, y), 1)
    assert stats.chi2_contingency(table).pvalue > 1e-4


def test_shuffled_pixels_one_permutation_for_train_and_test(ds):
    out = corrupt(ds, "shuffled_pixels", seed=2)
    perm = np.asarray(out.meta["corruption"][-1]["permutation"])
    assert sorted(perm) == list(range(ds.X_train.shape[1])) and (perm != np.arange(len(perm))).any()

    def recover(X, Xc):  # find, for each corrupted column, the original column it equals
        return np.array([int(np.flatnonzero((X == Xc[:, [j]]).all(axis=0))[0]) for j in range(X.shape[1])])

    np.testing.assert_array_equal(recover(ds.X_train, out.X_train), perm)
    np.testing.assert_array_equal(recover(ds.X_test, out.X_test), perm)
    np.testing.assert_array_equal(out.y_train, ds.y_train)


def test_random_pixels_keep_each_example_multiset(ds):
    out = corrupt(ds, "random_pixels", seed=4)
    for a, b in ((ds.X_train, out.X_train), (ds.X_test, out.X_test)):
        np.testing.assert_array_equal(np.sort(a, axis=1), np.sort(b, axis=1))
    moved = (out.X_train != ds.X_train).mean(axis=1)
    assert moved.mean() > 0.9                            # nearly every position changes
    # permutations differ between examples: recover two and compare
    order = [np.argsort(np.argsort(ds.X_train[i])) for i in (0, 1)]
    perm = [np.argsort(out.X_train[i])[order[k]] for k, i in enumerate((0, 1))]
    assert not np.array_equal(perm[0], perm[1])


@pytest.mark.parametrize("match", ["feature", "global"])
def test_gaussian_matches_mean_and_variance(ds, match):
    out = corrupt(ds, "gaussian", seed=6, match=match)
    X, G = ds.X_train.astype(np.float64), out.X_train.astype(np.float64)
    N = len(X)
    if match == "feature":
        mu, sd = X.mean(0), X.std(0)
        assert np.all(np.abs(G.mean(0) - mu) < 5 * sd / np.sqrt(N))
        assert np.all(np.abs(G.var(0) / sd ** 2 - 1) < 5 * np.sqrt(2 / N))
    assert abs(G.mean() - X.mean()) < 5 * X.std() / np.sqrt(G.size)
    assert abs(G.var() / X.var() - 1) < 0.02
    z = (G[:, 7] - G[:, 7].mean()) / G[:, 7].std()
    assert stats.kstest(z, "norm").pvalue > 1e-4
    # the test split is fresh noise with the training statistics
    assert abs(out.X_test.mean() - X.mean()) < 0.05 and not np.array_equal(out.X_test, ds.X_test)
    assert out.X_train.dtype == ds.X_train.dtype


def test_pixel_corruptions_keep_image_shapes():
    ds = _images()
    for kind in ("shuffled_pixels", "random_pixels", "gaussian"):
        out = corrupt(ds, kind, seed=0)
        assert out.X_train.shape == ds.X_train.shape and out.X_test.shape == ds.X_test.shape
    out = corrupt(ds, "random_pixels", seed=0)
    flat = lambda X: np.sort(X.reshape(len(X), -1), axis=1)  # noqa: E731
    np.testing.assert_array_equal(flat(out.X_train), flat(ds.X_train))


def test_seeds_are_the_corruption_stream(ds):
    a = corrupt(ds, "partial", 0.5, seed=Seeds(corruption=7, init=1))
    b = corrupt(ds, "partial", 0.5, seed=Seeds(corruption=7, init=2, order=9))
    c = corrupt(ds, "partial", 0.5, seed=7)
    d = corrupt(ds, "partial", 0.5, seed=8)
    np.testing.assert_array_equal(a.y_train, b.y_train)
    np.testing.assert_array_equal(a.y_train, c.y_train)
    assert not np.array_equal(a.y_train, d.y_train)
    assert a.meta["corruption"][-1]["seed"] == 7


def test_compose_parts_are_independent(ds):
    c1 = Compose(PartialLabels(0.5), ShuffledPixels())
    c2 = make_corruption("partial:0.5").then(Gaussian())
    a, b = c1(ds, seed=3), c2(ds, seed=3)
    np.testing.assert_array_equal(a.y_train, b.y_train)         # a later part never changes an earlier one
    assert len(a.meta["corruption"]) == 2
    assert [r["kind"] for r in a.meta["corruption"]] == ["partial", "shuffled_pixels"]
    assert make_corruption(c1.to_dict()) == c1
    assert c1.label == "partial 0.5 + shuffled pixels"


def test_make_corruption_forms():
    assert make_corruption("partial", p=0.3) == PartialLabels(0.3) == make_corruption("partial:0.3")
    assert make_corruption({"kind": "partial", "p": 0.3}) == PartialLabels(0.3)
    assert make_corruption("random_labels") == RandomLabels() == make_corruption("random_labels", p=1)
    assert {make_corruption(k if k != "partial" else "partial:0.1").kind for k in KINDS} == set(KINDS)
    assert corrupt(mnist1d().subset(n_train=10, n_test=10), "true").meta["corruption"][-1]["kind"] == "true"


@pytest.mark.parametrize("args, match", [
    (("partial", -0.1), "p must lie in"), (("partial", 1.5), "p must lie in"),
    (("partial:abc",), "cannot read p"), (("partial",), "needs p"),
    (("shuffled",), "unknown corruption 'shuffled'"), (("gaussian", 0.5), "takes no p"),
    (("random_labels", 0.5), "takes no p"),
])
def test_bad_input_raises_naming_the_argument(args, match):
    with pytest.raises(ValueError, match=match):
        make_corruption(*args)


def test_bad_types():
    with pytest.raises(TypeError, match="Dataset"):
        PartialLabels(0.1)(np.zeros((3, 2)))
    with pytest.raises(TypeError, match="seed"):
        PartialLabels(0.1)(mnist1d().subset(n_train=10, n_test=10), seed="x")
    with pytest.raises(ValueError, match="gaussian match"):
        Gaussian(match="channel")
    with pytest.raises(ValueError, match="random_labels has p=1"):
        RandomLabels(p=0.5)
