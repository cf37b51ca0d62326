"""Initialization: scale and scheme, signal propagation at init, transfer and pre-training.

- :func:`init_sweep` / :class:`InitSweepResult`: scheme × gain × activation × depth outcome maps
  (LeCun et al. 1998/2002; Glorot & Bengio 2010; He et al. 2015; Saxe et al. 2014);
- :func:`signal_stats` / :class:`SignalStatsResult`: per-layer forward and gradient sizes at init;
- :func:`transfer` / :class:`TransferResult`: Yosinski et al. (2014), first n layers copied from
  a net trained on task A, frozen or fine-tuned on task B, against a random init;
- :func:`pretraining` / :class:`PretrainResult`: Erhan et al. (2010), greedy layer-wise
  autoencoder pre-training against a random init, accuracy and its variance across seeds.

See docs/initialization.md.
"""
from .sweep import (DEFAULT_DEPTHS, DEFAULT_GAINS, DEFAULT_SCHEMES, InitSweepResult, SignalStatsResult,
                    init_sweep, signal_stats)
from .transfer import PretrainResult, TransferResult, pretraining, transfer

__all__ = ["init_sweep", "InitSweepResult", "signal_stats", "SignalStatsResult", "transfer",
           "TransferResult", "pretraining", "PretrainResult", "DEFAULT_SCHEMES", "DEFAULT_GAINS",
           "DEFAULT_DEPTHS"]
