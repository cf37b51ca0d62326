"""The continual-learning loop: T tasks in sequence, a population of E runs in lockstep.

:func:`learn` trains one strategy over a scenario and fills the accuracy matrix
``R[e, i, j]`` (member e, accuracy on task j's test set after training task i). Every member is a
separate run (its own initialisation, example order, replay draws and Fisher samples); all of them
take every step together, as one engine call on θ ``[E, P]`` with per-member batches
``[E, b, ...]``.

Per task t (the same for every strategy; the strategy hooks in where it differs):

1. ``θ ← strategy.begin_task(θ, t)`` (a restart for ``single``/non-incremental ``joint``);
2. fresh optimizer state; ``epochs`` passes over ``strategy.train_indices(t)`` in mini-batches of
   ``batch_size`` (each member draws ``rng.permutation`` per epoch from its order stream; the
   last, partial batch is kept), each batch extended by ``strategy.replay_indices`` (replay);
3. per step ``(loss, grad, mask) = strategy.step_grad(θ, batch)`` then
   ``θ ← optimizer.step(θ, grad, state, mask)`` and ``strategy.after_step`` (HAT's embeddings);
4. ``strategy.end_task(θ, t)`` (Fisher, memory, masks), then row t of R.

The loss of a batch is the mean over its examples of the cross-entropy over each example's head
``[lo, hi)`` (:func:`head_cross_entropy`); when every head is the whole output layer (class- and
domain-incremental) it is the engine's own cross-entropy in one ``loss_and_grad`` call; a batch
from one task of a task-incremental scenario goes through that head's :class:`HeadView` (one fused
``loss_and_grad``); a mixed batch (replay, joint) takes the reference path: logits, the head's
cotangent, then ``net.vjp``.

Seeds (DESIGN §4): member e runs with ``seeds[e]`` (a :class:`pyquirk.seeds.Seeds`):
θ₀ = ``net.init(seeds[e])`` (``init`` stream); batch order from ``stream("order", s.order, 0)``;
replay memory and replay draws from ``stream("order", s.order, 0, 1)``; EWC's Fisher samples
(examples and, for the true Fisher, labels) from ``stream("probes", s.probes, 0)``; HAT's task
embeddings from ``stream("init", s.init, 1)``. The scenario's own randomness (permutations) is
the ``data`` stream of its builder. Changing the order seed never changes θ₀.
"""
from __future__ import annotations

import contextlib
import copy
import math
import time
import weakref

import numpy as np

from .. import backends
from .._validate import check_positive_int
from ..nn import Dense, Gate, Net, ReLU
from ..seeds import Seeds, as_seeds, stream
from ..train.optim import SGD, make_optimizer
from .scenarios import Scenario


# ------------------------------------------------------------------------------------ the loss
def head_cross_entropy(z, y, lo, hi, scale: float):
    """Softmax cross-entropy restricted to each example's head ``[lo, hi)``.

    Args:
        z: ``[..., N, C]`` logits; y: ``[..., N]`` output indices (``lo ≤ y < hi``);
        lo, hi: ``[..., N]`` head bounds per example; scale: multiplies the gradient
            (``1/N`` for the gradient of the batch mean, ``1`` for per-example gradients).

    Returns:
        ``(loss [..., N], g [..., N, C])``: per-example losses and ``scale·∂loss/∂z``, zero outside
        each head.
    """
    c = np.arange(z.shape[-1])
    inside = (c >= lo[..., None]) & (c < hi[..., None])
    zm = np.where(inside, z, -np.inf)
    m = zm.max(axis=-1, keepdims=True)
    ex = np.where(inside, np.exp(zm - m), 0.0)
    s = ex.sum(axis=-1, keepdims=True)
    zy = np.take_along_axis(z, y[..., None], axis=-1)[..., 0]
    loss = m[..., 0] + np.log(s[..., 0]) - zy
    g = ex / s
    np.put_along_axis(g, y[..., None], np.take_along_axis(g, y[..., None], axis=-1) - 1.0, axis=-1)
    return loss, (scale * g).astype(z.dtype, copy=False)


def head_predict(z, lo: int, hi: int) -> np.ndarray:
    """Arg-max over the head ``[lo, hi)`` as output indices: ``[..., N]``."""
    return lo + z[..., lo:hi].argmax(axis=-1)


class HeadView:
    """The sub-network that one head ``[lo, hi)`` sees: every layer but the last, plus rows
    ``lo … hi−1`` of the last Dense layer.

    The cross-entropy over a head depends on these parameters only, so its loss and gradient are
    ONE fused engine ``loss_and_grad`` on the view (``θ[..., idx]``, labels ``y − lo``), scattered
    back into θ (zero elsewhere): the same numbers as the reference path of
    :func:`head_cross_entropy` (logits, the head's cotangent, ``net.vjp``: two forward passes and
    one backward; tested against each other), in one forward and one backward.

    Attributes:
        net: the view's Net (copies of the trunk layers, ``Dense(hi − lo)``);
        idx: ``[P_view]`` positions in θ of the view's parameters (the trunk is θ's first block).
    """

    def __init__(self, net: Net, lo: int, hi: int):
        if type(net.layers[-1]) is not Dense:
            raise ValueError("a head view needs a Dense last layer")
        last = len(net.layers) - 1
        w = next(s for s in net.layout if s.layer == last and s.kind == "weight")
        b = next(s for s in net.layout if s.layer == last and s.kind == "bias")
        n_in = w.shape[1]
        self.lo, self.hi = int(lo), int(hi)
        self.net = Net([copy.deepcopy(layer) for layer in net.layers[:-1]] + [Dense(hi - lo)], net.input_shape,
                       loss=net.loss_name)
        self.ranges = [(0, w.offset), (w.offset + lo * n_in, w.offset + hi * n_in), (b.offset + lo, b.offset + hi)]
        self.idx = np.concatenate([np.arange(a, z) for a, z in self.ranges])

    def gather(self, theta) -> np.ndarray:
        """``θ[..., idx]`` (three contiguous blocks)."""
        return np.concatenate([theta[..., a:z] for a, z in self.ranges], axis=-1)

    def loss_and_grad(self, theta, X, y, backend):
        """Mean head CE and its gradient in θ's layout: ``(loss [E], grad [E, P])``."""
        loss, g = self.net.loss_and_grad(self.gather(theta), X, y - self.lo, backend=backend)
        grad = np.zeros_like(theta)
        o = 0
        for a, z in self.ranges:
            grad[..., a:z] = g[..., o:o + z - a]
            o += z - a
        return loss, grad


_views: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def head_view(net: Net, lo: int, hi: int) -> HeadView | None:
    """The cached :class:`HeadView` of ``net`` for head ``[lo, hi)``, or None (no Dense last layer)."""
    if type(net.layers[-1]) is not Dense or net.loss_name not in ("ce", "cross_entropy"):
        return None
    views = _views.setdefault(net, {})
    if (lo, hi) not in views:
        views[(lo, hi)] = HeadView(net, lo, hi)
    return views[(lo, hi)]


# ------------------------------------------------------------------------------------ the network
def continual_mlp(scenario: Scenario, hidden=(100, 100), gated: bool = False) -> Net:
    """An MLP for ``scenario``: ``Dense(h)-ReLU[-Gate]`` per hidden layer, then ``Dense(n_outputs)``.

    The input is the flat feature vector (``[N, D]``); with ``gated=True`` (HAT) a unit
    :class:`pyquirk.nn.Gate` multiplies each hidden layer's activations, as in the official HAT
    MLP (``h = relu(fc(h)) * σ(s·e)``). The last layer holds every head side by side.
    """
    if not isinstance(scenario, Scenario):
        raise TypeError(f"scenario must be a Scenario, got {type(scenario).__name__}")
    hidden = tuple(check_positive_int(h, "hidden") for h in np.atleast_1d(hidden))
    layers = []
    for h in hidden:
        layers += [Dense(h), ReLU()] + ([Gate()] if gated else [])
    layers.append(Dense(scenario.n_outputs))
    return Net(layers, input_shape=(int(np.prod(scenario.input_shape)),))


def has_gates(net: Net) -> bool:
    return any(isinstance(layer, Gate) for layer in net.layers)


def backend_for(net: Net, backend: str | None) -> str:
    """The backend to use for ``net``: the resolved one, except that a gated net (HAT) runs on the
    reference backend when the resolved one is a ``cpu`` build without the Gate pass (it would fall
    back with a warning anyway)."""
    name = backends.resolve(backend)
    if name == "cpu" and has_gates(net):
        from ..backends import cpu
        if any(cpu.layer_record(layer) is None for layer in net.layers):
            return "reference"
    return name


# ------------------------------------------------------------------------------------ a run
class Run:
    """Everything one :func:`learn` call shares with its strategy (read-only for strategies,
    except ``counts`` and the strategy's own state).

    Attributes:
        net, scenario, backend, optimizer, batch_size, epochs: as given to :func:`learn`.
        E: members; seeds: ``[E]`` Seeds.
        X: ``[N_pool, D]`` all tasks' training inputs, flattened, task after task;
        y: ``[N_pool]`` output indices; lo, hi: ``[N_pool]`` head bounds; task: ``[N_pool]``.
        task_rows: per task, its rows of the pool ``[N_t]``.
        heads: ``[T, 2]``; X_test, y_test: per task ``[M_t, D]`` and output indices ``[M_t]``.
        order_rngs, replay_rngs, probe_rngs: per member Generators (see the module docstring).
    """

    def __init__(self, net, scenario, seeds, optimizer, batch_size, epochs, backend, dtype):
        self.net, self.scenario, self.seeds = net, scenario, seeds
        self.E, self.T = len(seeds), scenario.n_tasks
        self.optimizer, self.batch_size, self.epochs = optimizer, batch_size, epochs
        self.backend, self.dtype = backend, np.dtype(dtype)
        heads, off = scenario.heads, scenario.offsets
        self.heads = heads
        flat = lambda X: X.reshape(len(X), -1).astype(self.dtype, copy=False)  # noqa: E731
        tasks = scenario.tasks
        self.X = np.concatenate([flat(t.X_train) for t in tasks])
        self.y = np.concatenate([off[i] + t.y_train for i, t in enumerate(tasks)]).astype(np.int64)
        sizes = [len(t.y_train) for t in tasks]
        self.task = np.repeat(np.arange(self.T), sizes)
        self.lo, self.hi = heads[self.task, 0], heads[self.task, 1]
        ends = np.cumsum(sizes)
        self.task_rows = [np.arange(e - n, e) for n, e in zip(sizes, ends)]
        self.X_test = [flat(t.X_test) for t in tasks]
        self.y_test = [(off[i] + t.y_test).astype(np.int64) for i, t in enumerate(tasks)]
        self.single_head = bool(np.all(heads[:, 0] == 0) and np.all(heads[:, 1] == net.n_outputs))
        self.order_rngs = [stream("order", s.order, 0) for s in seeds]
        self.replay_rngs = [stream("order", s.order, 0, 1) for s in seeds]
        self.probe_rngs = [stream("probes", s.probes, 0) for s in seeds]
        self.counts = {"grad_calls": 0, "steps": 0, "per_sample_grads": 0, "eval_calls": 0}
        self.fused = True      # use HeadView for single-head batches (False: the reference path)

    def loss_grad(self, theta, rows):
        """Mean head cross-entropy over pool rows ``rows: [E, b]`` and its gradient.

        Returns:
            ``(loss [E], grad [E, P])``.
        """
        X, y = self.X[rows], self.y[rows]
        lo, hi = self.lo[rows], self.hi[rows]
        self.counts["grad_calls"] += 1
        if self.single_head:
            return self.net.loss_and_grad(theta, X, y, backend=self.backend)
        view = None
        if self.fused and np.all(lo == lo.flat[0]) and np.all(hi == hi.flat[0]):
            view = head_view(self.net, int(lo.flat[0]), int(hi.flat[0]))
        if view is not None:     # one head for the whole batch: one fused pass on the head's view
            return view.loss_and_grad(theta, X, y, self.backend)
        z = self.net.logits(theta, X, backend=self.backend)
        loss, g = head_cross_entropy(z, y, lo, hi, 1.0 / rows.shape[1])
        return loss.mean(axis=-1), self.net.vjp(theta, X, g, backend=self.backend)

    def accuracy(self, theta, j: int) -> np.ndarray:
        """``[E]`` accuracy on task j's test set (arg-max over task j's head)."""
        self.counts["eval_calls"] += 1
        z = self.net.logits(theta, self.X_test[j], backend=self.backend)
        lo, hi = self.heads[j]
        return (head_predict(z, lo, hi) == self.y_test[j]).mean(axis=-1)


def _member_seeds(seeds) -> list[Seeds]:
    if isinstance(seeds, np.ndarray):
        seeds = seeds.tolist()
    if isinstance(seeds, (list, tuple)):
        if not seeds:
            raise ValueError("seeds is empty: give at least one seed")
        return [as_seeds(s) for s in seeds]
    return [as_seeds(seeds)]


def _evaluate(run, strategy, theta) -> np.ndarray:
    """``[E, T]`` accuracy on every task's test set."""
    return np.stack([run.accuracy(strategy.eval_theta(run, theta, j), j) for j in range(run.T)], axis=1)


# ------------------------------------------------------------------------------------ learn
def learn(scenario: Scenario, strategy="naive", *, net: Net | None = None, seeds=0, hidden=(100, 100),
          epochs: int = 5, batch_size: int = 64, optimizer=None, backend: str | None = None,
          dtype=np.float32, keep_theta: bool = False, blas_threads: int | None = 1,
          progress: bool = False):
    """Train ``strategy`` over the tasks of ``scenario`` and measure the accuracy matrix.

    Args:
        scenario: a :class:`Scenario` (see :mod:`.scenarios`).
        strategy: a strategy object (:mod:`.strategies`) or a name: ``"naive"``, ``"joint"``,
            ``"replay"``, ``"ewc"``, ``"hat"``, ``"single"`` (default options).
        net: the network; default :func:`continual_mlp` with ``hidden`` (gated for HAT).
        seeds: an int / Seeds / dict for one run, or a list of them: a population of E runs in
            lockstep, member e with ``seeds[e]`` (see the module docstring for the streams).
        epochs: passes over each task's training data.
        batch_size: examples of the current task per step (replay adds its own on top).
        optimizer: SGD/Adam instance, name or config; default ``SGD(lr=0.05)`` (HAT's and EWC's
            papers use plain SGD; Adam's per-entry normalisation would undo HAT's gradient
            conditioning on partially used units). Its state is reset at every task.
        backend: engine backend (gated nets avoid a cpu backend that lacks the Gate pass).
        dtype: of θ and the data.
        keep_theta: keep θ after every task (``result.thetas``, ``[T, E, P]``).
        blas_threads: BLAS and OpenMP threads while learning (``threadpoolctl``, restored
            afterwards). The default 1: every GEMM here is tiny (a batch of 64 against a few
            hundred units) and threads cost more than they bring; on a busy 2-core machine the
            default pools made this loop 6–18× slower. None leaves the thread pools alone.
        progress: a tqdm bar over steps.

    Returns:
        :class:`pyquirk.forgetting.results.ContinualResult`.
    """
    backends.get(backend)     # load the backend (and the OpenMP/BLAS it links) before limiting its pools
    with _thread_limit(blas_threads):
        return _learn(scenario, strategy, net, seeds, hidden, epochs, batch_size, optimizer, backend, dtype,
                      keep_theta, progress)


def _thread_limit(n):
    if n is None:
        return contextlib.nullcontext()
    n = check_positive_int(n, "blas_threads")
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:   # threadpoolctl comes with scikit-learn; without it, nothing to limit by
        return contextlib.nullcontext()
    return threadpool_limits(limits=n)          # BLAS and OpenMP pools alike


def _learn(scenario, strategy, net, seeds, hidden, epochs, batch_size, optimizer, backend, dtype, keep_theta,
           progress):
    from tqdm.auto import tqdm

    from .results import ContinualResult
    from .strategies import make_strategy

    t_start = time.perf_counter()
    if not isinstance(scenario, Scenario):
        raise TypeError(f"scenario must be a Scenario, got {type(scenario).__name__}")
    strategy = make_strategy(strategy)
    member_seeds = _member_seeds(seeds)
    if net is None:
        net = continual_mlp(scenario, hidden, gated=strategy.needs_gates)
    if not isinstance(net, Net):
        raise TypeError(f"net must be a pyquirk.nn.Net, got {type(net).__name__}")
    if net.n_outputs != scenario.n_outputs or net.input_shape != (int(np.prod(scenario.input_shape)),):
        raise ValueError(f"net maps {net.input_shape} to {net.n_outputs} outputs; the scenario needs "
                         f"({int(np.prod(scenario.input_shape))},) to {scenario.n_outputs}")
    epochs, B = check_positive_int(epochs, "epochs"), check_positive_int(batch_size, "batch_size")
    opt = SGD(0.05) if optimizer is None else make_optimizer(optimizer)
    run = Run(net, scenario, member_seeds, opt, B, epochs, backend_for(net, backend), dtype)
    E, T = run.E, run.T

    theta0 = np.stack([net.init(s, dtype=dtype) for s in member_seeds])     # [E, P]
    strategy.setup(run, theta0)
    b0 = _evaluate(run, strategy, theta0)                                    # GEM's b̄: [E, T]
    R = np.full((E, T, T), np.nan)
    first = [run.accuracy(strategy.eval_theta(run, theta0, 0), 0)]           # task 0 along the way
    first_x = [0.0]
    losses = np.full((T, epochs, E), np.nan)
    theta = theta0.copy()
    thetas = []
    total = sum(math.ceil(len(strategy.train_indices(run, t)) / B) for t in range(T)) * epochs
    bar = tqdm(total=total, desc=f"learn {strategy.name}", disable=not progress, leave=False)
    for t in range(T):
        theta = strategy.begin_task(run, theta, theta0, t)
        rows = strategy.train_indices(run, t)
        nb = math.ceil(len(rows) / B)
        state = opt.init(theta)
        for ep in range(epochs if len(rows) else 0):
            perm = np.stack([rng.permutation(len(rows)) for rng in run.order_rngs])   # [E, N_t]
            loss_sum = np.zeros(E)
            for j in range(nb):
                batch = rows[perm[:, j * B:(j + 1) * B]]                              # [E, b]
                extra = strategy.replay_indices(run, t)
                if extra is not None:
                    batch = np.concatenate([batch, extra], axis=1)
                loss, grad, mask = strategy.step_grad(run, theta, batch, t, j, nb)
                theta, state = opt.step(theta, grad, state, mask)
                strategy.after_step(run, t)
                loss_sum += loss
                run.counts["steps"] += 1
                bar.update(1)
            losses[t, ep] = loss_sum / nb
            first.append(run.accuracy(strategy.eval_theta(run, theta, 0), 0))
            first_x.append(t + (ep + 1) / epochs)
        strategy.end_task(run, theta, t)
        if keep_theta:
            thetas.append(theta.copy())
        if strategy.evaluated(run, t):
            R[:, t] = _evaluate(run, strategy, theta)
    bar.close()
    run.counts["wall_time_s"] = time.perf_counter() - t_start
    semantics = {
        "strategy": strategy.config(), "scenario": scenario.to_dict(), "setting": scenario.setting,
        "net": repr(net), "optimizer": opt.config(), "epochs": epochs, "batch_size": B,
        "optimizer_reset": "optimizer state reset at every task", "population": E,
        "backend": run.backend, "dtype": np.dtype(dtype).name,
        "R": "R[e, i, j]: test accuracy on task j after training tasks 0..i (member e)",
        "baseline": "accuracy of θ₀ on each task (GEM's b̄, for FWT)",
        "first_task": "test accuracy on task 0 at θ₀ and after every epoch of every task",
        "seed_streams": "θ₀ net.init(seeds[e]); order stream('order', s.order, 0); replay "
                        "stream('order', s.order, 0, 1); Fisher stream('probes', s.probes, 0); "
                        "HAT embeddings stream('init', s.init, 1)",
    }
    return ContinualResult(
        strategy=strategy.name, setting=scenario.setting, R=R, baseline=b0,
        first_task=np.stack(first), first_task_epoch=np.asarray(first_x),
        loss=losses, theta=theta, thetas=np.stack(thetas) if keep_theta else None,
        extras=strategy.summary(run), semantics=semantics,
        seeds={k: [getattr(s, k) for s in member_seeds] for k in Seeds().to_dict()},
        counts=dict(run.counts))


__all__ = ["learn", "continual_mlp", "head_cross_entropy", "head_predict", "HeadView", "head_view", "Run",
           "backend_for", "has_gates"]
