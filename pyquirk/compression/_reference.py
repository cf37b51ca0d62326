"""NumPy twins (the specification) of the compression kernels.

Each function here has a fast twin of the same name (:mod:`._numba` for k-means and Huffman,
the native ``_core`` CSR kernels for :func:`csr_matmul`); the public entry points in
:mod:`.sharing`, :mod:`.huffman` and :mod:`.sparse` validate inputs and pick a twin.
"""
from __future__ import annotations

import heapq

import numpy as np


# ------------------------------------------------------------------------------------ k-means
def linear_init(x: np.ndarray, k: int) -> np.ndarray:
    """Han et al.'s linear initialisation: k centroids evenly spaced over [min x, max x] (float64)."""
    lo, hi = float(x.min()), float(x.max())
    if k == 1:
        return np.array([0.5 * (lo + hi)])
    return lo + (hi - lo) * (np.arange(k, dtype=np.float64) / (k - 1))


def assign(x: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Nearest centroid of sorted ``c``, ties to the lower one: label = #{j : x > (c_j + c_{j+1})/2}."""
    mid = 0.5 * (c[:-1] + c[1:])
    return (x[:, None] > mid[None, :]).sum(axis=1)


def update(x: np.ndarray, labels: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Each centroid becomes its cluster's mean (float64); an empty cluster keeps its centroid."""
    k = c.shape[0]
    counts = np.bincount(labels, minlength=k)
    sums = np.bincount(labels, weights=x, minlength=k)
    return np.where(counts > 0, sums / np.maximum(counts, 1), c)


def kmeans_1d(x: np.ndarray, k: int, max_iter: int):
    """Lloyd's algorithm in 1-D from the linear initialisation.

    Iterate update → assign until the assignment stops changing or ``max_iter`` updates ran; the
    returned centroids are always the means of the returned assignment (empty clusters excepted).
    Centroids stay sorted ascending (1-D Lloyd preserves their order).

    Args:
        x: ``[n]`` float64. k: clusters. max_iter: at most this many updates.

    Returns:
        (centroids ``[k]`` float64, labels ``[n]`` int64, updates run).
    """
    c = linear_init(x, k)
    labels = assign(x, c)
    for it in range(1, max_iter):
        c = update(x, labels, c)
        new = assign(x, c)
        if np.array_equal(new, labels):
            return c, labels.astype(np.int64), it
        labels = new
    return update(x, labels, c), labels.astype(np.int64), max_iter


# ------------------------------------------------------------------------------------ Huffman
def huffman_lengths(counts: np.ndarray) -> np.ndarray:
    """Huffman code lengths by a binary heap (the textbook algorithm).

    Deterministic tie rule, shared with the fast twin: leaves enter in order of (count, symbol);
    a merge takes the two smallest (count, tiebreak) nodes, where a leaf's tiebreak is its rank in
    that order and an internal node's is (number of leaves + its creation index), so on equal
    counts a leaf goes before an internal node and older internal nodes before newer ones.
    Symbols with count 0 get length 0; a single used symbol gets length 1.

    Args:
        counts: ``[S]`` int64 >= 0.

    Returns:
        ``[S]`` int64 code lengths.
    """
    counts = np.asarray(counts, dtype=np.int64)
    lengths = np.zeros(counts.shape[0], dtype=np.int64)
    used = np.flatnonzero(counts > 0)
    if used.size == 0:
        return lengths
    if used.size == 1:
        lengths[used] = 1
        return lengths
    order = used[np.argsort(counts[used], kind="stable")]
    m = order.size
    heap = [(int(counts[s]), rank, rank) for rank, s in enumerate(order)]   # (count, tiebreak, node)
    heapq.heapify(heap)
    parent = np.full(2 * m - 1, -1, dtype=np.int64)
    node = m
    while len(heap) > 1:
        ca, _, a = heapq.heappop(heap)
        cb, _, b = heapq.heappop(heap)
        parent[a] = parent[b] = node
        heapq.heappush(heap, (ca + cb, node, node))
        node += 1
    depth = np.zeros(2 * m - 1, dtype=np.int64)
    for v in range(2 * m - 3, -1, -1):          # parents have larger ids than their children
        depth[v] = depth[parent[v]] + 1
    lengths[order] = depth[:m]
    return lengths


# ------------------------------------------------------------------------------------ CSR
def csr_matmul(indptr, indices, data, bias, Xt, relu: bool = False, *, check: bool = True,
               x_rows: bool = False) -> np.ndarray:
    """``Yt = act(W Xt + b)`` for W in CSR ``[out, in]`` and feature-major ``Xt: [in, N]``.

    Row o: ``Yt[o] = b[o] + Σ_{t in row o} data[t]·Xt[indices[t]]`` in Xt's dtype (NumPy's own
    summation order; the native twin sums in the row's order, so they agree to rounding); ``relu``
    applies ``max(·, 0)``. ``x_rows=True``: the input is sample-major ``X: [N, in]``. ``check`` is
    accepted for the native twin's signature (NumPy's own indexing checks the indices).

    Returns:
        ``Yt: [out, N]`` in Xt's dtype.
    """
    Xt = Xt.T if x_rows else Xt
    out = indptr.shape[0] - 1
    Yt = np.empty((out, Xt.shape[1]), dtype=Xt.dtype)
    for o in range(out):
        a, b = indptr[o], indptr[o + 1]
        bo = 0 if bias is None else bias[o]
        Yt[o] = bo + data[a:b] @ Xt[indices[a:b]] if b > a else bo
    return np.maximum(Yt, 0, out=Yt) if relu else Yt
