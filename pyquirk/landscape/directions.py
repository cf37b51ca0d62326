"""Directions in parameter space, and the planes they span (DESIGN §4, "Landscape").

- :func:`random_direction`: a Gaussian draw ``N(0, I_P)`` from the ``probes`` RNG stream
  (``stream("probes", seed, index)``: direction ``index`` 0 is d₁, 1 is d₂), then normalised.
- Normalisations (:func:`normalize_direction`), all with the 1e-10 of Li et al.'s code:

  - ``"filter"`` (Li et al. 2018): per output unit / output channel f of each weight (its dim 0),
    ``d_f ← d_f · ‖θ_f‖ / (‖d_f‖ + 1e-10)`` (:func:`pyquirk.kernels.filter_normalize`);
  - ``"layer"``: per parameter tensor w, ``d_w ← d_w · ‖θ_w‖ / (‖d_w‖ + 1e-10)``;
  - ``"none"``: the raw draw.

  With ``"filter"`` and ``"layer"``, 1-D parameters (biases) get a zero direction ("ignore biasbn"),
  or with ``keep_biases=True`` each bias vector is normalised once, as a whole.
- :func:`orthogonalize`: Gram–Schmidt of d₂ against d₁ *within each normalisation group* (filter,
  tensor, or the whole vector), each group of d₂ then rescaled to its previous norm: d₂ stays
  normalised and becomes exactly orthogonal to d₁. The cosine before is reported.
- :func:`pca_plane`: PCA of ``M = [θ_t − θ_final]`` by ``numpy.linalg.svd`` (uncentred by default).
- :func:`solutions_plane`: d₁ = θ₂ − θ₁ (origin θ₁).
- :func:`hessian_plane`: the top eigenvectors of the Hessian, from :mod:`pyquirk.hessian`.
"""
from __future__ import annotations

import numpy as np

from .. import kernels
from .._validate import as_float_array, check_choice
from ..seeds import Seeds, stream
from .results import Plane, check_direction

NORMS = ("filter", "layer", "none")
#: added to ‖d‖ in every normalisation (Li et al.'s code)
EPS = kernels.FILTER_NORM_EPS
#: RNG stream of every random draw in this package (DESIGN §4: probes); keys below are sub-streams
STREAM = "probes"
DIRECTION_KEYS = (0, 1)   # stream("probes", seed, 0) -> d1, (…, 1) -> d2
SUBSET_KEY = 2            # stream("probes", seed, 2) -> the stated evaluation subset


def probes_rng(seed, key: int) -> np.random.Generator:
    """The ``probes`` sub-stream ``key`` for an int seed or a :class:`~pyquirk.seeds.Seeds`."""
    if isinstance(seed, Seeds):
        seed = seed.probes
    return stream(STREAM, seed, key)


def seed_value(seed) -> int:
    return int(seed.probes) if isinstance(seed, Seeds) else int(seed)


def _theta(net, theta) -> np.ndarray:
    theta = as_float_array(theta, "theta", ndim=1)
    net._check_p(theta.shape, "theta")
    return theta


# ------------------------------------------------------------------------------- normalisation
def _groups(net, norm: str, keep_biases: bool):
    """Normalisation groups: ``(slice, rows, zero)`` per parameter tensor; rows of a tensor are
    its filters (``"filter"``) or the whole tensor (``"layer"``); ``zero``: a dropped bias."""
    if norm == "none":
        return [(slice(0, net.n_params), 1, False)]
    out = []
    for s in net.layout:
        is_bias = len(s.shape) <= 1
        rows = s.shape[0] if (norm == "filter" and not is_bias) else 1
        out.append((s.slice, rows, is_bias and not keep_biases))
    return out


def layer_normalize(direction, theta, net, keep_biases: bool = False) -> np.ndarray:
    """Per-tensor ("layer") normalisation: ``d_w · ‖θ_w‖ / (‖d_w‖ + 1e-10)`` for each weight tensor.

    Biases: zero, or with ``keep_biases`` normalised as a whole vector in the same way. Norms are
    float64; the factor is rounded to the dtype before the multiply (as in the filter kernel).

    Args:
        direction, theta: ``[P]``.
    Returns:
        a new ``[P]`` array in the direction's dtype.
    """
    d = check_direction(direction, "direction", net.n_params)
    t = _theta(net, theta).astype(d.dtype, copy=False)
    out = d.copy()
    for sl, _, zero in _groups(net, "layer", keep_biases):
        if zero:
            out[sl] = 0
            continue
        scale = np.linalg.norm(t[sl].astype(np.float64)) / (np.linalg.norm(d[sl].astype(np.float64)) + EPS)
        out[sl] = d[sl] * d.dtype.type(scale)
    return out


def normalize_direction(direction, theta, net, norm: str = "filter", keep_biases: bool = False, *,
                        name: str = "direction", backend: str | None = None) -> np.ndarray:
    """Normalise a direction against θ: ``"filter"``, ``"layer"`` or ``"none"`` (see module doc).

    Raises:
        ValueError: wrong length, non-finite or zero direction; a direction that normalisation
            leaves zero (θ zero in every group), naming ``name``.
    """
    norm = check_choice(norm, NORMS, "norm")
    d = check_direction(direction, name, net.n_params)
    t = _theta(net, theta).astype(d.dtype, copy=False)
    if norm == "filter":
        out = kernels.filter_normalize(d, t, net, keep_biases=keep_biases, backend=backend)
    elif norm == "layer":
        out = layer_normalize(d, t, net, keep_biases=keep_biases)
    else:
        out = d.copy()
    if not np.any(out):
        raise ValueError(f"{name} is zero after {norm} normalisation: θ is zero on every "
                         f"{'filter' if norm == 'filter' else 'tensor'} it covers"
                         f"{'' if keep_biases else ' (biases are dropped; keep_biases=True keeps them)'}")
    return out


def random_direction(net, theta, seed=0, *, index: int = 0, norm: str = "filter",
                     keep_biases: bool = False, backend: str | None = None) -> np.ndarray:
    """A Gaussian direction ``N(0, I_P)`` drawn from ``stream("probes", seed, index)``, normalised.

    The draw is float64, then rounded to θ's dtype, then normalised.

    Args:
        net: a :class:`pyquirk.nn.Net`; theta: ``[P]``.
        seed: int or :class:`~pyquirk.seeds.Seeds` (its ``probes`` seed).
        index: sub-stream; :func:`random_plane` uses 0 for d₁ and 1 for d₂.
    Returns:
        ``[P]`` in θ's dtype.
    """
    theta = _theta(net, theta)
    raw = probes_rng(seed, int(index)).standard_normal(net.n_params).astype(theta.dtype)
    return normalize_direction(raw, theta, net, norm, keep_biases, name=f"direction {index}",
                               backend=backend)


def orthogonalize(d1, d2, net=None, norm: str = "none", keep_biases: bool = False):
    """d₂ made orthogonal to d₁ group by group, each group keeping its norm.

    For each normalisation group g (a filter for ``"filter"``, a tensor for ``"layer"``, the whole
    vector for ``"none"``; ``net`` is needed unless ``"none"``):
    ``d₂_g ← d₂_g − (d₁_g·d₂_g / ‖d₁_g‖²)·d₁_g``, then rescaled to the old ‖d₂_g‖ (float64, then
    rounded). Each group is orthogonal, so the whole vectors are; filter/layer norms are kept.

    Returns:
        ``(d2_orthogonal [P], cosine_before)``; cos(d₁, d₂ before) in float64.

    Raises:
        ValueError: d₂ is parallel to d₁ on a group where it is non-zero.
    """
    norm = check_choice(norm, NORMS, "norm")
    if norm != "none" and net is None:
        raise ValueError(f"orthogonalize(norm={norm!r}) needs net for the groups")
    a = as_float_array(d1, "d1", ndim=1)
    P = a.shape[0]
    a = check_direction(a, "d1", P)
    b = check_direction(d2, "d2", P, a.dtype)
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    cos = float(a64 @ b64 / (np.linalg.norm(a64) * np.linalg.norm(b64)))
    out = b64.copy()
    groups = [(slice(0, P), 1, False)] if net is None else _groups(net, norm, True)
    for sl, rows, _ in groups:
        A, B = a64[sl].reshape(rows, -1), out[sl].reshape(rows, -1)
        na2, nb = np.einsum("ij,ij->i", A, A), np.linalg.norm(B, axis=1)
        live = (na2 > 0) & (nb > 0)
        coef = np.divide(np.einsum("ij,ij->i", A, B), na2, out=np.zeros_like(na2), where=live)
        B = B - coef[:, None] * A
        nb_new = np.linalg.norm(B, axis=1)
        if np.any(live & (nb_new <= 1e-12 * nb)):
            raise ValueError("d2 is parallel to d1 (on at least one normalisation group); "
                             "cannot orthogonalize")
        scale = np.divide(nb, nb_new, out=np.ones_like(nb), where=live)
        out[sl] = (B * scale[:, None]).reshape(-1)
    return out.astype(a.dtype), cos


# ------------------------------------------------------------------------------- planes
def random_plane(net, theta, seed=0, *, norm: str = "filter", keep_biases: bool = False,
                 orthogonal: bool = False, backend: str | None = None) -> Plane:
    """The plane through θ spanned by two random normalised directions (Li et al. 2018).

    Args:
        net: a :class:`pyquirk.nn.Net`; theta: ``[P]``, the origin (e.g. a solution).
        seed: ``probes`` seed (int or Seeds); d₁ from sub-stream 0, d₂ from sub-stream 1.
        norm: ``"filter"`` (default), ``"layer"`` or ``"none"``.
        keep_biases: keep (normalised) bias directions instead of zero.
        orthogonal: orthogonalize d₂ against d₁ group-wise (see :func:`orthogonalize`).
    """
    theta = _theta(net, theta)
    d1, d2 = (random_direction(net, theta, seed, index=i, norm=norm, keep_biases=keep_biases,
                               backend=backend) for i in DIRECTION_KEYS)
    a, b = d1.astype(np.float64), d2.astype(np.float64)
    cos = float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))
    if orthogonal:
        d2, cos = orthogonalize(d1, d2, net, norm, keep_biases)
    info = {"distribution": "gaussian N(0, I_P), float64 draw rounded to θ's dtype",
            "stream": STREAM, "seed": seed_value(seed),
            "keys": {"d1": DIRECTION_KEYS[0], "d2": DIRECTION_KEYS[1]},
            "norm": norm, "keep_biases": bool(keep_biases), "eps": EPS,
            "orthogonalized": bool(orthogonal), "cosine_before": cos}
    plane = Plane(theta.copy(), d1, d2, kind="random", info=info)
    plane.info["cosine"] = plane.cosine
    return plane


def solutions_plane(theta1, theta2, *, net=None, theta3=None, d2=None, seed=0, norm: str = "filter",
                    keep_biases: bool = False, orthogonal: bool = False) -> Plane:
    """A line or plane through two solutions: origin θ₁, d₁ = θ₂ − θ₁ (so α = 1 is θ₂).

    d₂ is ``theta3 − θ₁`` (three solutions), or a given ``d2``, or with ``net`` a random normalised
    direction (sub-stream 1 of ``probes``); without any of these the result is a line.
    """
    t1 = as_float_array(theta1, "theta1", ndim=1)
    t2 = as_float_array(theta2, "theta2", dtype=t1.dtype, ndim=1)
    if t2.shape != t1.shape:
        raise ValueError(f"theta2 must have the shape of theta1 {t1.shape}, got {t2.shape}")
    d1 = check_direction(t2 - t1, "theta2 - theta1", t1.shape[0])
    info = {"d1": "theta2 - theta1", "norm": "none (d1)"}
    if theta3 is not None:
        t3 = as_float_array(theta3, "theta3", dtype=t1.dtype)
        d2, info["d2"] = check_direction(t3 - t1, "theta3 - theta1", t1.shape[0]), "theta3 - theta1"
    elif d2 is not None:
        d2, info["d2"] = check_direction(d2, "d2", t1.shape[0], t1.dtype), "given"
    elif net is not None:
        d2 = random_direction(net, t1, seed, index=DIRECTION_KEYS[1], norm=norm, keep_biases=keep_biases)
        info.update(d2="random", stream=STREAM, seed=seed_value(seed), key=DIRECTION_KEYS[1],
                    norm_d2=norm, keep_biases=bool(keep_biases))
    if d2 is not None and orthogonal:
        d2, info["cosine_before"] = orthogonalize(d1, d2)
        info["orthogonalized"] = True
    plane = Plane(t1.copy(), d1, d2, kind="solutions", info=info)
    plane.info["cosine"] = plane.cosine
    return plane


def pca_plane(trajectory, theta_final=None, *, center: bool = False) -> Plane:
    """The plane of the top two principal directions of a training trajectory (Li et al. 2018, §7).

    ``M = [θ_t − θ_final]_t`` (``[T, P]``, float64); with ``center=True`` the column mean of M is
    removed first (what scikit-learn's PCA does in Li et al.'s code). ``M = U S Vᵀ``
    (``numpy.linalg.svd``); d₁, d₂ are the first two rows of Vᵀ (unit vectors), signed so that the
    first snapshot has non-negative coordinates. Explained variance ratio ``s_i² / Σ_j s_j²``.

    Args:
        trajectory: ``[T, P]`` snapshots θ_t (T ≥ 3), e.g. ``TrainResult.trajectory``.
        theta_final: the origin (default: the last snapshot).
    """
    traj = as_float_array(trajectory, "trajectory", ndim=2)
    final = (traj[-1] if theta_final is None
             else as_float_array(theta_final, "theta_final", dtype=traj.dtype, ndim=1))
    if final.shape[0] != traj.shape[1]:
        raise ValueError(f"theta_final must have shape [{traj.shape[1]}], got {final.shape}")
    M = traj.astype(np.float64) - final.astype(np.float64)
    if center:
        M = M - M.mean(axis=0)
    _, s, Vt = np.linalg.svd(M, full_matrices=False)
    if len(s) < 2 or s[1] <= 0:
        raise ValueError("trajectory spans fewer than two directions around theta_final; "
                         "need at least 3 distinct snapshots")
    dirs = Vt[:2].copy()
    first = traj[0].astype(np.float64) - final
    for i in range(2):
        c = dirs[i] @ first
        if c < 0 or (c == 0 and dirs[i][np.argmax(np.abs(dirs[i]))] < 0):
            dirs[i] = -dirs[i]
    var = s ** 2
    info = {"method": "numpy.linalg.svd of M = theta_t - theta_final" + (" (centred)" if center else ""),
            "center": bool(center), "n_snapshots": int(traj.shape[0]),
            "explained_variance": var[:2], "explained_variance_ratio": var[:2] / var.sum(),
            "singular_values": s, "norm": "none (unit vectors)"}
    return Plane(final.copy(), dirs[0].astype(traj.dtype), dirs[1].astype(traj.dtype), kind="pca", info=info)


def hessian_plane(net, theta, data, *, params="all", batch_size: int | None = None, kind: str = "hessian",
                  seed=0, norm: str = "none", keep_biases: bool = False, **lanczos_kwargs) -> Plane:
    """The plane of the Hessian's top two eigenvectors (largest algebraic eigenvalues) at θ.

    Uses :class:`pyquirk.hessian.Curvature` (the mean loss over ``data``, size-weighted batches,
    parameter selection ``params``) and :func:`pyquirk.hessian.top_eigen` (block Lanczos, start
    block from ``probes`` stream ``seed``). Eigenvectors are unit vectors in the selected
    coordinates, zero elsewhere, signed so that their largest-magnitude entry is positive; then
    normalised by ``norm`` (default ``"none"``).

    Raises:
        ImportError: :mod:`pyquirk.hessian` is not available (with the cause).
    """
    try:
        from ..hessian import Curvature, top_eigen
    except ImportError as e:
        raise ImportError(f"hessian_plane needs pyquirk.hessian, which failed to import: {e}") from e
    theta = _theta(net, theta)
    op = Curvature(net, theta, data, params=params, batch_size=batch_size, kind=kind)
    res = top_eigen(op, 2, seed=seed_value(seed), **lanczos_kwargs)
    V = np.zeros((2, net.n_params), dtype=np.float64)
    V[:, op.index] = res.eigenvectors
    for i in range(2):
        if V[i][np.argmax(np.abs(V[i]))] < 0:
            V[i] = -V[i]
    d1, d2 = (normalize_direction(V[i].astype(theta.dtype), theta, net, norm, keep_biases,
                                  name=f"eigenvector {i}") for i in range(2))
    info = {"operator": op.semantics(), "eigenvalues": np.asarray(res.eigenvalues),
            "residuals": np.asarray(res.residuals), "converged": np.asarray(res.converged),
            "stream": STREAM, "seed": seed_value(seed), "norm": norm, "keep_biases": bool(keep_biases),
            "hvps": int(res.counts.get("hvps", 0))}
    return Plane(theta.copy(), d1, d2, kind="hessian", info=info)


__all__ = ["NORMS", "EPS", "STREAM", "random_direction", "normalize_direction", "layer_normalize",
           "orthogonalize", "random_plane", "solutions_plane", "pca_plane", "hessian_plane"]
