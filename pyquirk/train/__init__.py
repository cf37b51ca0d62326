"""Training: functional optimizers and the training loop (order control, populations, trajectories).

>>> from pyquirk.train import fit, SGD
>>> res = fit(net, net.init(seeds), X, y, SGD(0.1, momentum=0.9), epochs=5, batch_size=32, seeds=seeds)
>>> res.theta, res.history["train_acc"]

See ``docs/training.md`` for the update equations, the order rule and the recording semantics.
"""
from __future__ import annotations

from .loop import fit
from .optim import SGD, Adam, make_optimizer
from .result import TrainResult

__all__ = ["fit", "SGD", "Adam", "make_optimizer", "TrainResult"]
