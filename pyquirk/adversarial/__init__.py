"""Neural networks make dumb errors: adversarial examples, fooling images, transfer, black-box attacks.

- :mod:`.model`: the model interface (logits + per-sample input gradient + declared bounds).
- :mod:`.attacks`: FGSM, PGD (L∞, L2), BIM; ε values × restarts in one batched pass (DESIGN §4).
- :mod:`.criteria`: margins, success, targets (given, random, least-likely), argument checks.
- :mod:`.compat`: ``compat="torchattacks" | "foolbox"``, each difference documented.
- :mod:`.curves`: robust-accuracy curves (FGSM and PGD, L∞ and L2, one call).
- :mod:`.fooling`: fooling images (Nguyen et al. 2015), gradient ascent and a (μ, λ) evolution.
- :mod:`.transfer`: transfer matrices between models trained on disjoint subsets (Szegedy 2014).
- :mod:`.substitute`: Papernot et al. (2017) black-box substitute with Jacobian augmentation.
- :mod:`.spheres`: adversarial spheres (Gilmer et al. 2018) against the isoperimetric bound.

See ``docs/adversarial.md`` for the pinned contract and the fidelity figures.
"""
from __future__ import annotations

from .attacks import attack, bim, fgsm, margins, pgd
from .model import Model, as_model, data_bounds
from .results import (AttackResult, FoolingResult, RobustCurve, SpheresResult, SubstituteResult,
                      TransferResult)

__all__ = ["Model", "as_model", "data_bounds", "attack", "fgsm", "pgd", "bim", "margins",
           "AttackResult", "RobustCurve", "FoolingResult", "TransferResult", "SubstituteResult",
           "SpheresResult"]
