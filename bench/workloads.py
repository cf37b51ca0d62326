"""The benchmark workloads of DESIGN §5, with fixed shapes.

Each workload builds its data once and yields (implementation name, callable, items per call);
the callables bind their data as default arguments, so they may be called after the generator moves on.
pyquirk runs on every available backend; peers run when installed. All float32.
"""
from __future__ import annotations

import numpy as np

import pyquirk
from pyquirk.nn import Dense, Net, ReLU
from pyquirk.train import SGD

from .peers import peers

MLPS = {"784-512-512-10": (784, 512, 512, 10, 1024), "40-100-100-10": (40, 100, 100, 10, 1000)}


def mlp(sizes) -> Net:
    layers = []
    for o in sizes[1:-1]:
        layers += [Dense(o), ReLU()]
    return Net(layers + [Dense(sizes[-1])], input_shape=(sizes[0],))


def gemm_units(sizes, N):
    """FLOPs of one N×in×out GEMM per layer: ``2·N·in·out`` for each layer."""
    return [2 * N * i * o for i, o in zip(sizes[:-1], sizes[1:])]


def flops(sizes, N, kind, k=1):
    """Useful FLOPs of a pass on an MLP, counting GEMMs only (element-wise work is ignored).

    forward: 1 GEMM per layer; grad: forward + 2 per layer (1 for the first: no input grad);
    HVP: primal forward+backward (2 first, 3 others) + per tangent R-forward and R-backward
    (2 first, 6 others).
    """
    u = gemm_units(sizes, N)
    first, rest = u[0], sum(u[1:])
    if kind == "forward":
        return first + rest
    if kind == "grad":
        return 2 * first + 3 * rest
    if kind == "input_grad":
        return 3 * (first + rest)
    if kind == "hvp":
        return 2 * first + 3 * rest + k * (2 * first + 6 * rest)
    raise ValueError(kind)


def _problem(sizes, N, seed=0):
    net = mlp(sizes)
    rng = np.random.default_rng(seed)
    theta = net.init(seed)
    X = rng.standard_normal((N, sizes[0])).astype(np.float32)
    y = rng.integers(0, sizes[-1], N)
    return net, theta, X, y


def _backends():
    return [name for name, why in pyquirk.available().items() if why is None]


def hvp(mlp_name, k=1):
    """HVP (k=1) or a block of k tangents sharing one primal pass."""
    *sizes, N = MLPS[mlp_name]
    net, theta, X, y = _problem(sizes, N)
    V = np.random.default_rng(1).standard_normal((k, net.n_params)).astype(np.float32)
    for b in _backends():
        yield f"pyquirk-{b}", (lambda b=b: net.hvp(theta, X, y, V if k > 1 else V[0], backend=b)), k
    for p in peers():
        f = p["make"](sizes)
        a = p["asarray"]
        th, Xp, yp, Vp = a(theta), a(X), a(y), a(V)
        if k == 1:
            yield p["name"], (lambda f=f, p=p, th=th, Xp=Xp, yp=yp, Vp=Vp: p["sync"](f["hvp"](th, Xp, yp, Vp[0]))), 1
        else:
            yield p["name"] + " vmap", (lambda f=f, p=p, th=th, Xp=Xp, yp=yp, Vp=Vp:
                                        p["sync"](f["hvp_block"](th, Xp, yp, Vp))), k


def grid_point(mlp_name):
    """Loss at one point θ + αd₁ + βd₂ of a 2-D landscape (the naive per-point evaluation)."""
    *sizes, N = MLPS[mlp_name]
    net, theta, X, y = _problem(sizes, N)
    d1, d2 = np.random.default_rng(2).standard_normal((2, net.n_params)).astype(np.float32)
    for b in _backends():
        yield f"pyquirk-{b}", (lambda b=b: net.loss(theta + 0.3 * d1 - 0.2 * d2, X, y, backend=b)), 1
    for p in peers():
        f, a = p["make"](sizes), p["asarray"]
        th, D1, D2, Xp, yp = a(theta), a(d1), a(d2), a(X), a(y)
        yield p["name"], (lambda f=f, p=p, th=th, D1=D1, D2=D2, Xp=Xp, yp=yp:
                          p["sync"](f["loss"](th + 0.3 * D1 - 0.2 * D2, Xp, yp))), 1


def pgd_step(mlp_name, eps=0.3, alpha=0.01):
    """One L∞ PGD step: input gradient, sign step, projection onto the ε-ball, clip to [0, 1]."""
    *sizes, N = MLPS[mlp_name]
    net, theta, _, y = _problem(sizes, N)
    x0 = np.random.default_rng(3).uniform(0, 1, (N, sizes[0])).astype(np.float32)

    def step(grad_fn, clip, sign, x):
        g = grad_fn(x)
        return clip(clip(x + alpha * sign(g), x0c - eps, x0c + eps), 0.0, 1.0)

    x0c = x0
    for b in _backends():
        yield f"pyquirk-{b}", (lambda b=b: step(lambda x: net.input_grad(theta, x, y, backend=b),
                                                  np.clip, np.sign, x0)), N
    for p in peers():
        f, a = p["make"](sizes), p["asarray"]
        th, X0, yp = a(theta), a(x0), a(y)
        if "torch" in p:
            t = p["torch"]
            yield p["name"], (lambda f=f, t=t, th=th, X0=X0, yp=yp: t.clamp(t.clamp(X0 + alpha * t.sign(f["input_grad"](th, X0, yp)),
                                                          X0 - eps, X0 + eps), 0, 1)), N
        else:
            import jax.numpy as jnp
            yield p["name"], (lambda f=f, p=p, th=th, X0=X0, yp=yp: p["sync"](jnp.clip(jnp.clip(
                X0 + alpha * jnp.sign(f["input_grad"](th, X0, yp)), X0 - eps, X0 + eps), 0, 1))), N


def population_step(E=64, batch=100, lr=0.1):
    """One SGD step of E members of MLP 40-100-100-10, each on its own batch of 100.

    Each library makes the update its own way: pyquirk with its optimizer (``SGD.step``), torch with
    one ``torch.add(θ, g, alpha=-lr)``, JAX inside the jitted step (``bench.peers``).
    """
    sizes = (40, 100, 100, 10)
    net = mlp(sizes)
    rng = np.random.default_rng(4)
    T = np.stack([net.init(e) for e in range(E)])
    X = rng.standard_normal((E, batch, 40)).astype(np.float32)
    y = rng.integers(0, 10, (E, batch))
    opt = SGD(lr)
    state = opt.init(T)
    for b in _backends():
        yield f"pyquirk-{b}", (lambda b=b: opt.step(T, net.grad(T, X, y, backend=b), state)[0]), E
    for p in peers():
        f, a = p["make"](sizes), p["asarray"]
        Tp, Xp, yp = a(T), a(X), a(y)
        yield p["name"] + " vmap", (lambda f=f, p=p, Tp=Tp, Xp=Xp, yp=yp: p["sync"](f["pop_sgd"](Tp, Xp, yp, lr))), E


WORKLOADS = {
    "hvp 784-512-512-10 N=1024": (lambda: hvp("784-512-512-10"), flops((784, 512, 512, 10), 1024, "hvp")),
    "hvp block k=16 784-512-512-10 N=1024": (lambda: hvp("784-512-512-10", 16),
                                             flops((784, 512, 512, 10), 1024, "hvp", 16)),
    "hvp 40-100-100-10 N=1000": (lambda: hvp("40-100-100-10"), flops((40, 100, 100, 10), 1000, "hvp")),
    "hvp block k=16 40-100-100-10 N=1000": (lambda: hvp("40-100-100-10", 16),
                                            flops((40, 100, 100, 10), 1000, "hvp", 16)),
    "grid point 784-512-512-10 N=1024": (lambda: grid_point("784-512-512-10"),
                                         flops((784, 512, 512, 10), 1024, "forward")),
    "grid point 40-100-100-10 N=1000": (lambda: grid_point("40-100-100-10"),
                                        flops((40, 100, 100, 10), 1000, "forward")),
    "PGD step 784-512-512-10 N=1024": (lambda: pgd_step("784-512-512-10"),
                                       flops((784, 512, 512, 10), 1024, "input_grad")),
    "PGD step 40-100-100-10 N=1000": (lambda: pgd_step("40-100-100-10"),
                                      flops((40, 100, 100, 10), 1000, "input_grad")),
    "population SGD step E=64 40-100-100-10 B=100": (lambda: population_step(),
                                                    64 * flops((40, 100, 100, 10), 100, "grad")),
}
