"""Experience replay (rehearsal) with a fixed-size episodic memory.

The memory holds at most ``memory_size`` training examples of earlier tasks (pool rows: the input,
its label and its task's head). While learning task t every mini-batch of ``batch_size`` current
examples is extended by ``replay_batch`` examples drawn uniformly without replacement from the
memory, and one step is taken on the mean loss of the union (ER, Chaudhry et al. 2019, "On tiny
episodic memories in continual learning"; each replayed example is scored on its own task's head).

The memory is updated at the end of each task with that task's training examples, so it holds
only earlier tasks while a task is learned. Two fill policies:

- ``"reservoir"`` (Vitter's algorithm R, as in Chaudhry et al. 2019): the task's examples are
  visited in a random order; the k-th example seen overall (k counted from 1 across all tasks)
  enters the memory when it is not full, otherwise replaces slot ``r`` when the draw
  ``r ~ U{0, …, k−1}`` falls below ``memory_size``. Every example seen so far is in the memory
  with the same probability ``min(1, M/k)``; the task mix follows the stream.
- ``"class"`` (class-balanced, as iCaRL's fixed budget, Rebuffi et al. 2017, with random rather
  than herding selection): the K classes seen so far (a class is a (task, label) pair) share the
  memory equally, ``⌊M/K⌋`` each plus one for the first ``M mod K`` classes in order of arrival;
  when new classes arrive every stored class keeps a prefix of its (random) order.

Randomness: the member's ``stream("order", seeds.order, 0, 1)`` (memory order and replay draws).
"""
from __future__ import annotations

import numpy as np

from ..._validate import check_choice, check_positive_int
from .base import Strategy

POLICIES = ("reservoir", "class")


def check_memory_size(memory_size) -> int:
    if isinstance(memory_size, bool) or not isinstance(memory_size, (int, np.integer)):
        raise TypeError(f"memory_size must be an integer >= 0, got {type(memory_size).__name__}")
    if memory_size < 0:
        raise ValueError(f"memory_size must be >= 0 (0 disables replay), got {memory_size}")
    return int(memory_size)


def reservoir_update(memory: list, stream_rows, n_seen: int, size: int, rng) -> int:
    """Feed ``stream_rows`` into ``memory`` (a list, modified in place) by Vitter's algorithm R.

    Returns:
        The new count of examples seen.
    """
    for row in stream_rows:
        n_seen += 1
        if len(memory) < size:
            memory.append(int(row))
        else:
            r = int(rng.integers(n_seen))
            if r < size:
                memory[r] = int(row)
    return n_seen


def class_balanced_update(per_class: dict, new: dict, size: int) -> list:
    """Add classes ``new`` ({key: rows in random order}) to ``per_class`` and cut every class to
    its share of ``size`` (``⌊M/K⌋``, +1 for the first ``M mod K`` classes by arrival).

    Returns:
        The memory as one list of rows, class after class.
    """
    per_class.update(new)
    K = len(per_class)
    for k, key in enumerate(per_class):
        quota = size // K + (1 if k < size % K else 0)
        per_class[key] = per_class[key][:quota]
    return [r for rows in per_class.values() for r in rows]


class Replay(Strategy):
    """Experience replay with a fixed-size memory.

    Args:
        memory_size: M ≥ 0 examples in total (0: no replay, i.e. naive fine-tuning).
        policy: ``"reservoir"`` or ``"class"`` (class-balanced).
        replay_batch: memory examples added to every batch (default: the batch size).
    """

    name = "replay"

    def __init__(self, memory_size: int = 500, policy: str = "reservoir", replay_batch: int | None = None):
        self.memory_size = check_memory_size(memory_size)
        self.policy = check_choice(policy, POLICIES, "policy")
        self.replay_batch = None if replay_batch is None else check_positive_int(replay_batch, "replay_batch")

    def config(self):
        return {"name": self.name, "memory_size": self.memory_size, "policy": self.policy,
                "replay_batch": self.replay_batch}

    def setup(self, run, theta0):
        self.memory = [[] for _ in range(run.E)]
        self.per_class = [dict() for _ in range(run.E)]
        self.n_seen = 0

    def replay_indices(self, run, t):
        M = len(self.memory[0])
        if M == 0:
            return None
        r = min(M, self.replay_batch or run.batch_size)
        return np.stack([np.asarray(mem)[rng.choice(M, r, replace=False)]
                         for mem, rng in zip(self.memory, run.replay_rngs)])

    def end_task(self, run, theta, t):
        rows_t = run.task_rows[t]
        for e, rng in enumerate(run.replay_rngs):
            order = rows_t[rng.permutation(len(rows_t))]
            if self.policy == "reservoir":
                seen = reservoir_update(self.memory[e], order, self.n_seen, self.memory_size, rng)
            else:
                labels = run.y[order]
                new = {(t, int(c)): order[labels == c].tolist() for c in np.unique(labels)}
                self.memory[e] = class_balanced_update(self.per_class[e], new, self.memory_size)
        if self.policy == "reservoir":
            self.n_seen = seen

    def summary(self, run):
        mem = np.asarray(self.memory, np.int64).reshape(run.E, -1)
        counts = np.stack([np.bincount(run.task[m], minlength=run.T) for m in mem]) if mem.size \
            else np.zeros((run.E, run.T), np.int64)
        return {"memory_rows": mem, "memory_per_task": counts}
