"""Black-box attacks through a substitute (Papernot et al. 2017, "Practical Black-Box Attacks").

The attacker sees the target (the *oracle*) only through label queries, which are counted. It
trains a substitute on a small seed set labelled by the oracle and grows the set by Jacobian-based
dataset augmentation (Algorithm 1 of the paper):

    S_{ρ+1} = S_ρ ∪ { clip(x + λ_ρ·sign(∂F_{Õ(x)}(x)/∂x)) : x ∈ S_ρ },  λ_ρ = λ·(−1)^⌊ρ/τ⌋,

with F the substitute's logits, Õ(x) the oracle's label and the periodic step size of the paper
(its sign flipped every τ rounds). After each round the substitute is attacked white-box
(FGSM or PGD) and the adversarial examples are sent to the oracle: the oracle's
misclassification rate against the queries used so far is the result, next to random noise of
equal norm. The logit Jacobian row comes from :meth:`Model.logit_grad`.
"""
from __future__ import annotations

import time

import numpy as np

from .._validate import check_positive_int
from ..seeds import as_seeds, stream
from .attacks import attack
from .criteria import check_norm, perturbation_norms
from .model import Model
from .results import SubstituteResult


class LabelOracle:
    """Label-only access to a model, counting every queried input."""

    def __init__(self, model: Model):
        self.model = model
        self.queries = 0

    def __call__(self, X) -> np.ndarray:
        self.queries += int(X.shape[0])
        return self.model.predict(X)


def noise_like(x_adv, x0, norm: str, rng, lo, hi) -> np.ndarray:
    """Random perturbations with the same per-example norm as ``x_adv − x0``, clipped to the bounds.

    L∞: ``‖δ‖∞ · s`` with random signs s (equal L∞ norm, and equal L2 norm to an FGSM step).
    L2: a Gaussian direction scaled to ``‖δ‖₂``. Shapes ``[N, *in]``.
    """
    N = x0.shape[0]
    r = perturbation_norms(x_adv.reshape(N, -1), x0.reshape(N, -1), norm)
    if norm == "linf":
        d = rng.choice([-1.0, 1.0], size=(N, x0[0].size))
    else:
        d = rng.standard_normal((N, x0[0].size))
        d /= np.linalg.norm(d, axis=1, keepdims=True)
    xn = x0.reshape(N, -1) + (d * r[:, None]).astype(x0.dtype)
    return np.clip(xn, lo, hi).astype(x0.dtype).reshape(x0.shape)


def papernot_substitute(oracle: Model, substitute_net, X_seed, X_eval, y_eval, eps: float, *,
                        rounds: int = 6, lam: float = 0.1, tau: int = 3, epochs: int = 10,
                        lr: float = 1e-2, batch_size: int = 100, kind: str = "fgsm", norm: str = "linf",
                        seeds=0, **attack_kwargs) -> SubstituteResult:
    """Train a substitute by Jacobian-based augmentation from label-only queries; attack through it.

    Args:
        oracle: the target :class:`Model` (only its labels are used; its bounds bound everything).
        substitute_net: the substitute's architecture (any Net with the oracle's input shape).
        X_seed: ``[n0, *in]`` the attacker's small seed set (held out from the oracle's training).
        X_eval, y_eval: ``[N, *in]``, ``[N]`` inputs to attack (disjoint from the seed set).
        eps: attack radius in the norm's units.
        rounds: substitute training rounds ρ (the paper's "substitute epochs", 6 on MNIST).
        lam, tau: augmentation step λ and the period τ of its sign flip.
        epochs, lr, batch_size: Adam training of the substitute each round (continued from the
            previous round's weights).
        kind, norm, attack_kwargs: the white-box attack on the substitute.
        seeds: :class:`~pyquirk.seeds.Seeds` or int (``init``/``order`` for the substitute,
            ``attack`` for the attack and the noise).

    Returns:
        :class:`SubstituteResult`, one entry per round: queries used, substitute agreement with the
        oracle on ``X_eval``, the oracle's error on the crafted examples and on equal-norm noise
        (both over the examples the oracle classifies correctly when clean).
    """
    from ..train import Adam, fit
    t0 = time.perf_counter()
    rounds, tau, epochs = (check_positive_int(v, n) for v, n in
                           ((rounds, "rounds"), (tau, "tau"), (epochs, "epochs")))
    norm = check_norm(norm)
    s = as_seeds(seeds)
    lo, hi = oracle.bounds
    X_seed = oracle.check_inputs(X_seed, "X_seed")
    X_eval = oracle.check_inputs(X_eval, "X_eval")
    y_eval = oracle.check_labels(y_eval, X_eval.shape[0], "y_eval")
    query = LabelOracle(oracle)
    snap = oracle.snapshot()

    oracle_eval = oracle.predict(X_eval)          # evaluation only: not part of the attack budget
    right = oracle_eval == y_eval
    S, labels = X_seed.copy(), query(X_seed)
    theta = substitute_net.init(s)
    rng = stream("attack", s.attack, 2)
    queries, agree, t_err, n_err, lams = [], [], [], [], []
    for rho in range(rounds):
        res = fit(substitute_net, theta, S, labels, Adam(lr), epochs=epochs,
                  batch_size=min(batch_size, S.shape[0]), seeds=s.replace(order=s.order + rho),
                  backend=oracle.backend)
        theta = res.theta
        sub = Model(substitute_net, theta, oracle.bounds, backend=oracle.backend, name="substitute")
        queries.append(query.queries)
        agree.append(float((sub.predict(X_eval) == oracle_eval).mean()))
        r = attack(sub, X_eval, y_eval, eps, kind=kind, norm=norm, seed=s.attack, **attack_kwargs)
        xa = r.x_adv[0]
        t_err.append(float((oracle.predict(xa) != y_eval)[right].mean()))
        xn = noise_like(xa, X_eval, norm, rng, lo, hi)
        n_err.append(float((oracle.predict(xn) != y_eval)[right].mean()))
        if rho == rounds - 1:
            break
        lam_rho = lam * (-1.0) ** (rho // tau)
        lams.append(lam_rho)
        _, J = sub.logit_grad(S, labels)
        S_new = np.clip(S + (lam_rho * np.sign(J)).astype(S.dtype), lo, hi).astype(S.dtype)
        S, labels = np.concatenate([S, S_new]), np.concatenate([labels, query(S_new)])
    counts = oracle.since(snap)
    counts.update(oracle_label_queries=query.queries, wall_time_s=time.perf_counter() - t0)
    sem = {"algorithm": "Papernot et al. 2017, Algorithm 1 with periodic step size",
           "rounds": rounds, "lambda": lam, "tau": tau, "seed_set": int(X_seed.shape[0]),
           "substitute": repr(substitute_net), "substitute_training": f"Adam(lr={lr}), {epochs} "
           f"epochs per round, batch {batch_size}, continued across rounds",
           "jacobian": "d z_{O(x)} / dx of the substitute's logits (Model.logit_grad)",
           "attack": f"{kind.upper()}-{norm} on the substitute with the true labels",
           "error": "oracle misclassification over examples it classifies correctly when clean",
           "noise": "random perturbation with the crafted example's norm (L-inf: random signs)",
           "queries": "oracle labels of the substitute's training set (evaluation not counted)"}
    return SubstituteResult(queries=np.asarray(queries), substitute_accuracy=np.asarray(agree),
                            target_error=np.asarray(t_err), noise_error=np.asarray(n_err),
                            eps=float(eps), lambdas=np.asarray(lams), semantics=sem,
                            seeds=s.to_dict(), counts=counts)


__all__ = ["LabelOracle", "noise_like", "papernot_substitute"]
