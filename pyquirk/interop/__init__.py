"""Interop with other frameworks. Importing this package never imports them.

- :mod:`pyquirk.interop.torch`: ``to_torch``, ``from_torch``, ``torch_loss_fn``, ``unflatten_torch``.
"""
from .torch import from_torch, to_torch, torch_loss_fn, unflatten_torch

__all__ = ["to_torch", "from_torch", "torch_loss_fn", "unflatten_torch"]
