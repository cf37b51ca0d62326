"""Named RNG streams (DESIGN §4).

Every source of randomness has its own stream: ``init``, ``data``, ``order``, ``corruption``,
``attack`` and ``probes``. Each stream is a NumPy ``Generator`` built from its own integer seed and
the stream's name, so changing the order seed can never change the initial parameters.

>>> s = Seeds(init=0, order=3)
>>> rng = s.rng("order")          # Generator for the example order
>>> rng_m = s.rng("order", member=2)   # independent stream for population member 2
"""
from __future__ import annotations

import dataclasses
import zlib

import numpy as np

STREAMS = ("init", "data", "order", "corruption", "attack", "probes")


def stream(name: str, seed: int, *keys: int) -> np.random.Generator:
    """A Generator for stream ``name`` with integer ``seed``; extra ``keys`` derive sub-streams.

    The stream name enters the SeedSequence spawn key (via CRC-32), so two streams with the same
    integer seed are still independent.
    """
    if name not in STREAMS:
        raise ValueError(f"unknown RNG stream {name!r}; expected one of {', '.join(STREAMS)}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed for stream {name!r} must be a non-negative integer, got {seed!r}")
    key = (zlib.crc32(name.encode()),) + tuple(int(k) for k in keys)
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(int(seed), spawn_key=key)))


@dataclasses.dataclass(frozen=True)
class Seeds:
    """One integer seed per named stream. Results record this object via ``to_dict()``."""

    init: int = 0
    data: int = 0
    order: int = 0
    corruption: int = 0
    attack: int = 0
    probes: int = 0

    def rng(self, name: str, member: int | None = None) -> np.random.Generator:
        """The Generator of stream ``name``; ``member`` selects a population member's sub-stream."""
        keys = () if member is None else (int(member),)
        return stream(name, getattr(self, name) if name in STREAMS else -1, *keys)

    def replace(self, **changes) -> "Seeds":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def as_seeds(seeds) -> Seeds:
    """Accept a ``Seeds``, an int (every stream gets it) or a dict of stream seeds."""
    if isinstance(seeds, Seeds):
        return seeds
    if isinstance(seeds, dict):
        unknown = set(seeds) - set(STREAMS)
        if unknown:
            raise ValueError(f"unknown RNG stream(s) {sorted(unknown)}; expected {', '.join(STREAMS)}")
        return Seeds(**seeds)
    if isinstance(seeds, (int, np.integer)) and not isinstance(seeds, bool):
        return Seeds(**{k: int(seeds) for k in STREAMS})
    raise TypeError(f"seeds must be a Seeds, an int or a dict, got {type(seeds).__name__}")
