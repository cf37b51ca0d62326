"""Numba kernels of the compression package; their NumPy twins (same names) are in :mod:`._reference`.

- :func:`kmeans_1d`: 1-D Lloyd on the sorted data. A cluster of sorted centroids is a contiguous
  run of the sorted data, so an assignment is k−1 binary searches for the midpoints and an update
  is k contiguous sums: O(n + k log n) per iteration instead of the reference's O(n·k), and the
  convergence test compares k boundaries instead of n labels.
- :func:`huffman_lengths`: the two-queue Huffman construction (leaves sorted once, internal nodes
  created in non-decreasing weight order), O(S) after the sort, with the reference's tie rule.

Importing this module imports numba; :mod:`.sharing` and :mod:`.huffman` catch the ImportError
(STYLE 4) and fall back to the NumPy twins.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from ._reference import linear_init


@njit(cache=True)
def _bounds(xs, c, s):
    """s[j] = start of cluster j in sorted xs: s[0] = 0, s[j+1] = #{x <= (c_j + c_{j+1})/2}, s[k] = n."""
    k = c.shape[0]
    s[0] = 0
    for j in range(k - 1):
        s[j + 1] = np.searchsorted(xs, 0.5 * (c[j] + c[j + 1]), side="right")
    s[k] = xs.shape[0]


@njit(cache=True)
def _lloyd_sorted(xs, c, max_iter):
    """Lloyd iterations on sorted xs from centroids c (updated in place); returns (bounds, updates)."""
    k = c.shape[0]
    s = np.empty(k + 1, np.int64)
    s_new = np.empty(k + 1, np.int64)
    _bounds(xs, c, s)
    it = 1
    while True:
        for j in range(k):                       # update: each centroid its contiguous run's mean
            a, b = s[j], s[j + 1]
            if b > a:
                acc = 0.0
                for i in range(a, b):
                    acc += xs[i]
                c[j] = acc / (b - a)
        if it >= max_iter:
            return s, it
        _bounds(xs, c, s_new)
        same = True
        for j in range(k + 1):
            if s_new[j] != s[j]:
                same = False
                break
        if same:
            return s, it
        s, s_new = s_new, s
        it += 1


def kmeans_1d(x: np.ndarray, k: int, max_iter: int):
    """Fast twin of :func:`._reference.kmeans_1d` (same contract: x ``[n]`` float64)."""
    order = np.argsort(x, kind="stable")
    xs = np.ascontiguousarray(x[order])
    c = linear_init(x, k)
    s, it = _lloyd_sorted(xs, c, max_iter)
    labels = np.empty(x.shape[0], np.int64)
    labels[order] = np.repeat(np.arange(k, dtype=np.int64), np.diff(s))
    return c, labels, int(it)


@njit(cache=True)
def _two_queue(w_sorted):
    """Depth of each leaf (leaves given in ascending weight) of the two-queue Huffman tree."""
    m = w_sorted.shape[0]
    w = np.empty(2 * m - 1, np.int64)
    parent = np.empty(2 * m - 1, np.int64)
    w[:m] = w_sorted
    i, j, nxt = 0, m, m
    for _ in range(m - 1):
        w[nxt] = 0
        for _t in range(2):
            if i < m and (j >= nxt or w[i] <= w[j]):   # on equal weights a leaf goes first
                v = i
                i += 1
            else:
                v = j
                j += 1
            w[nxt] += w[v]
            parent[v] = nxt
        nxt += 1
    depth = np.zeros(2 * m - 1, np.int64)
    for v in range(2 * m - 3, -1, -1):
        depth[v] = depth[parent[v]] + 1
    return depth[:m]


def huffman_lengths(counts: np.ndarray) -> np.ndarray:
    """Fast twin of :func:`._reference.huffman_lengths` (same tie rule, same lengths)."""
    counts = np.asarray(counts, dtype=np.int64)
    lengths = np.zeros(counts.shape[0], dtype=np.int64)
    used = np.flatnonzero(counts > 0)
    if used.size <= 1:
        lengths[used] = 1
        return lengths
    order = used[np.argsort(counts[used], kind="stable")]
    lengths[order] = _two_queue(np.ascontiguousarray(counts[order]))
    return lengths
