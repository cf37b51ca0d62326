"""Numba twins of :mod:`pyquirk.backends.reference_kernels` (same names, same signatures).

Each public function here is the fast twin of the reference function of the same name: it prepares
flat work lists in Python and hands them to private ``@njit(cache=True)`` kernels. Inputs arrive
validated by :mod:`pyquirk.kernels`, which imports this module (and so numba) lazily. Parallel
kernels (``parallel=True``, ``prange`` over blocks or chunks) serve the main pass of selection and
grid points on large inputs. Small inputs, mask application (one memory-bound stream, already at
NumPy's copy speed on one core) and the attack and filter kernels (light work next to the network
passes they sit between) run serial code: there a parallel launch costs more than it saves, and
every parallel kernel adds seconds of JIT compilation to a cold start.

Exactness against the twins: selection masks, mask application, L∞ projection, steps and starts,
and grid points equal the reference (the same IEEE operations in the same order, no fast-math, no
FMA contraction). L2 norms accumulate in float64 in four running sums where NumPy sums pairwise,
so the L2 kernels and filter normalization agree to rounding.

Magnitude selection is a radix select on the IEEE bits of |θ|: clearing the sign bit of a float
leaves an unsigned integer ("key") that orders exactly like its magnitude (±0 both map to 0,
subnormals sit below normals, +inf above every finite value, NaN above +inf). The top
``config.SELECT_RADIX_BITS`` key bits name a bin. θ is read through a uint32 view (the top word of
a float64 holds its top bits), so one compiled kernel serves both dtypes. Two paths, both exact:

- sampled (one pass): a histogram of a fixed 1/32 sample places the k-th key within a window of
  bins; one parallel pass writes the mask outside the window (below: pruned, above: kept), counts
  the entries below it and gathers the window's (index, key) pairs, block by block in index order;
- exact (two passes), when the scope is small or the k-th key falls outside the sampled window: a
  histogram finds the bin of the k-th key, then the same parallel pass with a one-bin window.

Either way the gathered candidates are refined serially, ``config.SELECT_REFINE_BITS`` lower key bits
at a time, until the remaining ones share a key: of those, the lowest indices are pruned first.
Non-finite entries are counted in the same passes and raise before a mask is returned. O(n) work,
no sort, no copy of |θ|.
"""
from __future__ import annotations

import sys

import numba
import numpy as np
from numba import njit, prange

from .. import config
from .reference_kernels import FILTER_NORM_EPS, L2_STEP_FLOOR

# Selection reads θ through a uint32 view, so one compiled kernel serves float32 and float64:
# an element is ``W`` words, the one at ``HI`` holding the sign, the exponent and the top mantissa
# bits (little-endian). Key widths: 31 bits (float32), 63 bits (float64).
_LITTLE = sys.byteorder == "little"
_LAYOUT = {np.dtype(np.float32): (1, 0, 31), np.dtype(np.float64): (2, 1 if _LITTLE else 0, 63)}
_TOP = np.uint64(0x7FFFFFFF)          # clears the sign bit of the top word


# ==================================================================================== selection
@njit(cache=True)
def _key(words, i, w, hi, lo):
    """The |θ_i| key: the IEEE bits without the sign, as an unsigned integer (31 or 63 bits)."""
    top = np.uint64(words[i * w + hi]) & _TOP
    if w == 1:
        return top
    return (top << np.uint64(32)) | np.uint64(words[i * w + lo])


# Passes over the scope: a parallel loop over blocks, each calling a serial loop over one range of
# θ (Numba optimises a plain @njit loop better than the body of a prange). The top key bits of
# entry i are ``(top word << 1) >> shift``: the shift left drops the sign bit. All of it is
# unsigned (uint32 values, uint64 indices), so no index needs a wrap-around check.
@njit(cache=True)
def _histogram_range(words, w, hi, a, b, shift, h):
    """Histogram of the top key bits of entries a..b."""
    one = np.uint32(1)
    for i in range(a, b):
        h[np.uint32(words[i * w + hi] << one) >> shift] += 1


@njit(cache=True)
def _sample_range(words, w, hi, a, b, shift, h, run, every):
    """Histogram of the top key bits of ``run`` entries in every ``run·every`` of a..b."""
    for s0 in range(a, b, run * every):
        _histogram_range(words, w, hi, s0, min(s0 + run, b), shift, h)


@njit(cache=True, parallel=True)
def _sample_pass(words, w, hi, starts, stops, bptr, shift, hist, run, every):
    """:func:`_sample_range` over every block, block j into ``hist[j]`` (blocks side by side)."""
    for j in prange(bptr.size - 1):
        for p in range(bptr[j], bptr[j + 1]):
            _sample_range(words, w, hi, starts[p], stops[p], shift, hist[j], run, every)


@njit(cache=True)
def _scan_chunk(top_words, lo_top, span, first_bad, mask, flags):
    """The vectorised half of a window pass over one chunk (``top_words``: each entry's top word).

    The window of bins [lo_bin, hi_bin] is the range of top keys (top word << 1, sign dropped)
    [lo_top, lo_top + span], the bins shifted up (so no entry's key is shifted down: Numba widens
    a uint32 shift to 64 bits, which halved the vector width): ``mask = key > lo_top + span``,
    ``flags = key in the window``; returns uint32 counts of the window, of the entries below it
    and of the non-finite entries (top word ≥ +inf's).
    """
    one = np.uint32(1)
    hi_top = np.uint32(lo_top + span)
    cb, cd, cnt = np.uint32(0), np.uint32(0), np.uint32(0)
    for i in range(top_words.size):
        top = np.uint32(top_words[i] << one)
        cb = np.uint32(cb + np.uint32(top < lo_top))
        cd = np.uint32(cd + np.uint32(top >= first_bad))
        f = np.uint32(top - lo_top) <= span             # unsigned: below lo_top wraps around
        flags[i] = f
        cnt = np.uint32(cnt + np.uint32(f))
        mask[i] = top > hi_top
    return cnt, cb, cd


@njit(cache=True)
def _window_range(words, w, hi, lo, a, b, lo_top, span, first_bad, cand, keys, c, cap, mask, flags):
    """mask = (top key > lo_top + span) over entries a..b; the entries whose top key lies in the
    window [lo_top, lo_top + span] are gathered: index to ``cand[c:cap]`` and full key to ``keys``
    (refinement then never goes back to θ, where the candidates are scattered).

    Returns the new ``c`` (it counts on past ``cap``; the caller checks), the number of entries
    below the window and the number of non-finite entries.
    """
    below, bad = 0, 0
    chunk = np.uint64(flags.size)
    fw = flags.view(np.uint64)
    for s0 in range(a, b, chunk):
        n = min(chunk, b - s0)
        args = (lo_top, span, first_bad, mask[s0:s0 + n], flags)
        if w == 1:                  # float32: contiguous, the loop vectorises
            cnt, cb, cd = _scan_chunk(words[s0:s0 + n], *args)
        else:                       # float64: every other word
            cnt, cb, cd = _scan_chunk(words[s0 * w + hi:(s0 + n) * w:w], *args)
        below += cb
        bad += cd
        if cnt:                     # gather, skipping 8 flags at a time
            for q in range((n + np.uint64(7)) // np.uint64(8)):
                if fw[q]:
                    for i in range(q * np.uint64(8), min(q * np.uint64(8) + np.uint64(8), n)):
                        if flags[i]:
                            if c < cap:
                                cand[c] = s0 + i
                                keys[c] = _key(words, s0 + i, w, hi, lo)
                            c += 1
    return c, below, bad


@njit(cache=True, parallel=True)
def _window_pass(words, w, hi, lo, starts, stops, bptr, lo_top, span, first_bad, offsets, caps,
                 cand, keys, mask, chunk):
    """:func:`_window_range` over every block; block j gathers into ``[offsets[j]:][:caps[j]]``.

    Returns ``[blocks, 3]``: candidates found, entries below the window, non-finite entries.
    """
    nb = bptr.size - 1
    counts = np.zeros((nb, 3), np.int64)
    for j in prange(nb):
        flags = np.zeros(chunk, np.bool_)
        c, cap = offsets[j], offsets[j] + caps[j]
        below, bad = 0, 0
        for p in range(bptr[j], bptr[j + 1]):
            c, bl, bd = _window_range(words, w, hi, lo, starts[p], stops[p], lo_top, span,
                                      first_bad, cand, keys, c, cap, mask, flags)
            below += bl
            bad += bd
        counts[j, 0], counts[j, 1], counts[j, 2] = c - offsets[j], below, bad
    return counts


@njit(cache=True)
def _refine(keys, cand, r, shift, bits, mask):
    """Prune the r smallest (key, index) among the candidates ``(keys, cand)``, given in index
    order and sharing their key bits above ``shift``; write the mask of every candidate."""
    m = cand.size
    while shift > 0 and m > 0:
        low = max(shift - bits, 0)
        nbins = 1 << (shift - low)
        hist = np.zeros(nbins, np.int64)
        sub = np.uint64(nbins - 1)
        s = np.uint64(low)
        for q in range(m):
            hist[(keys[q] >> s) & sub] += 1
        b, below = 0, 0
        while below + hist[b] < r:
            below += hist[b]
            b += 1
        r -= below
        n_in = 0
        for q in range(m):          # stable compaction of bin b; everything else is decided now
            kb = np.int64((keys[q] >> s) & sub)
            if kb == b:
                cand[n_in], keys[n_in] = cand[q], keys[q]
                n_in += 1
            else:
                mask[cand[q]] = kb > b
        m = n_in
        shift = low
    for q in range(m):              # equal keys: the r lowest indices are pruned
        mask[cand[q]] = q >= r


def _blocks(segments, n_blocks):
    """Cut the scope (segments in order) into ``n_blocks`` runs of near-equal size.

    Returns ``starts, stops`` (flat θ ranges, in index order), ``bptr`` (block j owns ranges
    ``bptr[j]:bptr[j+1]``) and the scope size.
    """
    cum = np.concatenate([[0], np.cumsum([s for _, s in segments])]).tolist()
    n = cum[-1]
    bounds = [n * j // n_blocks for j in range(n_blocks + 1)]
    starts, stops, bptr = [], [], [0]
    for j in range(n_blocks):
        a, b = bounds[j], bounds[j + 1]
        for (off, size), c0 in zip(segments, cum):
            lo, hi = max(a, c0), min(b, c0 + size)
            if lo < hi:
                starts.append(off + lo - c0)
                stops.append(off + hi - c0)
        bptr.append(len(starts))
    return (np.array(starts, dtype=np.uint64), np.array(stops, dtype=np.uint64),
            np.array(bptr, dtype=np.int64), n)


class _Scope:
    """A selection scope cut into blocks (one per thread), over θ seen as uint32 words."""

    def __init__(self, theta, segments):
        self.theta = theta
        self.w, self.hi, self.key_bits = _LAYOUT[theta.dtype]
        self.words = theta.view(np.uint32)
        n = sum(s for _, s in segments)
        self.n_blocks = max(1, min(numba.get_num_threads(), n // max(1, config.SELECT_MIN_BLOCK)))
        self.starts, self.stops, self.bptr, self.n = _blocks(segments, self.n_blocks)
        self.sizes = np.add.reduceat((self.stops - self.starts).astype(np.int64), self.bptr[:-1])
        # about as many bins as entries for a small scope (zeroing and scanning 2**bits bins would
        # dominate), config.SELECT_RADIX_BITS for a large one
        self.bits = max(1, min(int(config.SELECT_RADIX_BITS), 20, max(8, n.bit_length())))
        self.shift = np.uint32(32 - self.bits)
        self.first_bad = np.uint32(np.array([np.inf], theta.dtype).view(np.uint32)[self.hi] << 1)
        self.uw, self.uhi, self.ulo = np.uint64(self.w), np.uint64(self.hi), np.uint64(self.w - 1 - self.hi)
        self.chunk = 8 * max(1, int(config.SELECT_CHUNK) // 8)

    def ranges(self, j):
        lo, hi = self.bptr[j], self.bptr[j + 1]
        return zip(self.starts[lo:hi], self.stops[lo:hi])

    def histogram(self, run=1, every=1):
        """``[blocks, 2**bits]`` counts of the top key bits (of a fixed sample unless run = every = 1).

        The sample (1/32 of the scope) is read with the blocks side by side; the full histogram
        (the exact path: small scopes, k = 0 or n, or a window the sample placed wrongly) serially.
        """
        hist = np.zeros((self.n_blocks, 1 << self.bits), np.int64)
        if self.n_blocks > 1 and not run == every == 1:     # the sample's blocks side by side
            _sample_pass(self.words, self.uw, self.uhi, self.starts, self.stops, self.bptr, self.shift,
                         hist, np.uint64(run), np.uint64(every))
            return hist
        for j in range(self.n_blocks):
            for a, b in self.ranges(j):
                if run == every == 1:
                    _histogram_range(self.words, self.uw, self.uhi, a, b, self.shift, hist[j])
                else:
                    _sample_range(self.words, self.uw, self.uhi, a, b, self.shift, hist[j],
                                  np.uint64(run), np.uint64(every))
        return hist

    def window(self, lo_bin, hi_bin, caps, mask):
        """One pass: mask outside bins [lo_bin, hi_bin], gather inside -> (counts, candidates).

        ``counts``: per block, (candidates found, entries below the window, non-finite entries);
        ``candidates``: (keys, indices) in index order, or None when a block found more than its
        ``caps`` entry allows.
        """
        offsets = np.concatenate([[0], np.cumsum(caps)[:-1]]).astype(np.int64)
        cand = np.empty(int(np.sum(caps)), dtype=np.int64)
        keys = np.empty(cand.size, dtype=np.uint64)
        lo_top = lo_bin << int(self.shift)                          # the bins as top-key ranges
        span = ((hi_bin + 1) << int(self.shift)) - 1 - lo_top
        args = (np.uint32(lo_top), np.uint32(span), self.first_bad)
        word_args = (self.words, self.uw, self.uhi, self.ulo)
        if self.n_blocks == 1:      # serial: a parallel launch costs more than it saves here
            c, below, bad = 0, 0, 0
            flags = np.zeros(self.chunk, np.bool_)
            for a, b in self.ranges(0):
                c, bl, bd = _window_range(*word_args, a, b, *args, cand, keys, c, caps[0], mask, flags)
                below, bad = below + bl, bad + bd
            counts = np.array([[c, below, bad]], dtype=np.int64)
        else:
            counts = _window_pass(*word_args, self.starts, self.stops, self.bptr, *args, offsets,
                                  np.asarray(caps, dtype=np.int64), cand, keys, mask, self.chunk)
        if counts[:, 2].sum():
            raise ValueError("theta contains NaN or infinite values in the selection scope")
        if (counts[:, 0] > caps).any():
            return counts, None
        parts = [slice(o, o + c) for o, c in zip(offsets, counts[:, 0])]
        return counts, (np.concatenate([keys[p] for p in parts]), np.concatenate([cand[p] for p in parts]))

    def refine(self, found, r, shift, mask):
        keys, cand = found
        bits = max(1, min(int(config.SELECT_REFINE_BITS), 20, max(4, cand.size.bit_length())))
        _refine(keys, cand, r, shift, bits, mask)

    def count_non_finite(self, total):
        """Non-finite entries: the bins from +inf's up when +inf's pattern has no bits below the
        shift (then those bins hold exactly ±inf and NaN); otherwise an extra check."""
        inf_bin = int(self.first_bad) >> int(self.shift)
        if inf_bin << int(self.shift) == int(self.first_bad):
            return int(total[inf_bin:].sum())
        return sum(int((~np.isfinite(self.theta[a:b])).sum()) for a, b in zip(self.starts, self.stops))


def _select_exact(sc, k, mask):
    """Two passes: a histogram of the top bits finds the k-th's bin b; then mask around b, gather b."""
    hist = sc.histogram()
    total = hist.sum(axis=0)
    if sc.count_non_finite(total):
        raise ValueError("theta contains NaN or infinite values in the selection scope")
    if k == 0 or k == sc.n:          # nothing or everything pruned: no bin to split
        for a, b in zip(sc.starts.tolist(), sc.stops.tolist()):
            mask[a:b] = k == 0
        return
    cum = np.cumsum(total)
    b = int(np.searchsorted(cum, k))          # first bin whose cumulative count reaches k
    r = k - (int(cum[b - 1]) if b else 0)     # still to prune inside bin b: 1..count(b)
    _, cand = sc.window(b, b, hist[:, b], mask)
    sc.refine(cand, r, sc.key_bits - sc.bits, mask)


def _select_sampled(sc, k, mask) -> bool:
    """One pass over a window of bins that a fixed sample says holds the k-th; False if it does not.

    The sample (``config.SELECT_SAMPLE_RUN`` entries of every ``RUN·SAMPLE_EVERY``, m in all) puts
    the k-th smallest key near sample rank ``q·m`` (q = k/n); the bins spanning the ranks
    ``q·m ± SELECT_SAMPLE_MARGIN·(sqrt(m·q·(1−q)) + 1)`` form the window. One pass masks everything
    outside the window and gathers its entries, which are refined as in the exact path. The result
    is exact whatever the sample: when the k-th is not in the window, or a block gathers more than
    its buffer holds, the caller runs the two exact passes instead.
    """
    run, every = max(1, int(config.SELECT_SAMPLE_RUN)), max(1, int(config.SELECT_SAMPLE_EVERY))
    hist = sc.histogram(run, every)
    m_j = hist.sum(axis=1)
    m, q = int(m_j.sum()), k / sc.n
    delta = float(config.SELECT_SAMPLE_MARGIN) * (np.sqrt(m * q * (1 - q)) + 1)
    cum = np.cumsum(hist.sum(axis=0))
    lo_rank, hi_rank = int(np.floor(q * m - delta)), int(np.ceil(q * m + delta))
    lo_bin = 0 if lo_rank < 0 else int(np.searchsorted(cum, lo_rank, side="right"))
    hi_bin = (1 << sc.bits) - 1 if hi_rank >= m else int(np.searchsorted(cum, hi_rank, side="right"))
    expect = hist[:, lo_bin:hi_bin + 1].sum(axis=1) * sc.sizes / np.maximum(m_j, 1)
    caps = np.minimum(sc.sizes, np.ceil(1.5 * expect).astype(np.int64) + 1024)
    counts, cand = sc.window(lo_bin, hi_bin, caps, mask)
    below = int(counts[:, 1].sum())
    if cand is None or not below < k <= below + cand[1].size:
        return False
    sc.refine(cand, k - below, sc.key_bits, mask)
    return True


def _select_into(theta, k, segments, mask) -> str:
    """Write the keep mask of the scope ``segments`` (prune exactly k) into ``mask``.

    Returns the path taken: ``"sampled"`` (one pass) or ``"exact"`` (two passes).
    """
    sc = _Scope(theta, segments)
    if (0 < k < sc.n and sc.n >= config.SELECT_SAMPLE_MIN and config.SELECT_SAMPLE_EVERY > 0
            and _select_sampled(sc, k, mask)):
        return "sampled"
    _select_exact(sc, k, mask)
    return "exact"


def _fill_gaps(P, segments):
    """A mask ``[P]`` with True outside the segments (inside left for the kernels to write)."""
    mask = np.empty(P, dtype=bool)
    prev = 0
    for off, size in segments:
        mask[prev:off] = True
        prev = off + size
    mask[prev:] = True
    return mask


def magnitude_select(theta, k, segments):
    """Twin of :func:`pyquirk.backends.reference_kernels.magnitude_select` (parallel radix select)."""
    mask = _fill_gaps(theta.shape[0], segments)
    _select_into(theta, k, segments, mask)
    return mask


def per_segment_select(theta, ks, segments):
    """Twin of :func:`pyquirk.backends.reference_kernels.per_segment_select`."""
    mask = _fill_gaps(theta.shape[0], segments)
    for k, seg in zip(ks, segments):
        _select_into(theta, k, [seg], mask)
    return mask


# ==================================================================================== masks
def _chunk(n):
    """Chunk length for element-wise kernels over rows of length n."""
    return max(1, min(n, int(config.ELEMENTWISE_CHUNK)))


def _parallel(n_elements):
    """Whether an element-wise kernel of this size is worth a parallel launch."""
    return n_elements >= config.PARALLEL_MIN_SIZE and numba.get_num_threads() > 1


# Element-wise kernels loop over 1-D slices from index 0 (a loop that starts elsewhere keeps
# Numba's negative-index checks, which stop LLVM from vectorising it).
@njit(cache=True)
def _mask_run(src, keep, dst, inplace):
    """``dst = src & (0 − keep)``: the element's bits where kept, all-zero bits (+0) where pruned."""
    zero = src.dtype.type(0)
    if inplace:                     # one array: no aliasing check, so the loop vectorises
        for j in range(dst.size):
            dst[j] &= zero - dst.dtype.type(keep[j])
    else:
        for j in range(dst.size):
            dst[j] = src[j] & (zero - src.dtype.type(keep[j]))


_UINT = {np.dtype(np.float32): np.uint32, np.dtype(np.float64): np.uint64}


def apply_mask(theta, mask, out):
    """Twin of :func:`pyquirk.backends.reference_kernels.apply_mask`, on the bits of θ.

    +0.0 is the all-zero bit pattern, so ``bits & (0 − keep)`` is exactly θ-where-kept, +0-elsewhere.
    """
    src, dst = theta.view(_UINT[theta.dtype]), out.view(_UINT[theta.dtype])
    keep = mask.view(np.uint8)
    inplace = bool(np.shares_memory(theta, out))
    if inplace and not (theta.ctypes.data == out.ctypes.data and theta.strides == out.strides):
        src = src.copy()            # partial overlap: read from a copy
        inplace = False
    for e in range(src.shape[0]):   # serial: one memory-bound stream, near NumPy's copy speed
        _mask_run(src[e], keep[e if keep.shape[0] > 1 else 0], dst[e], inplace)
    return out


# ==================================================================================== attacks
@njit(cache=True)
def _sq_norm(a):
    """Σ a[i]² of a row in float64, with four running sums (a single sum waits on every add)."""
    s0, s1, s2, s3 = 0.0, 0.0, 0.0, 0.0
    n4 = a.size // 4 * 4
    for i in range(0, n4, 4):
        v0, v1, v2, v3 = np.float64(a[i]), np.float64(a[i + 1]), np.float64(a[i + 2]), np.float64(a[i + 3])
        s0, s1, s2, s3 = s0 + v0 * v0, s1 + v1 * v1, s2 + v2 * v2, s3 + v3 * v3
    for i in range(n4, a.size):
        v = np.float64(a[i])
        s0 += v * v
    return (s0 + s1) + (s2 + s3)


@njit(cache=True)
def _project(x, x0, eps, lo, hi, l2):
    M, D = x.shape
    N = x0.shape[0]
    out = np.empty_like(x)
    for m in range(M):
        xm, cm, om = x[m], x0[m % N], out[m]
        if l2:
            for i in range(D):
                om[i] = xm[i] - cm[i]                    # δ, in the dtype
            nrm = np.sqrt(_sq_norm(om))
            s = x.dtype.type(1.0 if nrm <= eps[m] else eps[m] / nrm)
            for i in range(D):
                om[i] = min(max(cm[i] + om[i] * s, lo), hi)
        else:
            e = x.dtype.type(eps[m])
            for i in range(D):
                om[i] = min(max(cm[i] + min(max(xm[i] - cm[i], -e), e), lo), hi)
    return out


def project_linf(x, x0, eps, lo, hi):
    """Twin of :func:`pyquirk.backends.reference_kernels.project_linf`."""
    return _project(x, x0, eps, x.dtype.type(lo), x.dtype.type(hi), False)


def project_l2(x, x0, eps, lo, hi):
    """Twin of :func:`pyquirk.backends.reference_kernels.project_l2`."""
    return _project(x, x0, eps, x.dtype.type(lo), x.dtype.type(hi), True)


@njit(cache=True)
def _steepest_step(x, g, alpha, l2, floor):
    M, D = x.shape
    out = np.empty_like(x)
    one, zero = x.dtype.type(1), x.dtype.type(0)
    for m in range(M):
        xm, gm, om = x[m], g[m], out[m]
        if l2:
            s = x.dtype.type(alpha[m] / max(np.sqrt(_sq_norm(gm)), floor))
            for i in range(D):
                om[i] = xm[i] + gm[i] * s
        else:
            a = x.dtype.type(alpha[m])
            for i in range(D):
                om[i] = xm[i] + a * (one if gm[i] > 0 else (-one if gm[i] < 0 else zero))
    return out


def steepest_step(x, g, alpha, norm):
    """Twin of :func:`pyquirk.backends.reference_kernels.steepest_step`."""
    return _steepest_step(x, g, alpha, norm == "l2", L2_STEP_FLOOR)


@njit(cache=True)
def _random_start(x0, eps, noise, radial, lo, hi, l2):
    M, D = noise.shape
    N = x0.shape[0]
    out = np.empty((M, D), x0.dtype)
    for m in range(M):
        zm, cm, om = noise[m], x0[m % N], out[m]
        if l2:
            nrm = np.sqrt(_sq_norm(zm))
            f = eps[m] * radial[m] ** (1.0 / D) / (nrm if nrm > 0 else 1.0)
        else:
            f = eps[m]
        for i in range(D):
            om[i] = min(max(cm[i] + x0.dtype.type(zm[i] * f), lo), hi)
    return out


def random_start(x0, eps, norm, noise, radial, lo, hi):
    """Twin of :func:`pyquirk.backends.reference_kernels.random_start`."""
    dt = x0.dtype.type
    return _random_start(x0, eps, noise, radial, dt(lo), dt(hi), norm == "l2")


# ==================================================================================== landscape
@njit(cache=True)
def _grid_run(theta, d1, d2, a, b, out):
    for i in range(out.size):
        out[i] = (theta[i] + a * d1[i]) + b * d2[i]


@njit(cache=True, parallel=True)
def _grid_points(theta, d1, d2, alphas, betas, out, chunk):
    T, P = out.shape
    n_chunks = (P + chunk - 1) // chunk
    for w in prange(T * n_chunks):
        t, c = w // n_chunks, w % n_chunks
        i0, i1 = c * chunk, min(P, (c + 1) * chunk)
        _grid_run(theta[i0:i1], d1[i0:i1], d2[i0:i1], alphas[t], betas[t], out[t, i0:i1])


def grid_points(theta, d1, d2, alphas, betas, out):
    """Twin of :func:`pyquirk.backends.reference_kernels.grid_points`."""
    dt = theta.dtype
    a, b = alphas.astype(dt), betas.astype(dt)
    T, P = out.shape
    if _parallel(out.size):
        _grid_points(theta, d1, d2, a, b, out, _chunk(P))
    else:
        for t in range(T):
            _grid_run(theta, d1, d2, a[t], b[t], out[t])
    return out


@njit(cache=True)
def _filter_normalize(direction, theta, starts, lengths, zero, eps):
    """Per group g = (start, length) of every row e: ``d · (‖θ_g‖ / (‖d_g‖ + eps))``, or zero."""
    E, G = direction.shape[0], starts.size
    out = np.zeros_like(direction)
    for w in range(E * G):
        e, g = w // G, w % G
        if not zero[g]:
            a, b = starts[g], starts[g] + lengths[g]
            d, o = direction[e, a:b], out[e, a:b]
            t = theta[e if theta.shape[0] > 1 else 0, a:b]
            s = direction.dtype.type(np.sqrt(_sq_norm(t)) / (np.sqrt(_sq_norm(d)) + eps))
            for i in range(d.size):
                o[i] = d[i] * s
    return out


def _filter_groups(net, keep_biases):
    """Flat groups (start, length, zero?) from ``net.layout``: one per filter, one per 1-D vector."""
    starts, lengths, zero = [], [], []
    for spec in net.layout:
        rows = spec.shape[0] if len(spec.shape) >= 2 else 1
        width = spec.size // rows
        starts.extend(range(spec.offset, spec.offset + spec.size, width))
        lengths.extend([width] * rows)
        zero.extend([len(spec.shape) <= 1 and not keep_biases] * rows)
    return (np.array(starts, dtype=np.int64), np.array(lengths, dtype=np.int64),
            np.array(zero, dtype=np.bool_))


def filter_normalize(direction, theta, net, keep_biases):
    """Twin of :func:`pyquirk.backends.reference_kernels.filter_normalize`."""
    starts, lengths, zero = _filter_groups(net, keep_biases)
    return _filter_normalize(direction, theta, starts, lengths, zero, FILTER_NORM_EPS)
