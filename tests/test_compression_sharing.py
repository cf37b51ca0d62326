"""Weight sharing (k-means), Huffman coding and the Deep Compression size accounting."""
import math

import numpy as np
import pytest
from _tol import assert_close, rtol
from hypothesis import given, settings
from hypothesis import strategies as st

from pyquirk.compression import (canonical_codes, decode, encode, finetune_shared, huffman_lengths,
                                 is_prefix_free, kmeans_1d, layer_streams, prune_magnitude, relative_index,
                                 share_weights, size_report)
from pyquirk.compression import _reference as ref
from pyquirk.compression.huffman import TABLE_BITS
from pyquirk.compression.sharing import _expansion
from pyquirk.nn import Dense, Net, ReLU

TWINS = ["reference", "cpu"]


# ----------------------------------------------------------------------------------- k-means
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("k", [1, 2, 7, 32])
def test_kmeans_twins_agree(dtype, k):
    x = (np.random.default_rng(k).standard_normal(5000) * 0.05).astype(dtype)
    c_ref, l_ref, it_ref = kmeans_1d(x, k, backend="reference")
    c_fast, l_fast, it_fast = kmeans_1d(x, k, backend="cpu")
    assert np.array_equal(l_ref, l_fast) and it_ref == it_fast
    assert_close(c_fast, c_ref, "fast", np.float64, "centroids")


@pytest.mark.parametrize("backend", TWINS)
@pytest.mark.parametrize("max_iter", [1, 3, 100])
def test_kmeans_centroids_are_cluster_means_and_assignment_is_nearest(backend, max_iter):
    x = np.random.default_rng(1).laplace(size=3000) * 0.1
    c, labels, it = kmeans_1d(x, 16, max_iter=max_iter, backend=backend)
    assert 1 <= it <= max_iter
    assert np.all(np.diff(c) >= 0), "centroids sorted"
    for j in range(16):
        if (labels == j).any():
            assert c[j] == pytest.approx(x[labels == j].mean(), rel=rtol("exact", np.float64), abs=1e-15)
    if it < max_iter:                                       # converged: a fixed point of Lloyd
        nearest = np.abs(x[:, None] - c[None, :]).argmin(1)
        assert np.array_equal(nearest, labels)


def test_kmeans_linear_init_and_validation():
    x = np.array([0.0, 1.0, 2.0, 3.0, 10.0])
    assert np.allclose(ref.linear_init(x, 3), [0, 5, 10])
    c, labels, _ = kmeans_1d(x, 2)
    assert np.array_equal(labels, [0, 0, 0, 0, 1]) and np.allclose(c, [1.5, 10])
    with pytest.raises(ValueError, match="x"):
        kmeans_1d(np.array([1.0, np.nan]), 2)
    with pytest.raises(ValueError, match="k must be"):
        kmeans_1d(x, 0)


def small_net():
    return Net([Dense(24), ReLU(), Dense(16), ReLU(), Dense(5)], input_shape=(10,))


def test_share_weights_replaces_each_kept_weight_by_its_centroid():
    net = small_net()
    theta = net.init(0)
    mask = prune_magnitude(net, theta, 0.6)
    sw = share_weights(net, theta, mask, bits=3)
    assert sw.names == ["0.weight", "2.weight", "4.weight"]
    assert np.all(sw.theta[~mask] == 0)
    assert np.array_equal(sw.index, np.flatnonzero(mask & net.param_mask("weights")))   # ascending
    assert np.array_equal(sw.theta[sw.index], sw.centroids[sw.cluster].astype(np.float32))
    b = ~net.param_mask("weights")
    assert np.array_equal(sw.theta[b], theta[b])           # biases untouched
    for layer, name in enumerate(sw.names):
        assert sw.codebook(layer).size == 8
        sel = (sw.cluster >= sw.offsets[layer]) & (sw.cluster < sw.offsets[layer + 1])
        for j in np.unique(sw.cluster[sel]):
            members = theta[sw.index[sw.cluster == j]].astype(np.float64)
            assert sw.centroids[j] == pytest.approx(members.mean(), rel=1e-12)


def test_finetune_gradient_is_the_sum_over_each_cluster():
    net = small_net()
    theta = net.init(1)
    mask = prune_magnitude(net, theta, 0.5)
    sw = share_weights(net, theta, mask, bits=2)
    free, expand, pull = _expansion(net, sw)
    Q = sw.centroids.size
    A = np.zeros((net.n_params, Q + free.size))               # θ = A φ, explicitly
    A[sw.index, sw.cluster] = 1
    A[free, Q + np.arange(free.size)] = 1
    phi = np.random.default_rng(0).standard_normal(Q + free.size).astype(np.float32)
    g = np.random.default_rng(1).standard_normal(net.n_params).astype(np.float32)
    assert np.array_equal(expand(phi), (A @ phi).astype(np.float32))
    assert_close(pull(g), A.T @ g, "exact", np.float32, "Aᵀ g")


def test_finetune_keeps_ties_and_zeros():
    net = small_net()
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((200, 10)).astype(np.float32), rng.integers(0, 5, 200)
    theta = net.init(2)
    mask = prune_magnitude(net, theta, 0.7)
    sw = share_weights(net, theta, mask, bits=2)
    ft = finetune_shared(net, sw, (X, y, X, y), steps=20, batch_size=50)
    assert np.all(ft.theta[~mask] == 0)
    assert np.array_equal(ft.theta[ft.index], ft.centroids[ft.cluster].astype(np.float32))
    assert not np.allclose(ft.centroids, sw.centroids)
    assert ft.history["test_acc"].shape == (2,)


# ----------------------------------------------------------------------------------- Huffman
@pytest.mark.parametrize("seed", range(6))
def test_huffman_twins_give_identical_lengths(seed):
    rng = np.random.default_rng(seed)
    counts = rng.integers(0, 6, size=int(rng.integers(2, 300)))    # many ties and zeros
    a = huffman_lengths(counts, backend="reference")
    b = huffman_lengths(counts, backend="cpu")
    assert np.array_equal(a, b)


@settings(max_examples=40, deadline=None)
@given(counts=st.lists(st.integers(0, 1000), min_size=1, max_size=64))
def test_huffman_is_optimal_prefix_free_and_complete(counts):
    counts = np.array(counts, dtype=np.int64)
    L = huffman_lengths(counts)
    used = counts > 0
    assert np.all(L[~used] == 0) and np.all(L[used] >= 1)
    assert is_prefix_free(L)
    if used.sum() >= 2:
        assert sum(2.0 ** -L[used]) == pytest.approx(1.0)      # a full tree (Kraft equality)
        p = counts[used] / counts.sum()
        entropy = -(p * np.log2(p)).sum()
        avg = (p * L[used]).sum()
        assert entropy - 1e-9 <= avg < entropy + 1               # Shannon bounds


def test_canonical_codes_and_known_example():
    L = huffman_lengths(np.array([45, 13, 12, 16, 9, 5]))       # CLRS's example
    assert (L * [45, 13, 12, 16, 9, 5]).sum() == 224
    codes = canonical_codes(L)
    assert is_prefix_free(L) and codes[0] == 0 and L[0] == 1


@pytest.mark.parametrize("seed", range(4))
def test_size_from_lengths_equals_the_actual_encoding(seed):
    rng = np.random.default_rng(seed)
    S = int(rng.integers(1, 40))
    symbols = rng.choice(S, size=3000, p=rng.dirichlet(np.ones(S) * 0.3))
    counts = np.bincount(symbols, minlength=S)
    L = huffman_lengths(counts)
    buf, n_bits = encode(symbols, L)
    assert n_bits == int((counts * L).sum())
    assert buf.size == math.ceil(n_bits / 8)
    assert np.array_equal(decode(buf, n_bits, L), symbols)


def test_relative_index_with_fillers():
    codes, filler = relative_index([0, 3, 12], 2)                # G = 4: the gap 9 needs two fillers
    assert codes.tolist() == [0, 2, 3, 3, 0] and filler.tolist() == [False, False, True, True, False]
    pos = np.cumsum(codes + 1) - 1
    assert pos[~filler].tolist() == [0, 3, 12]
    codes, filler = relative_index([3, 7], 2)                    # a gap of exactly G needs none
    assert codes.tolist() == [3, 3] and not filler.any()


def test_size_report_by_hand():
    net = Net([Dense(4)], input_shape=(3,))                       # weight [4, 3] = 12 entries, bias 4
    mask = np.zeros(net.n_params, bool)
    mask[[0, 3, 11]] = True
    mask[12:] = True                                             # biases kept
    r = size_report(net, mask, index_bits=2)
    assert r.stages == {"dense": 32 * 16, "pruned": 4 * (32 + 2) + 32 * 4}
    assert r.layers["0.weight"]["fillers"] == 1 and r.layers["0.weight"]["entries"] == 4
    assert r.ratios["pruning"] == pytest.approx(512 / 264) and r.ratios["total"] == pytest.approx(512 / 264)


def test_size_report_stages_match_their_streams_and_encodings():
    net = small_net()
    theta = net.init(3)
    mask = prune_magnitude(net, theta, 0.9)
    sw = share_weights(net, theta, mask)
    r = size_report(net, mask, sw)
    assert set(r.stages) == {"dense", "pruned", "quantized", "huffman"}
    assert r.ratios["total"] == pytest.approx(r.ratios["pruning"] * r.ratios["quantization"] * r.ratios["huffman"])
    streams = layer_streams(net, mask, sw)
    huff = 32 * (net.n_params - sum(v["size"] for v in streams.values()))
    for name, v in streams.items():
        K = v["K"]
        f = int(v["filler"].sum() > 0)
        assert np.sum(v["values"] < K) == v["nonzero"]
        Lv = huffman_lengths(np.bincount(v["values"], minlength=K + f))
        Lg = huffman_lengths(np.bincount(v["gaps"], minlength=1 << v["index_bits"]))
        bits_v = encode(v["values"], Lv)[1]
        bits_g = encode(v["gaps"], Lg)[1]
        huff += bits_v + bits_g + 32 * K + TABLE_BITS * (K + f + (1 << v["index_bits"]))
        assert r.layers[name]["huffman"] == bits_v + bits_g + 32 * K + TABLE_BITS * (K + f + (1 << v["index_bits"]))
    assert r.stages["huffman"] == huff
    assert r.stages["quantized"] < r.stages["pruned"] < r.stages["dense"]
    with pytest.raises(ValueError, match="shared.mask differs"):
        size_report(net, prune_magnitude(net, theta, 0.5), sw)


def test_huffman_input_validation():
    with pytest.raises(TypeError, match="counts must be integers"):
        huffman_lengths(np.array([1.0, 2.0]))
    with pytest.raises(ValueError, match="non-negative"):
        huffman_lengths(np.array([1, -2]))
    assert huffman_lengths(np.array([0, 5, 0])).tolist() == [0, 1, 0]
