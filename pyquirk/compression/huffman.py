"""Huffman coding and the Deep Compression size accounting (Han, Mao & Dally 2016).

Storage model (docs/compression.md states it with the same symbols). For each weight tensor with
n entries, m of them kept (row-major positions p_1 < … < p_m):

- **dense float32** (the reference): ``32·n`` bits for every parameter tensor.
- **pruned** (relative indexing): a tensor with pruned entries stores one entry per kept weight:
  a 32-bit value and the gap ``g_i = p_i − p_{i−1}`` (``p_0 = −1``) in ``b`` index bits (Han: 5 for
  Dense, 8 for Conv), coded as ``g − 1 ∈ [0, 2^b − 1]``. A gap larger than ``G = 2^b`` is bridged by
  ``⌈g/G⌉ − 1`` filler entries (gap G, value zero). A tensor with nothing pruned stores its n
  values without indices.
- **quantized** (weight sharing): the value of an entry becomes a cluster index of
  ``⌈log2(K + f)⌉`` bits (K centroids, ``f = 1`` when fillers need a "zero" symbol), plus the
  codebook, ``32·K`` bits.
- **Huffman**: the cluster-index stream and the gap stream of each tensor get their own Huffman
  codes; their size is ``Σ count(s)·len(s)``, plus each code's table (``TABLE_BITS`` per alphabet
  symbol, a canonical code being defined by its lengths) and the codebook.

Parameters outside the weight tensors (biases) stay dense float32 at every stage. The ratios are
each stage against the one before; ``total`` is dense float32 over the last stage.
"""
from __future__ import annotations

import math

import numpy as np

from ._twins import twins
from .results import SizeReport

#: bits per alphabet symbol of a stored code table (a canonical code is given by its code lengths)
TABLE_BITS = 6
#: default relative-index bits per layer type (Han et al. 2016: 8 for conv layers, 5 for fc layers)
INDEX_BITS = {"dense": 5, "conv": 8}


# ======================================================================================== the code
def huffman_lengths(counts, *, backend: str | None = None) -> np.ndarray:
    """Huffman code lengths for symbol counts.

    Tie rule (both twins): leaves ordered by (count, symbol); equal weights merge leaf-first, then
    older internal nodes first. Unused symbols get length 0; one used symbol gets length 1.

    Args:
        counts: ``[S]`` non-negative integers.

    Returns:
        ``[S]`` int64 lengths. Twins: :func:`._reference.huffman_lengths` (heapq) and
        :func:`._numba.huffman_lengths` (two queues).
    """
    c = np.asarray(counts)
    if c.ndim != 1 or c.size == 0:
        raise ValueError(f"counts must be a non-empty 1-D array, got shape {c.shape}")
    if c.dtype.kind not in "iu":
        raise TypeError(f"counts must be integers, got dtype {c.dtype}")
    if (c < 0).any():
        raise ValueError("counts must be non-negative")
    return twins(backend).huffman_lengths(c.astype(np.int64))


def canonical_codes(lengths) -> np.ndarray:
    """Canonical Huffman codes (uint64) for code lengths: symbols in (length, symbol) order get
    consecutive codes, shifted left when the length grows. Unused symbols (length 0) get 0."""
    lengths = np.asarray(lengths, dtype=np.int64)
    if lengths.max(initial=0) > 63:
        raise ValueError("code lengths above 63 bits are not supported")
    codes = np.zeros(lengths.shape[0], dtype=np.uint64)
    code, prev = 0, 0
    for s in sorted(np.flatnonzero(lengths > 0), key=lambda s: (lengths[s], s)):
        code <<= int(lengths[s]) - prev
        codes[s], prev = code, int(lengths[s])
        code += 1
    return codes


def encode(symbols, lengths) -> tuple[np.ndarray, int]:
    """Encode a symbol stream with the canonical code of ``lengths``, MSB first.

    Returns:
        (bytes ``[ceil(n_bits/8)]`` uint8, zero-padded at the end; ``n_bits``).
    """
    symbols = np.asarray(symbols, dtype=np.int64)
    lengths = np.asarray(lengths, dtype=np.int64)
    if symbols.size and (lengths[symbols] == 0).any():
        raise ValueError("a symbol to encode has no code (length 0)")
    codes = canonical_codes(lengths)
    L, C = lengths[symbols], codes[symbols]
    if symbols.size == 0:
        return np.zeros(0, np.uint8), 0
    width = int(L.max())
    j = np.arange(width)
    shift = (L[:, None] - 1 - j[None, :]).clip(0).astype(np.uint64)
    bits = ((C[:, None] >> shift) & np.uint64(1)).astype(np.uint8)
    stream = bits[j[None, :] < L[:, None]]                    # row-major: symbol by symbol
    return np.packbits(stream), int(L.sum())


def decode(buf, n_bits: int, lengths) -> np.ndarray:
    """Inverse of :func:`encode` (bit by bit; meant for checks, not speed)."""
    lengths = np.asarray(lengths, dtype=np.int64)
    codes = canonical_codes(lengths)
    table = {(int(lengths[s]), int(codes[s])): s for s in np.flatnonzero(lengths > 0)}
    bits = np.unpackbits(np.asarray(buf, dtype=np.uint8))[:n_bits]
    out, code, length = [], 0, 0
    for b in bits:
        code, length = (code << 1) | int(b), length + 1
        s = table.get((length, code))
        if s is not None:
            out.append(s)
            code, length = 0, 0
    if length:
        raise ValueError("the bit stream ends inside a code word")
    return np.asarray(out, dtype=np.int64)


def is_prefix_free(lengths) -> bool:
    """True when no code word of the canonical code of ``lengths`` is a prefix of another."""
    lengths = np.asarray(lengths, dtype=np.int64)
    codes = canonical_codes(lengths)
    used = [(int(lengths[s]), int(codes[s])) for s in np.flatnonzero(lengths > 0)]
    for la, ca in used:
        for lb, cb in used:
            if (la, ca) != (lb, cb) and la <= lb and (cb >> (lb - la)) == ca:
                return False
    return True


def coded_bits(symbols, n_symbols: int, *, backend: str | None = None) -> tuple[int, np.ndarray]:
    """(Σ count·length, lengths) of the Huffman code of a symbol stream over ``n_symbols`` symbols."""
    counts = np.bincount(np.asarray(symbols, dtype=np.int64), minlength=n_symbols)
    if counts.sum() == 0:
        return 0, np.zeros(n_symbols, np.int64)
    lengths = huffman_lengths(counts, backend=backend)
    return int((counts * lengths).sum()), lengths


# ================================================================================ size accounting
def _layer_kind(net, spec) -> str:
    return "conv" if type(net.layers[spec.layer]).__name__.startswith("Conv") else "dense"


def relative_index(positions, index_bits: int) -> tuple[np.ndarray, np.ndarray]:
    """Relative indexing of sorted positions with fixed-width gaps and filler zeros.

    Args:
        positions: ``[m]`` ascending flat positions of the kept entries.
        index_bits: b; gaps up to ``G = 2**b`` fit in one entry.

    Returns:
        (gap codes ``[e]`` in ``[0, G−1]`` (gap − 1), is_filler ``[e]`` bool), entries in storage order.
    """
    G = 1 << int(index_bits)
    gaps = np.diff(np.concatenate([[-1], np.asarray(positions, dtype=np.int64)]))
    fill = (gaps - 1) // G                                   # ⌈g/G⌉ − 1 fillers before each entry
    per = fill + 1
    e = int(per.sum())
    codes = np.full(e, G - 1, dtype=np.int64)                # fillers: gap G
    filler = np.ones(e, dtype=bool)
    last = np.cumsum(per) - 1                                # the real entry closes each group
    codes[last] = gaps - G * fill - 1
    filler[last] = False
    return codes, filler


def layer_streams(net, mask, shared=None, *, index_bits: dict | int | None = None) -> dict:
    """The symbol streams of each weight tensor in the storage model (what the size counts).

    Returns:
        ``{name: {"sparse", "size", "nonzero", "index_bits", "gaps" [e] or None,
        "filler" [e] or None, "values" [e] cluster symbols (K = filler) or None, "K"}}``.
    """
    mask = np.asarray(mask, dtype=bool)
    if mask.shape != (net.n_params,):
        raise ValueError(f"mask must have shape [P={net.n_params}], got {mask.shape}")
    out = {}
    names = [] if shared is None else list(shared.names)
    for s in (s for s in net.layout if s.kind == "weight"):
        kind = _layer_kind(net, s)
        b = index_bits if isinstance(index_bits, int) else (index_bits or INDEX_BITS).get(kind, INDEX_BITS[kind])
        m = mask[s.slice]
        nz = int(m.sum())
        sparse = nz < s.size
        pos = np.flatnonzero(m)
        gaps, filler = relative_index(pos, b) if sparse else (None, None)
        info = {"sparse": sparse, "size": s.size, "nonzero": nz, "index_bits": int(b), "gaps": gaps,
                "filler": filler, "values": None, "K": 0}
        if s.name in names:
            li = names.index(s.name)
            lo, hi = int(shared.offsets[li]), int(shared.offsets[li + 1])
            sel = (shared.index >= s.offset) & (shared.index < s.offset + s.size)
            local = shared.cluster[sel] - lo                        # shared.index is ascending
            K = hi - lo
            if sparse:
                vals = np.full(filler.shape[0], K, dtype=np.int64)
                vals[~filler] = local
            else:
                vals = local
            info.update(values=vals, K=K)
        out[s.name] = info
    return out


def size_report(net, mask, shared=None, *, index_bits: dict | int | None = None, value_bits: int = 32,
                backend: str | None = None) -> SizeReport:
    """Bits at each Deep Compression stage and the compression ratios (see the module docstring).

    Args:
        net: the :class:`pyquirk.nn.Net`.
        mask: ``[P]`` bool, True = kept.
        shared: a :class:`SharedWeights` from :func:`pyquirk.compression.share_weights` (its mask
            must equal ``mask``), or None for the pruning stage alone.
        index_bits: relative-index bits, an int or ``{"dense": 5, "conv": 8}`` (the default).
        value_bits: bits of an unquantized value (32, float32).

    Returns:
        :class:`SizeReport`.
    """
    if shared is not None and not np.array_equal(np.asarray(shared.mask), np.asarray(mask)):
        raise ValueError("shared.mask differs from mask: size the weight sharing of this very mask")
    streams = layer_streams(net, mask, shared, index_bits=index_bits)
    weight_sizes = sum(v["size"] for v in streams.values())
    other = value_bits * (net.n_params - weight_sizes)
    stages = ["dense", "pruned"] + (["quantized", "huffman"] if shared is not None else [])
    parts = {st: {"values": 0, "index": 0, "codebook": 0, "tables": 0, "other": other} for st in stages}
    layers = {}
    for name, v in streams.items():
        e = v["gaps"].shape[0] if v["sparse"] else v["size"]
        b = v["index_bits"] if v["sparse"] else 0
        row = {"size": v["size"], "nonzero": v["nonzero"], "entries": e,
               "fillers": int(v["filler"].sum()) if v["sparse"] else 0, "index_bits": b}
        add = {"dense": {"values": value_bits * v["size"]},
               "pruned": {"values": value_bits * e, "index": b * e}}
        if shared is not None:
            if v["values"] is None:        # not shared: stored as in the pruned stage
                add["quantized"] = add["huffman"] = add["pruned"]
            else:
                K, f = v["K"], int(row["fillers"] > 0)
                bw = max(1, math.ceil(math.log2(K + f)))
                add["quantized"] = {"values": bw * e, "index": b * e, "codebook": value_bits * K}
                vbits, _ = coded_bits(v["values"], K + f, backend=backend)
                hb = {"values": vbits, "codebook": value_bits * K, "tables": TABLE_BITS * (K + f)}
                if v["sparse"]:
                    gbits, _ = coded_bits(v["gaps"], 1 << b, backend=backend)
                    hb.update(index=gbits, tables=hb["tables"] + TABLE_BITS * (1 << b))
                add["huffman"] = hb
        for st in stages:
            row[st] = int(sum(add[st].values()))
            for k, bits in add[st].items():
                parts[st][k] += int(bits)
        layers[name] = row
    totals = {st: int(sum(parts[st].values())) for st in stages}
    names = {"pruned": "pruning", "quantized": "quantization", "huffman": "huffman"}
    ratios = {names[b]: totals[a] / totals[b] for a, b in zip(stages, stages[1:])}
    ratios["total"] = totals["dense"] / totals[stages[-1]]
    return SizeReport(stages=totals, ratios=ratios, layers=layers, parts=parts,
                      semantics={"index_bits": index_bits or INDEX_BITS, "value_bits": value_bits,
                                 "table_bits_per_symbol": TABLE_BITS,
                                 "relative_index": "gap−1 in b bits; gaps > 2^b bridged by filler zeros",
                                 "huffman": "one code per tensor for cluster indices, one for gaps",
                                 "biases": "dense float32 at every stage"})


__all__ = ["TABLE_BITS", "INDEX_BITS", "huffman_lengths", "canonical_codes", "encode", "decode",
           "is_prefix_free", "coded_bits", "relative_index", "layer_streams", "size_report"]
