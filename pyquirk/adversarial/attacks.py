"""FGSM, PGD (L∞, L2) and BIM on the engine's per-sample input gradient, ε × restarts batched.

The pinned contract (DESIGN §4 "Attacks", ``compat=None``; ``docs/adversarial.md``):

- loss: each sample's own cross-entropy; untargeted ascends CE(y), targeted descends CE(t);
- one iteration: steepest-ascent step for the norm (L∞ ``α·sign(g)``, L2 ``α·g/max(‖g‖₂, 1e-12)``),
  then projection onto the ε-ball around x0, then clipping to the model's bounds
  (:func:`pyquirk.kernels.steepest_step`, ``project_linf``/``project_l2``);
- random start: uniform in the ball (:func:`pyquirk.kernels.random_start`), restart r drawing from
  ``stream("attack", seed, 0, r)``, the *same* unit draw for every ε and every call (so restarts
  share seeds across ε, and a batched run equals separate runs);
- FGSM is one step with ``α = ε`` from x0; BIM is PGD without a random start; PGD's default step
  is ``α = 2.5·ε/steps`` (per ε) with 40 steps;
- success is judged on the final clipped input by arg-max: ``pred ≠ y`` (untargeted),
  ``pred = t`` (targeted); the margin is ``max_{j≠y} z_j − z_y`` (untargeted) or
  ``z_t − max_{j≠t} z_j`` (targeted), positive when the attack has won;
- restarts: per (ε, example) the returned last iterate is that of the successful restart with the
  largest final margin (else of the restart with the largest margin); the best iterate is the
  iterate of largest margin over every step (start and final included) and every restart;
- ε values ``[K]`` and restarts R are stacked into ONE pass of E = K·R members on the engine's
  population axis (``stack="members"``: θ broadcast to ``[E, P]``, data ``[E, N, ...]``; member e
  computes exactly what a separate call computes, so the batched pass equals separate runs
  bit for bit), or along the sample axis (``stack="rows"``: one tall ``[E·N, ...]`` batch; faster
  for small N on some BLAS, equal to separate runs only up to BLAS blocking).
"""
from __future__ import annotations

import time

import numpy as np

from .. import kernels
from .._validate import check_choice, check_positive_int
from ..seeds import stream
from . import compat as _compat
from .criteria import (TARGET_MODES, check_eps, check_norm, check_step, margins, perturbation_norms,
                       resolve_targets, seed_of, won)
from ._twins import twins as _loop_twins
from .model import Model
from .results import AttackResult

ATTACKS = ("fgsm", "pgd", "bim")
STACKS = ("members", "rows")


# ==================================================================================== the pass
class _Spec:
    """The resolved settings of one attack call."""

    def __init__(self, attack, norm, steps, alpha, rel_alpha, random_start, restarts, compat, stack,
                 bounds, seed, backend):
        self.attack, self.norm, self.steps = attack, norm, steps
        self.alpha, self.rel_alpha, self.random_start = alpha, rel_alpha, random_start
        self.restarts, self.compat, self.stack = restarts, compat, stack
        self.lo, self.hi = bounds
        self.seed, self.backend = seed, backend
        # The kernels' twin module, resolved once. Inside the loop the arrays are already
        # validated and contiguous, so the steps call the twins directly and skip the public
        # entry points' per-call validation (same functions, same results).
        twins = getattr(kernels, "_twins", None)
        self.twins = twins(backend) if twins is not None else None
        self.loop = _loop_twins(backend)   # the checked iteration and the best-iterate tracking
        # torchattacks' L2 step and BIM clip have their own order; every other setting runs
        # loop.pgd_step, which also checks each gradient (so the iterates are finite by construction)
        self.checked = not (compat == "torchattacks" and (norm == "l2" or attack == "bim"))

    def alpha_rows(self, eps_rows):
        return np.full_like(eps_rows, self.alpha) if self.alpha is not None else self.rel_alpha * eps_rows

    def starts(self, x0f, eps_rows, members_r, subset=None):
        """Start points ``[E, n, D]``: member e uses restart ``members_r[e]``'s stream."""
        xs = x0f if subset is None else x0f[subset]
        if not self.random_start:
            return np.repeat(xs[None], eps_rows.shape[0], axis=0)
        out = np.empty((eps_rows.shape[0],) + xs.shape, dtype=x0f.dtype)
        for e, r in enumerate(members_r):
            full = np.zeros(x0f.shape[0])
            full[slice(None) if subset is None else subset] = eps_rows[e]
            rng = stream("attack", self.seed, 0, int(r))
            if self.compat == "torchattacks" and self.norm == "l2":
                s = _compat.ta_random_start_l2(x0f, full, rng, self.lo, self.hi)
            else:
                s = kernels.random_start(x0f, full, self.norm, rng, self.lo, self.hi, backend=self.backend)
            out[e] = s if subset is None else s[subset]
        return out

    def step(self, x2, g2, alpha_flat, n_batch):
        """Steepest-ascent step on rows ``[M, D]`` (``kernels.steepest_step``)."""
        if self.compat == "torchattacks" and self.norm == "l2":
            return _compat.ta_l2_step(x2, g2, alpha_flat, n_batch)
        if self.twins is not None:
            return self.twins.steepest_step(x2, np.ascontiguousarray(g2), alpha_flat, self.norm)
        return kernels.steepest_step(x2, g2, alpha_flat, self.norm, backend=self.backend)

    def project(self, x2, x0f, eps_flat):
        """Projection onto the ε-ball, then clip (``kernels.project_linf``/``project_l2``)."""
        if self.compat == "torchattacks" and self.attack == "bim":
            return _compat.ta_bim_clip(x2, x0f, eps_flat, self.lo, self.hi)
        name = "project_linf" if self.norm == "linf" else "project_l2"
        if self.twins is not None:
            return getattr(self.twins, name)(x2, x0f, eps_flat, self.lo, self.hi)
        return getattr(kernels, name)(x2, x0f, eps_flat, self.lo, self.hi, backend=self.backend)

    def advance(self, x2, g2, x0f, alpha_flat, eps_flat, n_batch):
        """One iteration on rows ``[M, D]``: steepest step, projection onto the ε-ball, clipping."""
        if not self.checked:
            return self.project(self.step(x2, g2, alpha_flat, n_batch), x0f, eps_flat)
        out, finite = self.loop.pgd_step(x2, np.ascontiguousarray(g2), x0f, alpha_flat, eps_flat, self.norm,
                                         self.lo, self.hi)
        if not finite:
            raise ValueError("the input gradient contains NaN or infinite values (the model overflows on "
                             "these inputs)")
        return out


def _iterate(model: Model, spec: _Spec, x0f, lab, targeted, eps_rows, start, hook=None):
    """Run the steps for E members at once; track the best iterate.

    Args:
        x0f: ``[n, D]`` clean inputs (features flattened); lab: ``[n]`` CE labels (y or t).
        eps_rows: ``[E, n]`` float64 radii; start: ``[E, n, D]`` (consumed).
        hook: optional ``fn(x2 [E·n, D]) -> x2`` applied after each projection (spheres: back
            onto the data manifold).
    Returns:
        ``x [E, n, D]``, ``z [E, n, C]`` of the final iterate, and ``x_best, z_best, m_best``.
    """
    E, n = eps_rows.shape
    D = x0f.shape[1]
    shp = model.input_shape
    members = spec.stack == "members"
    labels = np.broadcast_to(lab, (E, n)) if members else np.tile(lab, E)
    x0f = np.ascontiguousarray(x0f)
    eps_flat = np.ascontiguousarray(eps_rows.reshape(-1), dtype=np.float64)
    alpha_flat = np.ascontiguousarray(spec.alpha_rows(eps_rows).reshape(-1), dtype=np.float64)
    x = np.ascontiguousarray(start)
    lab = np.ascontiguousarray(lab, dtype=np.int64)

    def view(a):
        return a.reshape(((E, n) if members else (E * n,)) + shp)

    if members and spec.checked and hook is None:      # the whole loop in one engine call (cpu)
        out = model.attack_loop(x0f.reshape((n,) + shp), lab, view(x), alpha_flat.reshape(E, n),
                                eps_flat.reshape(E, n), spec.steps, spec.norm, targeted)
        if out is not None:
            z, xb, zb, mb = out
            return x, z, xb.reshape(E, n, D), zb, mb
    m_best = np.full(E * n, -np.inf)
    x_best = x.copy()
    z_best = None

    def track(z, x):                       # in place: no new [E, n, ·] arrays per step
        nonlocal z_best
        z2 = np.ascontiguousarray(z.reshape(E * n, -1))
        if z_best is None:
            z_best = z2.copy()
        spec.loop.track_best(z2, lab, targeted, m_best, x.reshape(E * n, D), x_best.reshape(E * n, D), z_best)
        return z2.reshape(E, n, -1)

    # The first call validates θ and the start; later iterates come from loop.pgd_step, which
    # checks every gradient, so their NaN/inf scan is skipped (unless a hook or a compat step moved them).
    skip_scan = False
    for _ in range(spec.steps):
        z, g = model.loss_grad(view(x), labels, check_finite=not skip_scan)
        track(z, x)
        g2 = g.reshape(E * n, D)
        if targeted:
            g2 = np.negative(g2)
        x2 = spec.advance(x.reshape(E * n, D), g2, x0f, alpha_flat, eps_flat, n)
        if hook is not None:
            x2 = hook(x2)
        skip_scan = spec.checked and hook is None
        x = x2.reshape(E, n, D)
    z = track(model.logits(view(x)), x)
    return x, z, x_best, z_best.reshape(E, n, -1), m_best.reshape(E, n)


def _choose_restart(m, s, compat):
    """Index ``[K, N]`` of the returned restart from final margins/success ``[K, R, N]``."""
    if compat == "foolbox":                       # Foolbox .repeat(): the first successful repeat
        return np.where(s.any(1), s.argmax(1), 0)
    r_succ = np.where(s, m, -np.inf).argmax(1)
    return np.where(s.any(1), r_succ, m.argmax(1))


def _pick(a, idx):
    """``a[k, idx[k, n], n, ...]`` for ``a: [K, R, N, ...]``, ``idx: [K, N]`` -> ``[K, N, ...]``."""
    K, R, N = a.shape[:3]
    if R == 1:  # idx is all 0: a plain copy, not a gather
        return a[:, 0].copy()
    return a[np.arange(K)[:, None], idx, np.arange(N)[None, :]]


# ==================================================================================== public API
def attack(model: Model, X, y, eps=None, *, kind: str = "pgd", norm="linf", steps=None, alpha=None,
           rel_alpha=None, random_start=None, restarts: int = 1, target=None, seed=0, compat=None,
           refine: int = 0, stack: str = "members", hook=None) -> AttackResult:
    """Run FGSM / PGD / BIM for every ε in ``eps`` and every restart in one batched pass.

    Args:
        model: a :class:`~pyquirk.adversarial.Model` (net, θ, bounds).
        X: ``[N, *in]`` clean inputs inside the model's bounds; y: ``[N]`` labels.
        eps: scalar or ``[K]``, ``>= 0``, in the norm's units (required unless a compat mode has
            a default).
        kind: ``"fgsm"``, ``"pgd"`` or ``"bim"`` (PGD without a random start).
        norm: ``"linf"`` or ``"l2"``.
        steps, alpha, rel_alpha, random_start: override the defaults of ``kind`` under ``compat``
            (pinned PGD: 40 steps, ``α = 2.5·ε/steps``, random start). ``alpha`` is absolute,
            ``rel_alpha`` multiplies each ε; give at most one.
        restarts: R random restarts (needs a random start when R > 1).
        target: None (untargeted), ``"random"``, ``"least_likely"``, a class, or ``[N]`` classes.
        seed: int or :class:`~pyquirk.seeds.Seeds`: the ``attack`` stream (starts, random targets).
        compat: None (pinned), ``"torchattacks"`` or ``"foolbox"`` (see :mod:`.compat`).
        refine: bisection steps refining each example's minimal ε below its smallest successful
            grid ε (0: grid only).
        stack: ``"members"`` (exact, default) or ``"rows"``; see the module docstring.
        hook: advanced: ``fn(x [M, D]) -> x`` applied to every iterate after the projection and
            clipping (e.g. back onto a data manifold, :mod:`.spheres`). It may leave the ε-ball:
            the reported norms are then measured, not assumed.

    Returns:
        :class:`AttackResult` with ``x_adv``/``x_best`` ``[K, N, *in]``, ``success`` ``[K, N]``,
        margins, norms, ``min_eps`` ``[N]``, counts and wall time.
    """
    t_start = time.perf_counter()
    if not isinstance(model, Model):
        raise TypeError(f"model must be a pyquirk.adversarial.Model, got {type(model).__name__}")
    kind = check_choice(kind, ATTACKS, "attack")
    norm = check_norm(norm)
    compat = _compat.check_compat(compat)
    stack = check_choice(stack, STACKS, "stack")
    d = _compat.defaults(compat, kind, norm)
    if eps is None:
        if d["eps"] is None:
            raise TypeError("eps is required (no default ε without a compat mode that has one)")
        eps = d["eps"]
    eps = check_eps(eps)
    steps = check_positive_int(d["steps"] if steps is None else steps, "steps")
    alpha, rel_alpha = check_step(alpha, "alpha"), check_step(rel_alpha, "rel_alpha")
    if alpha is not None and rel_alpha is not None:
        raise ValueError("give alpha (absolute) or rel_alpha (relative to ε), not both")
    if alpha is None and rel_alpha is None:
        alpha = d.get("alpha")
        rel_alpha = d.get("rel_alpha")
        if alpha is None and rel_alpha is None:
            rel_alpha = _compat.PINNED_REL_ALPHA_NUM / steps
    random_start = bool(d["random_start"] if random_start is None else random_start)
    restarts = check_positive_int(restarts, "restarts")
    if restarts > 1 and not random_start:
        raise ValueError("restarts > 1 needs random_start=True (deterministic restarts are identical)")
    refine = check_positive_int(refine, "refine", minimum=0)
    seed = seed_of(seed)
    snap = model.snapshot()

    X = model.check_inputs(X)
    N = X.shape[0]
    y = model.check_labels(y, N)
    _compat.check_compat_call(compat, kind, model.bounds, target is not None)
    spec = _Spec(kind, norm, steps, alpha, rel_alpha, random_start, restarts, compat, stack,
                 model.bounds, seed, model.backend)
    x0f = np.ascontiguousarray(X.reshape(N, -1))
    z_clean = model.logits(X)
    tgt, tmode = resolve_targets(model, target, y, z_clean, seed)
    targeted = tgt is not None
    lab = tgt if targeted else y

    K, R = eps.shape[0], restarts
    eps_rows = np.repeat(np.repeat(eps, R)[:, None], N, axis=1)                       # [K·R, N]
    start = spec.starts(x0f, eps_rows, np.tile(np.arange(R), K))
    if hook is not None:
        start = hook(start.reshape(-1, start.shape[-1])).reshape(start.shape)
    x, z, xb, zb, mb = _iterate(model, spec, x0f, lab, targeted, eps_rows, start, hook)

    # ---- restarts -> one answer per (ε, example)
    x, z, xb, zb, mb = (a.reshape((K, R, N) + a.shape[2:]) for a in (x, z, xb, zb, mb))
    m_last = margins(z, lab, targeted)                                                   # [K, R, N]
    s_last = won(z, lab, targeted)
    r_star = _choose_restart(m_last, s_last, compat)
    r_best = mb.argmax(1)
    x_adv, x_best, z_best = _pick(x, r_star), _pick(xb, r_best), _pick(zb, r_best)
    success = _pick(s_last, r_star)  # = won(z_adv) (and below, margin = margins(z_adv)): row by row

    # ---- minimal ε over the grid, refined by bisection
    clean_won = won(z_clean, lab, targeted)
    min_eps, x_min = _grid_min_eps(eps, success, x_adv, x0f, clean_won)
    min_eps_grid = min_eps.copy()
    if refine:
        _bisect(model, spec, x0f, lab, targeted, eps, min_eps, x_min, refine, hook)

    shp = (K, N) + model.input_shape
    semantics = _semantics(spec, tmode, refine, model)
    if hook is not None:
        semantics["hook"] = getattr(hook, "__doc__", None) or getattr(hook, "__name__", repr(hook))
    counts = model.since(snap)
    counts["wall_time_s"] = time.perf_counter() - t_start
    return AttackResult(
        eps=eps, y=y, target=tgt, x_adv=x_adv.reshape(shp), x_best=x_best.reshape(shp),
        success=success, success_best=won(z_best, lab, targeted),
        margin=_pick(m_last, r_star), margin_best=_pick(mb, r_best),
        norm_adv=perturbation_norms(x_adv, x0f, norm), norm_best=perturbation_norms(x_best, x0f, norm),
        restart_margin=m_last, chosen_restart=r_star.astype(np.int64),
        clean_pred=z_clean.argmax(-1), min_eps=min_eps, min_eps_grid=min_eps_grid,
        x_min=x_min.reshape((N,) + model.input_shape),
        semantics=semantics, seeds={"attack": seed}, counts=counts)


def _grid_min_eps(eps, success, x_adv, x0f, clean_won):
    """Per example: the smallest grid ε that succeeds (inf if none; 0 for clean errors) and its input."""
    N = success.shape[1]
    order = np.argsort(eps, kind="stable")
    s_sorted = success[order]                                          # [K, N]
    hit = s_sorted.any(0)
    first = s_sorted.argmax(0)
    min_eps = np.where(hit, eps[order][first], np.inf)
    x_min = np.where(hit[:, None], x_adv[order[first], np.arange(N)], x0f)
    min_eps[clean_won] = 0.0
    x_min[clean_won] = x0f[clean_won]
    return min_eps, x_min


def _bisect(model, spec, x0f, lab, targeted, eps, min_eps, x_min, iters, hook=None):
    """Refine ``min_eps`` in place: bisection between the largest failing grid ε (or 0) and it."""
    act = np.flatnonzero(np.isfinite(min_eps) & (min_eps > 0))
    if act.size == 0:
        return
    grid = np.sort(eps)
    hi = min_eps[act].copy()
    below = np.searchsorted(grid, hi, side="left") - 1
    lo = np.where(below >= 0, grid[np.maximum(below, 0)], 0.0)
    R = spec.restarts
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        eps_rows = np.repeat(mid[None], R, axis=0)                     # [R, n]
        start = spec.starts(x0f, eps_rows, np.arange(R), subset=act)
        if hook is not None:
            start = hook(start.reshape(-1, start.shape[-1])).reshape(start.shape)
        x, z, *_ = _iterate(model, spec, x0f[act], lab[act], targeted, eps_rows, start, hook)
        m, s = margins(z, lab[act], targeted), won(z, lab[act], targeted)
        r = _choose_restart(m[None], s[None], spec.compat)[0]
        ok = s[r, np.arange(act.size)]
        hi = np.where(ok, mid, hi)
        lo = np.where(ok, lo, mid)
        x_min[act[ok]] = x[r[ok], np.flatnonzero(ok)]
    min_eps[act] = hi


def _semantics(spec: _Spec, tmode, refine, model) -> dict:
    step = (f"alpha={spec.alpha}" if spec.alpha is not None else f"alpha={spec.rel_alpha:g}*eps")
    return {
        "attack": spec.attack, "norm": spec.norm, "steps": spec.steps, "step_size": step,
        "alpha": spec.alpha, "rel_alpha": spec.rel_alpha, "random_start": spec.random_start,
        "restarts": spec.restarts, "target_mode": tmode, "compat": spec.compat, "stack": spec.stack,
        "bounds": [spec.lo, spec.hi], "refine": refine, "model": model.name,
        "dtype": np.dtype(model.dtype).name, "backend": model.backend,
        "loss": "per-sample cross-entropy; untargeted ascends CE(y), targeted descends CE(target)",
        "step_order": "steepest step for the norm, then projection onto the eps-ball around x0, "
                      "then clipping to the bounds",
        "start": ("uniform in the ball, restart r from stream('attack', seed, 0, r), shared by "
                  "every eps" if spec.random_start else "x0"),
        "success": "arg-max of the final clipped input: != y (untargeted) / == target",
        "restart_choice": ("first successful restart (Foolbox repeat)" if spec.compat == "foolbox"
                           else "successful restart with the largest margin, else largest margin"),
        "best": "iterate with the largest margin over all steps and restarts",
        "min_eps": "smallest grid eps whose x_adv succeeds (0 for clean errors, inf if none)"
                   + (f", refined by {refine} bisection steps" if refine else ""),
    }


def pgd(model, X, y, eps=None, *, norm="linf", **kwargs) -> AttackResult:
    """PGD (Madry et al. 2018): :func:`attack` with ``kind="pgd"``; see there for the arguments."""
    return attack(model, X, y, eps, kind="pgd", norm=norm, **kwargs)


def bim(model, X, y, eps=None, *, norm="linf", **kwargs) -> AttackResult:
    """BIM (Kurakin et al. 2017) = PGD without a random start: :func:`attack` with ``kind="bim"``."""
    return attack(model, X, y, eps, kind="bim", norm=norm, **kwargs)


def fgsm(model, X, y, eps=None, *, norm="linf", **kwargs) -> AttackResult:
    """FGSM (Goodfellow et al. 2015; L2: FGM): one step of size ε from x0, projected and clipped."""
    return attack(model, X, y, eps, kind="fgsm", norm=norm, **kwargs)


__all__ = ["attack", "pgd", "bim", "fgsm", "margins", "won", "perturbation_norms", "check_norm",
           "check_eps", "resolve_targets", "ATTACKS", "TARGET_MODES"]
