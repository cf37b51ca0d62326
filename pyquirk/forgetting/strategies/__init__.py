"""Continual-learning strategies: naive fine-tuning, single-task and joint references, replay, EWC, HAT.

Each is a small object holding its hyper-parameters; :func:`pyquirk.forgetting.learn` drives it
(see :mod:`.base` for the hooks).
"""
from __future__ import annotations

from ..._validate import check_choice
from .base import Joint, Naive, SingleTask, Strategy
from .ewc import EWC, fisher_diagonal
from .hat import HAT, conditioning, hat_structure
from .replay import Replay, check_memory_size

STRATEGIES = {"naive": Naive, "single": SingleTask, "joint": Joint, "replay": Replay, "ewc": EWC, "hat": HAT}


def make_strategy(spec, **options) -> Strategy:
    """A strategy from an instance, a name plus options, or a ``config()`` dict.

    >>> make_strategy("replay", memory_size=100)
    Replay(memory_size=100, policy='reservoir', replay_batch=None)
    """
    if isinstance(spec, Strategy):
        if options:
            raise TypeError("options can only be given with a strategy name")
        return spec
    if isinstance(spec, dict):
        options = {**{k: v for k, v in spec.items() if k != "name"}, **options}
        spec = spec.get("name")
    if not isinstance(spec, str):
        raise TypeError(f"strategy must be a Strategy, a name or a config dict, got {type(spec).__name__}")
    return STRATEGIES[check_choice(spec, STRATEGIES, "strategy")](**options)


__all__ = ["Strategy", "Naive", "SingleTask", "Joint", "Replay", "EWC", "HAT", "STRATEGIES", "make_strategy",
           "fisher_diagonal", "hat_structure", "conditioning", "check_memory_size"]
