"""``compat="torchattacks"`` and ``compat="foolbox"``: those libraries' defaults and semantics.

The pinned contract (DESIGN §4, ``compat=None``) is documented in :mod:`.attacks` and
``docs/adversarial.md``. A compat mode changes only what the library does differently; everything
else (stacking, restarts, success, best iterate, counts) stays the same. Each difference, as read
from the sources (torchattacks 3.5.1 ``attacks/{fgsm,pgd,pgdl2,bim}.py``; Foolbox 3.3
``attacks/gradient_descent_base.py`` and the attack classes):

torchattacks
    1. Bounds are hard-coded: every clamp is to ``[0, 1]``. A model with other bounds is refused.
    2. The loss is the batch *mean* cross-entropy, so the gradient is the per-sample gradient / N.
       For L∞ only its sign is used (identical up to underflow); for L2 (``PGDL2``) the step is
       ``α·ḡ/(‖ḡ‖₂ + 1e-10)`` with ``ḡ = g/N``: the 1e-10 is *added* to the norm of the
       mean-reduced gradient (pinned: ``g/max(‖g‖₂, 1e-12)`` on the per-sample gradient).
    3. L2 random start: ``δ = z/‖z‖·ε·u`` with ``u ~ U(0, 1)``: the radius is uniform, which is
       *not* uniform in the ball (pinned: ``ε·u^(1/D)``). L∞: ``U(−ε, ε)`` as pinned.
    4. BIM clips as Kurakin et al.: ``min(max(x, max(x0 − ε, 0)), x0 + ε)`` then ``min(·, 1)``
       (pinned: ``clip(x0 + clip(x − x0, −ε, ε), lo, hi)``; equal up to rounding).
    5. FGSM is L∞ only (no L2 FGM); FGSM does no projection (a no-op up to rounding).
    6. Defaults: FGSM ε=8/255; PGD ε=8/255, α=2/255, 10 steps, random start; PGDL2 ε=1.0, α=0.2,
       10 steps, random start; BIM ε=8/255, α=2/255, 10 steps, no random start.
    7. Least-likely target: ``kthvalue(k=1)`` of the clean logits among classes ≠ label; random
       target: uniform over classes ≠ label (same distributions as ours; torch's RNG differs).
    8. It returns only the adversarial inputs: no success mask, best iterate or restarts.

Foolbox
    1. The loss is the batch *sum* of cross-entropies: the per-sample gradient, as pinned.
    2. Step sizes are relative to ε (``rel_stepsize·ε``): ``LinfPGD`` 0.01/0.3 with 40 steps,
       ``L2PGD`` 0.025 with 50 steps (both random start); FGSM/FGM 1.0 with 1 step; BIM (L∞, L2)
       0.2 with 10 steps, no random start.
    3. L2 normalisation ``g/max(‖g‖₂, 1e-12)`` and projection ``δ·min(1, ε/max(‖δ‖₂, 1e-12))``:
       as pinned. L2 random start: uniform in the ball (Voelker et al.'s sampler; same
       distribution as ours).
    4. Bounds are the model's declared bounds, as pinned.
    5. ε values run one after the other in Python; success is judged per ε on the clipped output
       (no monotone merge across ε). Restarts are ``attack.repeat(R)``, which keeps the *first*
       successful repeat (pinned: the successful restart with the largest margin).
    6. FGSM refuses targeted criteria; PGD/BIM targeted descend CE(target) as pinned.
"""
from __future__ import annotations

import numpy as np

COMPAT_MODES = (None, "torchattacks", "foolbox")

#: ``TA_L2_EPS_FOR_DIVISION``: torchattacks PGDL2's ``eps_for_division``
TA_L2_EPS_FOR_DIVISION = 1e-10

#: per (compat, attack, norm): default ε, step (absolute ``alpha`` or ε-relative ``rel_alpha``),
#: steps and random start. ``None`` = the pinned defaults of pyquirk.
DEFAULTS = {
    (None, "fgsm"): dict(eps=None, rel_alpha=1.0, steps=1, random_start=False),
    (None, "pgd"): dict(eps=None, rel_alpha=None, steps=40, random_start=True),   # α = 2.5ε/steps
    (None, "bim"): dict(eps=None, rel_alpha=None, steps=40, random_start=False),
    ("torchattacks", "fgsm", "linf"): dict(eps=8 / 255, rel_alpha=1.0, steps=1, random_start=False),
    ("torchattacks", "pgd", "linf"): dict(eps=8 / 255, alpha=2 / 255, steps=10, random_start=True),
    ("torchattacks", "pgd", "l2"): dict(eps=1.0, alpha=0.2, steps=10, random_start=True),
    ("torchattacks", "bim", "linf"): dict(eps=8 / 255, alpha=2 / 255, steps=10, random_start=False),
    ("foolbox", "fgsm", "linf"): dict(eps=None, rel_alpha=1.0, steps=1, random_start=False),
    ("foolbox", "fgsm", "l2"): dict(eps=None, rel_alpha=1.0, steps=1, random_start=False),
    ("foolbox", "pgd", "linf"): dict(eps=None, rel_alpha=0.01 / 0.3, steps=40, random_start=True),
    ("foolbox", "pgd", "l2"): dict(eps=None, rel_alpha=0.025, steps=50, random_start=True),
    ("foolbox", "bim", "linf"): dict(eps=None, rel_alpha=0.2, steps=10, random_start=False),
    ("foolbox", "bim", "l2"): dict(eps=None, rel_alpha=0.2, steps=10, random_start=False),
}

#: the pinned default relative step: α = PINNED_REL_ALPHA_NUM · ε / steps (Madry lab's rule)
PINNED_REL_ALPHA_NUM = 2.5


def check_compat(compat) -> str | None:
    if compat not in COMPAT_MODES:
        raise ValueError(f"unknown compat {compat!r}; expected one of {COMPAT_MODES}")
    return compat


def defaults(compat, attack: str, norm: str) -> dict:
    """The default settings of ``attack`` under ``compat`` (raises where the library lacks it)."""
    if compat is None:
        return dict(DEFAULTS[(None, attack)])
    key = (compat, attack, norm)
    if key not in DEFAULTS:
        raise ValueError(f"{compat} has no {attack.upper()} with norm {norm!r}; use compat=None "
                         f"for the pinned {attack.upper()}-{norm}")
    return dict(DEFAULTS[key])


def check_compat_call(compat, attack: str, bounds, targeted: bool) -> None:
    """Refuse what the library itself cannot do (so a cross-check never silently diverges)."""
    if compat == "torchattacks" and tuple(bounds) != (0.0, 1.0):
        raise ValueError(f"compat='torchattacks' clamps to [0, 1] (hard-coded in torchattacks); "
                         f"the model declares bounds {tuple(bounds)}")
    if compat == "foolbox" and attack == "fgsm" and targeted:
        raise ValueError("compat='foolbox': Foolbox's FGSM/FGM refuse targeted criteria")


# ------------------------------------------------------------------------------------ torchattacks
def ta_random_start_l2(x0, eps_rows, rng, lo, hi):
    """torchattacks ``PGDL2`` start: ``clamp(x0 + z/‖z‖·ε·u, lo, hi)``, ``z ~ N(0, I)``, ``u ~ U(0, 1)``.

    Args:
        x0: ``[N, D]``; eps_rows: ``[N]`` float64; rng: Generator (draws ``z [N, D]`` then ``u [N]``).
    Returns:
        ``[N, D]`` in x0's dtype. The radius ``ε·u`` is uniform, so the start is *not* uniform in
        the ball (the pinned start is, see :func:`pyquirk.kernels.random_start`).
    """
    z = rng.standard_normal(x0.shape)
    u = rng.random(x0.shape[0])
    n = np.sqrt(np.sum(z * z, axis=1))
    delta = (z * (u * eps_rows / np.where(n > 0, n, 1.0))[:, None]).astype(x0.dtype)
    return np.clip(x0 + delta, x0.dtype.type(lo), x0.dtype.type(hi))


def ta_l2_step(x, g, alpha_rows, n_batch: int):
    """torchattacks ``PGDL2`` step on rows ``x, g: [M, D]``: ``x + α·ḡ/(‖ḡ‖₂ + 1e-10)``, ``ḡ = g/N``.

    ``n_batch`` is the batch size of the torchattacks call being reproduced (the N of its
    mean-reduced loss). Arithmetic in the data's dtype, as torch does it.
    """
    dt = x.dtype
    gm = g / dt.type(n_batch)
    nrm = np.sqrt(np.sum(gm * gm, axis=1, dtype=dt)) + dt.type(TA_L2_EPS_FOR_DIVISION)
    return x + alpha_rows.astype(dt)[:, None] * (gm / nrm[:, None])


def ta_bim_clip(x, x0, eps_rows, lo, hi):
    """torchattacks ``BIM`` clip on rows ``x: [M, D]`` (row m belongs to ``x0[m % N]``).

    ``a = max(x0 − ε, lo)``; ``b = x if x ≥ a else a``; ``c = x0 + ε if b > x0 + ε else b``;
    ``min(c, hi)``, in the data's dtype.
    """
    dt = x.dtype.type
    M, D = x.shape
    x3 = x.reshape(-1, x0.shape[0], D)
    e = eps_rows.astype(x.dtype).reshape(x3.shape[0], x3.shape[1], 1)
    a = np.maximum(x0[None] - e, dt(lo))
    b = np.where(x3 >= a, x3, a)
    up = x0[None] + e
    c = np.where(b > up, up, b)
    return np.minimum(c, dt(hi)).reshape(M, D)


__all__ = ["COMPAT_MODES", "DEFAULTS", "check_compat", "defaults", "check_compat_call",
           "ta_random_start_l2", "ta_l2_step", "ta_bim_clip"]
