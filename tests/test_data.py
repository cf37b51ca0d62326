"""Tests for pyquirk.data: determinism, global-RNG isolation, caching, file formats, validation."""
from __future__ import annotations

import gzip
import json
import random
import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pyquirk.data as D
from pyquirk.data import Dataset, standardize, train_test_split
from pyquirk.data._mnist1d import PUBLISHED_ARGS
from pyquirk.seeds import Seeds, stream

FAST = settings(max_examples=25, deadline=None)
BAD_FRACTIONS = st.one_of(st.floats(max_value=0.0), st.floats(min_value=1.0),
                          st.just(float("nan")), st.just(float("inf")))


def _global_states():
    return random.getstate(), np.random.get_state()


def _same_global_states(a, b) -> bool:
    (pa, na), (pb, nb) = a, b
    return pa == pb and all(np.array_equal(x, y) for x, y in zip(na, nb))


def _toy(n_train=20, n_test=10, dim=3, k=3, seed=0) -> Dataset:
    rng = np.random.default_rng(seed)
    return Dataset(rng.normal(size=(n_train, dim)), np.arange(n_train) % k,
                   rng.normal(size=(n_test, dim)), np.arange(n_test) % k, k, "toy")


# ----------------------------------------------------------------------------------------------
# MNIST-1D
# ----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def published(tmp_path_factory):
    """The published MNIST-1D, generated once into a temporary cache via $PYQUIRK_CACHE."""
    cache = tmp_path_factory.mktemp("pyquirk_cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PYQUIRK_CACHE", str(cache))
        random.seed(1234)
        np.random.seed(4321)
        before = _global_states()
        ds = D.mnist1d()
        after = _global_states()
    return ds, cache, before, after


def test_mnist1d_published_shapes(published):
    ds, _, _, _ = published
    assert (ds.n_train, ds.n_test, ds.input_shape, ds.n_classes) == (4000, 1000, (40,), 10)
    assert ds.X_train.dtype == np.float32 and ds.y_train.dtype == np.int64
    assert set(np.unique(ds.y_train)) == set(range(10)) == set(np.unique(ds.y_test))
    both = np.concatenate([ds.X_train, ds.X_test]).astype(np.float64)
    assert abs(both.mean()) < 1e-6 and abs(both.std() - 1) < 1e-5  # generator's global scaling
    assert ds.meta["args"]["seed"] == 42 and ds.meta["cache_hit"] is False


def test_mnist1d_global_rng_untouched(published):
    _, _, before, after = published
    assert _same_global_states(before, after)
    random.seed(5)
    np.random.seed(6)
    expect = (random.random(), np.random.rand())
    random.seed(5)
    np.random.seed(6)
    D.mnist1d(num_samples=50, seed=3, cache=False)
    assert (random.random(), np.random.rand()) == expect


def test_mnist1d_global_rng_restored_on_error(monkeypatch):
    import mnist1d.data

    def boom(args):
        np.random.seed(0)
        random.seed(0)
        raise RuntimeError("generator failed")

    monkeypatch.setattr(mnist1d.data, "make_dataset", boom)
    before = _global_states()
    with pytest.raises(RuntimeError, match="generator failed"):
        D.mnist1d(num_samples=50, cache=False)
    assert _same_global_states(before, _global_states())


def test_mnist1d_cache_hit_identical(published, monkeypatch):
    first, cache, _, _ = published
    monkeypatch.setenv("PYQUIRK_CACHE", str(cache))
    files = list(cache.glob("mnist1d-*.npz"))
    assert len(files) == 1 and first.meta["cache_key"][:20] in files[0].name
    again = D.mnist1d()
    assert again.meta["cache_hit"] is True
    for k in ("X_train", "y_train", "X_test", "y_test"):
        np.testing.assert_array_equal(getattr(first, k), getattr(again, k))
    wide = D.mnist1d(dtype=np.float64)
    assert wide.dtype == np.float64 and wide.meta["cache_hit"]
    np.testing.assert_array_equal(wide.X_train.astype(np.float32), first.X_train)


def test_mnist1d_cache_dir_argument_and_no_network(tmp_path, monkeypatch):
    import mnist1d.data

    def no_net(*a, **k):
        raise AssertionError("network or pickle download attempted")

    monkeypatch.setattr(mnist1d.data, "get_dataset", no_net)
    monkeypatch.setattr(mnist1d.data.requests, "get", no_net)
    monkeypatch.setenv("PYQUIRK_CACHE", str(tmp_path / "env"))
    ds = D.mnist1d(num_samples=60, cache_dir=tmp_path / "arg")
    assert len(list((tmp_path / "arg").glob("*.npz"))) == 1
    assert not (tmp_path / "env").exists()
    assert D.mnist1d(num_samples=60, cache_dir=tmp_path / "arg").meta["cache_hit"]
    (path,) = (tmp_path / "arg").glob("*.npz")
    path.write_bytes(b"not a zip file")
    with pytest.warns(UserWarning, match="unreadable"):
        fresh = D.mnist1d(num_samples=60, cache_dir=tmp_path / "arg")
    np.testing.assert_array_equal(fresh.X_train, ds.X_train)


def test_mnist1d_deterministic_and_seed_sensitive():
    a = D.mnist1d(num_samples=100, seed=1, cache=False)
    b = D.mnist1d(num_samples=100, seed=1, cache=False)
    c = D.mnist1d(num_samples=100, seed=2, cache=False)
    np.testing.assert_array_equal(a.X_train, b.X_train)
    np.testing.assert_array_equal(a.y_test, b.y_test)
    assert not np.array_equal(a.X_train, c.X_train)
    assert a.meta["cache_key"] != c.meta["cache_key"]
    short = D.mnist1d(num_samples=100, cache=False, final_seq_length=20)
    assert short.input_shape == (20,) and short.meta["args"]["final_seq_length"] == 20


def test_mnist1d_published_args_match_package():
    from mnist1d.data import get_dataset_args

    pkg = get_dataset_args(as_dict=True)
    assert {k: pkg[k] for k in PUBLISHED_ARGS} == PUBLISHED_ARGS


@pytest.mark.parametrize("kwargs, exc, word", [
    ({"bogus": 1}, ValueError, "bogus"), ({"padding": [5, 1]}, ValueError, "padding"),
    ({"num_samples": 5}, ValueError, "num_samples"), ({"train_split": 1.0}, ValueError, "train_split"),
    ({"seed": -1}, ValueError, "seed"), ({"dtype": np.int32}, ValueError, "dtype"),
    ({"shear_scale": -1.0}, ValueError, "shear_scale"), ({"shuffle_seq": 1}, TypeError, "shuffle_seq"),
])
def test_mnist1d_validation(kwargs, exc, word):
    with pytest.raises(exc, match=word):
        D.mnist1d(cache=False, **kwargs)


# ----------------------------------------------------------------------------------------------
# digits and synthetic data
# ----------------------------------------------------------------------------------------------
def test_digits_shapes_scale_and_stratification():
    ds = D.digits()
    assert (ds.n_train, ds.n_test, ds.input_shape, ds.n_classes) == (1437, 360, (64,), 10)
    assert ds.X_train.dtype == np.float32 and ds.X_train.min() == 0 and ds.X_train.max() == 1
    counts = np.bincount(ds.y_test, minlength=10)
    full = np.bincount(np.concatenate([ds.y_train, ds.y_test]), minlength=10)
    assert np.all(np.abs(counts - full * 360 / 1797) < 1)
    img = D.digits(as_images=True)
    assert img.input_shape == (1, 8, 8)
    np.testing.assert_array_equal(img.X_train.reshape(-1, 64), ds.X_train)
    other = D.digits(seed=1, dtype=np.float64)
    assert other.dtype == np.float64 and not np.array_equal(other.y_train, ds.y_train)


@pytest.mark.parametrize("make", [
    lambda s: D.gaussian_mixture(200, 4, 5, 2.0, seed=s),
    lambda s: D.spheres(100, 20, seed=s),
    lambda s: D.from_arrays(np.arange(80.0).reshape(40, 2), np.arange(40) % 2, seed=s),
])
def test_seeded_determinism_and_no_global_rng(make):
    np.random.seed(0)
    before = np.random.get_state()
    a, b, c = make(3), make(3), make(4)
    assert _same_global_states((0, before), (0, np.random.get_state()))
    np.testing.assert_array_equal(a.X_train, b.X_train)
    np.testing.assert_array_equal(a.y_test, b.y_test)
    assert not np.array_equal(a.X_train, c.X_train)
    assert make(Seeds(data=3)).meta["seed"] == 3


def test_gaussian_mixture_geometry():
    ds = D.gaussian_mixture(n_samples=302, n_classes=3, dim=4, separation=2.5, seed=7)
    means = np.asarray(ds.meta["means"])
    gaps = [np.linalg.norm(means[i] - means[j]) for i in range(3) for j in range(i + 1, 3)]
    assert min(gaps) == pytest.approx(2.5, rel=1e-12)
    counts = np.bincount(np.concatenate([ds.y_train, ds.y_test]))
    assert counts.max() - counts.min() <= 1 and ds.input_shape == (4,)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_spheres_radii_exact(dtype):
    ds = D.spheres(n_samples=400, dim=50, seed=1, dtype=dtype)
    for X, y in ((ds.X_train, ds.y_train), (ds.X_test, ds.y_test)):
        norms = np.linalg.norm(X.astype(np.float64), axis=1)
        np.testing.assert_allclose(norms[y == 0], 1.0, atol=1e-6)
        np.testing.assert_allclose(norms[y == 1], 1.3, atol=1e-6)
    assert np.bincount(np.concatenate([ds.y_train, ds.y_test])).tolist() == [200, 200]
    assert ds.meta["radii"] == [1.0, 1.3] and ds.meta["dim"] == 50 and ds.dtype == dtype


@pytest.mark.parametrize("call, exc, word", [
    (lambda: D.spheres(r_inner=1.3, r_outer=1.0), ValueError, "r_inner"),
    (lambda: D.spheres(dim=1), ValueError, "dim"),
    (lambda: D.spheres(seed=-1), ValueError, "seed"),
    (lambda: D.spheres(seed=1.5), TypeError, "seed"),
    (lambda: D.gaussian_mixture(n_classes=1), ValueError, "n_classes"),
    (lambda: D.gaussian_mixture(separation=float("nan")), ValueError, "separation"),
    (lambda: D.gaussian_mixture(dtype="int8"), ValueError, "dtype"),
    (lambda: D.digits(as_images="yes"), TypeError, "as_images"),
])
def test_generator_validation(call, exc, word):
    with pytest.raises(exc, match=word):
        call()


@FAST
@given(frac=BAD_FRACTIONS)
def test_bad_fractions_rejected_everywhere(frac):
    for call in (lambda: D.spheres(10, 3, test_fraction=frac),
                 lambda: D.gaussian_mixture(10, 2, 2, test_fraction=frac),
                 lambda: D.digits(test_fraction=frac),
                 lambda: D.from_arrays(np.zeros((10, 2)), np.arange(10) % 2, test_fraction=frac),
                 lambda: train_test_split(np.zeros((10, 2)), np.zeros(10, int), frac, stream("data", 0))):
        with pytest.raises(ValueError, match="test_fraction"):
            call()


# ----------------------------------------------------------------------------------------------
# split, standardize, Dataset
# ----------------------------------------------------------------------------------------------
@FAST
@given(n=st.integers(2, 60), k=st.integers(1, 5), frac=st.floats(0.01, 0.99), seed=st.integers(0, 99))
def test_train_test_split_partition(n, k, frac, seed):
    X, y = np.arange(n, dtype=np.float64)[:, None], np.arange(n) % k
    n_test = int(np.ceil(frac * n - 1e-9))
    if not 0 < n_test < n:
        with pytest.raises(ValueError, match="test_fraction"):
            train_test_split(X, y, frac, stream("data", seed))
        return
    Xtr, Xte, ytr, yte = train_test_split(X, y, frac, stream("data", seed))
    assert len(Xte) == n_test and sorted(np.concatenate([Xtr, Xte])[:, 0]) == list(range(n))
    np.testing.assert_array_equal(ytr, Xtr[:, 0].astype(int) % k)
    full = np.bincount(y, minlength=k)
    assert np.all(np.abs(np.bincount(yte, minlength=k) - full * n_test / n) < 1)
    again = train_test_split(X, y, frac, stream("data", seed))
    np.testing.assert_array_equal(again[1], Xte)


def test_train_test_split_requires_generator():
    with pytest.raises(TypeError, match="rng"):
        train_test_split(np.zeros((4, 1)), np.zeros(4, int), 0.5, 0)
    with pytest.raises(ValueError, match="stratify"):
        train_test_split(np.zeros((4, 1)), np.zeros(4), 0.5, stream("data", 0), stratify=True)


def test_standardize_uses_train_statistics_only():
    rng = np.random.default_rng(0)
    Xtr = rng.normal(3.0, 2.0, size=(50, 4))
    Xte = rng.normal(100.0, 50.0, size=(30, 4))
    s = standardize(Xtr, Xte)
    assert abs(s.X_train.mean()) < 1e-12 and abs(s.X_train.std() - 1) < 1e-12
    np.testing.assert_allclose(s.X_test, (Xte - Xtr.mean()) / Xtr.std())
    s2 = standardize(Xtr, Xte * 10 + 5)
    np.testing.assert_array_equal(s2.X_train, s.X_train)
    assert s2.mean == s.mean and s2.std == s.std
    f = standardize(Xtr, Xte, axis="feature")
    np.testing.assert_allclose(f.X_train.mean(0), 0, atol=1e-12)
    np.testing.assert_allclose(f.X_test, (Xte - Xtr.mean(0)) / Xtr.std(0))
    const = standardize(np.ones((5, 2)), np.full((3, 2), 4.0), axis=0)
    np.testing.assert_array_equal(const.X_test, 3.0)  # constant feature: centred, not divided by 0
    assert standardize(Xtr.astype(np.float32), Xte.astype(np.float32)).X_test.dtype == np.float32
    for bad in (1, (1, 2), "bogus", -5):
        with pytest.raises(ValueError, match="axis"):
            standardize(Xtr, Xte, axis=bad)


def test_dataset_standardize_and_subset():
    ds = _toy(n_train=30, n_test=12, k=3)
    st_ = ds.standardize()
    assert st_.meta["standardize"][0]["axis"] == "global"
    assert st_.meta["standardize"][0]["mean"] == pytest.approx(ds.X_train.mean())
    assert "standardize" not in ds.meta  # original untouched
    sub = ds.subset(n_train=5, n_test=3)
    np.testing.assert_array_equal(sub.X_train, ds.X_train[:5])
    two = ds.subset(classes=[2, 0], relabel=True)
    assert two.n_classes == 2 and set(two.y_train) == {0, 1}
    np.testing.assert_array_equal(two.X_train, ds.X_train[np.isin(ds.y_train, [0, 2])])
    np.testing.assert_array_equal(two.y_train, (ds.y_train[np.isin(ds.y_train, [0, 2])] == 0))
    kept = ds.subset(classes=[1])
    assert kept.n_classes == 3 and set(kept.y_test) == {1}
    r1, r2 = ds.subset(n_train=10, seed=1), ds.subset(n_train=10, seed=1)
    np.testing.assert_array_equal(r1.X_train, r2.X_train)
    for kw, exc in (({"n_train": 31}, ValueError), ({"n_test": 0}, ValueError),
                    ({"classes": [3]}, ValueError), ({"classes": [0, 0]}, ValueError),
                    ({"relabel": True}, ValueError), ({"n_train": 2.0}, TypeError)):
        with pytest.raises(exc):
            ds.subset(**kw)
    d = ds.to_dict()
    assert json.loads(json.dumps(d))["input_shape"] == [3] and d["task"] == "classification"


@FAST
@given(n_tr=st.integers(1, 6), n_te=st.integers(1, 6), dim=st.integers(1, 4),
       flaw=st.sampled_from(["len", "shape", "label", "nan", "empty", "dtype", "labeldtype", "ndim"]))
def test_dataset_validation(n_tr, n_te, dim, flaw):
    Xtr, ytr = np.zeros((n_tr, dim)), np.zeros(n_tr, np.int64)
    Xte, yte = np.zeros((n_te, dim)), np.zeros(n_te, np.int64)
    exc, word = ValueError, "y_train"
    if flaw == "len":
        ytr = np.zeros(n_tr + 1, np.int64)
    elif flaw == "shape":
        Xte, word = np.zeros((n_te, dim + 1)), "input shape"
    elif flaw == "label":
        yte, word = np.full(n_te, 2), "label"
    elif flaw == "nan":
        Xtr[-1, -1], word = np.nan, "X_train"
    elif flaw == "empty":
        Xte, yte, word = np.zeros((0, dim)), np.zeros(0, np.int64), "X_test"
    elif flaw == "dtype":
        Xte, exc, word = Xte.astype(np.float32), TypeError, "dtype"
    elif flaw == "labeldtype":
        ytr, exc = ytr.astype(np.float64), TypeError
    else:
        Xtr, word = np.zeros(n_tr), "X_train"
    with pytest.raises(exc, match=word):
        Dataset(Xtr, ytr, Xte, yte, 2)
    Dataset(np.zeros((n_tr, dim)), np.zeros(n_tr, int), np.zeros((n_te, dim)), np.zeros(n_te, int), 2)


def test_regression_dataset_and_from_arrays():
    X, t = np.random.default_rng(0).normal(size=(20, 3)), np.linspace(0, 1, 20)
    ds = D.from_arrays(X, t, test_fraction=0.25, seed=0)
    assert ds.task == "regression" and ds.n_classes == 0 and ds.n_test == 5
    ints = D.from_arrays(np.arange(40).reshape(20, 2), np.arange(20) % 4, seed=0)
    assert ints.dtype == np.float32 and ints.n_classes == 4
    with pytest.raises(ValueError, match="X_test"):
        D.from_arrays(X, t, X_test=X)
    with pytest.raises(TypeError, match="n_classes"):
        D.from_arrays(X, t, n_classes=3)
    with pytest.raises(ValueError, match="y_train"):
        D.from_arrays(X, np.arange(19) % 2)


# ----------------------------------------------------------------------------------------------
# files: npz and IDX
# ----------------------------------------------------------------------------------------------
def test_npz_round_trip_and_key_errors(tmp_path):
    ds = _toy().standardize()
    ds.save_npz(tmp_path / "toy.npz")
    back = D.load_npz(tmp_path / "toy.npz")
    for k in ("X_train", "y_train", "X_test", "y_test"):
        np.testing.assert_array_equal(getattr(back, k), getattr(ds, k))
    assert (back.name, back.n_classes) == ("toy", 3)
    assert back.meta["standardize"] == json.loads(json.dumps(ds.meta["standardize"]))
    np.savez(tmp_path / "xy.npz", X=np.zeros((10, 2)), Y=np.arange(10) % 2)
    xy = D.load_npz(tmp_path / "xy.npz", test_fraction=0.3, seed=1)
    assert (xy.n_train, xy.n_test, xy.name) == (7, 3, "xy")
    np.savez(tmp_path / "bad.npz", images=np.zeros((3, 2)), labels=np.zeros(3))
    with pytest.raises(ValueError, match=r"\['images', 'labels'\]"):
        D.load_npz(tmp_path / "bad.npz")
    np.savez(tmp_path / "obj.npz", x=np.array([{"a": 1}], dtype=object), y=np.zeros(1))
    with pytest.raises(ValueError, match="allow_pickle=False"):
        D.load_npz(tmp_path / "obj.npz")


def _write_idx(path, arr: np.ndarray, code: int, compress: bool = False) -> None:
    """Write an IDX file by hand: 0, 0, type code, ndim, big-endian uint32 dims, big-endian data."""
    be = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}[code]
    blob = struct.pack(">BBBB", 0, 0, code, arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape)
    blob += arr.astype(be).tobytes()
    path.write_bytes(gzip.compress(blob) if compress else blob)


@FAST
@given(code=st.sampled_from([0x08, 0x09, 0x0B, 0x0C, 0x0D, 0x0E]),
       shape=st.lists(st.integers(1, 4), min_size=1, max_size=3), compress=st.booleans())
def test_idx_round_trip(tmp_path_factory, code, shape, compress):
    dt = {0x08: np.uint8, 0x09: np.int8, 0x0B: np.int16, 0x0C: np.int32, 0x0D: np.float32,
          0x0E: np.float64}[code]
    arr = (np.arange(np.prod(shape)).reshape(shape) * (-1 if code in (0x09, 0x0B, 0x0C) else 1)
           + (0.5 if code >= 0x0D else 0)).astype(dt)
    path = tmp_path_factory.mktemp("idx") / ("a.idx.gz" if compress else "a.idx")
    _write_idx(path, arr, code, compress)
    back = D.load_idx(path)
    assert back.dtype == dt and back.dtype.isnative and back.shape == tuple(shape)
    np.testing.assert_array_equal(back, arr)


def test_idx_errors_and_from_idx(tmp_path):
    imgs = (np.arange(12 * 4 * 4) % 256).astype(np.uint8).reshape(12, 4, 4)
    labels = (np.arange(12) % 3).astype(np.uint8)
    _write_idx(tmp_path / "img.gz", imgs, 0x08, compress=True)
    _write_idx(tmp_path / "lab", labels, 0x08)
    ds = D.from_idx(tmp_path / "img.gz", tmp_path / "lab", test_fraction=0.25, seed=0)
    assert (ds.n_train, ds.n_test, ds.input_shape, ds.n_classes) == (9, 3, (16,), 3)
    assert ds.X_train.max() <= 1 and ds.X_train.dtype == np.float32
    both = D.from_idx(tmp_path / "img.gz", tmp_path / "lab", tmp_path / "img.gz", tmp_path / "lab",
                      as_images=True)
    assert both.input_shape == (1, 4, 4)
    np.testing.assert_allclose(both.X_test[:, 0] * 255, imgs, atol=1e-4)
    (tmp_path / "bad").write_bytes(b"\x01\x00\x08\x01" + struct.pack(">I", 1) + b"\x00")
    with pytest.raises(ValueError, match="magic"):
        D.load_idx(tmp_path / "bad")
    (tmp_path / "code").write_bytes(b"\x00\x00\x0a\x01" + struct.pack(">I", 1) + b"\x00")
    with pytest.raises(ValueError, match="0x0A"):
        D.load_idx(tmp_path / "code")
    (tmp_path / "short").write_bytes(b"\x00\x00\x08\x01" + struct.pack(">I", 5) + b"\x00")
    with pytest.raises(ValueError, match="needs 5 data bytes"):
        D.load_idx(tmp_path / "short")
    with pytest.raises(ValueError, match="test_labels_path"):
        D.from_idx(tmp_path / "img.gz", tmp_path / "lab", tmp_path / "img.gz")
