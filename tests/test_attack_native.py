"""The native attack loop (``_core.attack_loop``, csrc/cpu/attack.h): every PGD iteration in one call.

- It equals the Python loop of :func:`pyquirk.adversarial.attacks._iterate` on the same backend bit
  for bit (every field of the result and the call counts), for both dtypes and norms, untargeted and
  targeted, restarts and ε stacked as members, MLPs and conv nets, bounded and unbounded inputs.
- On the L2 norm (a step continuous in the gradient) it agrees with the reference backend to the
  tolerance table.
- Malformed arguments raise TypeError/ValueError before any arithmetic; a gradient that turns
  non-finite mid-loop raises the loop's ValueError.
"""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyquirk.adversarial import Model, pgd
from pyquirk.nn import Net
from pyquirk.nn.layers import Conv2d, Dense, Flatten, MaxPool, ReLU, Tanh
from _tol import assert_close
from test_adversarial import _mlp, _problem
from test_cpu_backend import require_cpu_backend

DTYPES = [np.float32, np.float64]
FIELDS = ("x_adv", "x_best", "success", "success_best", "margin", "margin_best", "norm_adv", "norm_best",
          "restart_margin", "chosen_restart", "min_eps", "x_min")


@pytest.fixture(scope="module")
def core():
    require_cpu_backend()
    from pyquirk._native import load_core
    return load_core()[0]


def _python_loop(monkeypatch):
    """Make Model.attack_loop decline, so _iterate runs its Python loop on the same backend."""
    monkeypatch.setattr(Model, "attack_loop", lambda self, *a, **k: None)


def _same(native, python):
    for f in FIELDS:
        np.testing.assert_array_equal(getattr(native, f), getattr(python, f), err_msg=f)
    drop = lambda c: {k: v for k, v in c.items() if k != "wall_time_s"}  # noqa: E731
    assert drop(native.counts) == drop(python.counts)


def _cnn():
    return Net([Conv2d(3, (3, 3), padding=1), ReLU(), MaxPool(2), Flatten(), Dense(12), Tanh(), Dense(4)],
               input_shape=(2, 6, 6))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("norm, eps", [("linf", [0.03, 0.3]), ("l2", [0.3, 2.0])])
@pytest.mark.parametrize("target", [None, "random"])
@pytest.mark.parametrize("arch", ["mlp", "cnn"])
def test_native_loop_equals_the_python_loop(core, monkeypatch, dtype, norm, eps, target, arch):
    net = _mlp() if arch == "mlp" else _cnn()
    model, X, y = _problem(net, n=40, seed=3, dtype=dtype)
    model = Model(net, model.theta, model.bounds, backend="cpu")
    kw = dict(norm=norm, steps=6, restarts=2, seed=5, target=target, refine=2)
    native = pgd(model, X, y, eps, **kw)
    _python_loop(monkeypatch)
    _same(native, pgd(model, X, y, eps, **kw))


@pytest.mark.parametrize("compat, norm", [("torchattacks", "linf"), ("foolbox", "linf"), ("foolbox", "l2")])
def test_native_loop_equals_the_python_loop_in_compat_modes(core, monkeypatch, compat, norm):
    """The compat modes whose step is pyquirk's own run natively too (torchattacks' own L2 step does not)."""
    net = _mlp()
    model, X, y = _problem(net, n=30, seed=4)
    model = Model(net, model.theta, model.bounds, backend="cpu")
    kw = dict(norm=norm, steps=5, seed=2, compat=compat, restarts=2 if compat == "foolbox" else 1)
    calls = []
    real = Model.attack_loop
    monkeypatch.setattr(Model, "attack_loop", lambda self, *a, **k: calls.append(real(self, *a, **k)) or calls[-1])
    native = pgd(model, X, y, [0.1, 0.3] if norm == "linf" else [0.5, 1.0], **kw)
    assert calls and all(c is not None for c in calls)        # the native loop did run
    _python_loop(monkeypatch)
    _same(native, pgd(model, X, y, [0.1, 0.3] if norm == "linf" else [0.5, 1.0], **kw))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(n=st.integers(1, 30), steps=st.integers(1, 4), K=st.integers(1, 3), R=st.integers(1, 2),
       norm=st.sampled_from(["linf", "l2"]), bounded=st.booleans(), kind=st.sampled_from(["pgd", "bim", "fgsm"]),
       dtype=st.sampled_from(DTYPES), seed=st.integers(0, 2**16))
def test_native_loop_equals_the_python_loop_on_any_shape(core, monkeypatch, n, steps, K, R, norm, bounded, kind,
                                                         dtype, seed):
    net = _mlp(d_in=(3, 4), hidden=9, classes=5)
    lo, hi = (0.0, 1.0) if bounded else (-np.inf, np.inf)
    model, X, y = _problem(net, n=n, seed=seed, dtype=dtype)
    model = Model(net, model.theta, (lo, hi), backend="cpu")
    eps = list(np.random.default_rng(seed).uniform(0, 0.5, K))
    kw = dict(kind=kind, norm=norm, seed=seed)
    if kind != "fgsm":
        kw.update(steps=steps, restarts=R if kind == "pgd" else 1)
    from pyquirk.adversarial import attack
    native = attack(model, X, y, eps, **kw)
    with monkeypatch.context() as m:
        _python_loop(m)
        python = attack(model, X, y, eps, **kw)
    _same(native, python)


@pytest.mark.parametrize("dtype", DTYPES)
def test_native_l2_loop_agrees_with_the_reference(core, dtype):
    net = _mlp(act=Tanh)
    model, X, y = _problem(net, n=24, seed=2, dtype=dtype)
    kw = dict(norm="l2", steps=3, random_start=False)
    fast = pgd(Model(net, model.theta, model.bounds, backend="cpu"), X, y, [0.5, 1.5], **kw)
    ref = pgd(Model(net, model.theta, model.bounds, backend="reference"), X, y, [0.5, 1.5], **kw)
    assert_close(fast.x_adv, ref.x_adv, "fast", dtype, "native PGD-L2 iterate vs reference")
    assert_close(fast.margin, ref.margin, "fast", dtype, "native PGD-L2 margin vs reference")


def _loop_args(core, dtype=np.float32, E=2, N=5):
    net = _mlp(d_in=(3, 4), hidden=6, classes=4)
    from pyquirk.backends.cpu import net_spec
    rng = np.random.default_rng(0)
    x0 = rng.uniform(0, 1, (N, 3, 4)).astype(dtype)
    args = dict(spec=net_spec(net), theta=net.init(0, dtype=dtype), x0=x0, labels=rng.integers(0, 4, N),
                x=np.repeat(x0[None], E, 0), alpha=np.full((E, N), 0.01), eps=np.full((E, N), 0.1))
    return args, dict(steps=3, norm="linf", targeted=False, lo=0.0, hi=1.0, l2_floor=1e-12)


def _replace(d, **kw):
    out = dict(d)
    out.update(kw)
    return out


MALFORMED = [
    (lambda a: _replace(a, theta=a["theta"].astype(np.float64)), {}, TypeError),           # mixed dtypes
    (lambda a: _replace(a, theta=a["theta"][:-1]), {}, ValueError),                        # wrong P
    (lambda a: _replace(a, x=a["x"][:, :, ::2]), {}, ValueError),                          # not contiguous
    (lambda a: _replace(a, x=a["x"][0]), {}, ValueError),                                  # wrong rank
    (lambda a: _replace(a, x=a["x"][:, :0]), {}, ValueError),                              # empty
    (lambda a: _replace(a, x0=a["x0"][:-1]), {}, ValueError),                              # N mismatch
    (lambda a: _replace(a, x=a["x0"][None]), {}, ValueError),                              # x aliases x0
    (lambda a: _replace(a, labels=a["labels"].astype(np.int32)), {}, TypeError),
    (lambda a: _replace(a, labels=a["labels"] + 4), {}, ValueError),                       # class out of range
    (lambda a: _replace(a, eps=-a["eps"]), {}, ValueError),
    (lambda a: _replace(a, alpha=np.full_like(a["alpha"], np.nan)), {}, ValueError),
    (lambda a: _replace(a, alpha=a["alpha"][:1]), {}, ValueError),                         # E mismatch
    (lambda a: _replace(a, eps=a["eps"].astype(np.float32)), {}, TypeError),
    (lambda a: _replace(a, theta=np.full_like(a["theta"], np.inf)), {}, ValueError),       # non-finite θ
    (lambda a: _replace(a, x=np.full_like(a["x"], np.nan)), {}, ValueError),               # non-finite start
    (lambda a: _replace(a, x=a["x"].tolist()), {}, TypeError),                             # not an array
    (lambda a: a, {"steps": 0}, ValueError),
    (lambda a: a, {"norm": "l1"}, ValueError),
    (lambda a: a, {"lo": 1.0, "hi": 0.0}, ValueError),
    (lambda a: a, {"l2_floor": 0.0}, ValueError),
]


@pytest.mark.parametrize("bad, opts, error", MALFORMED)
def test_malformed_arguments_raise(core, bad, opts, error):
    args, kw = _loop_args(core)
    with pytest.raises(error):
        core.attack_loop(**bad(args), **_replace(kw, **opts))


def test_read_only_start_and_mse_nets_are_refused(core):
    args, kw = _loop_args(core)
    args["x"].setflags(write=False)
    with pytest.raises(ValueError, match="writeable"):
        core.attack_loop(**args, **kw)
    from pyquirk.backends.cpu import net_spec
    mse = Net([Flatten(), Dense(4)], input_shape=(3, 4), loss="mse")
    args, kw = _loop_args(core)
    with pytest.raises(ValueError, match="cross-entropy"):
        core.attack_loop(**_replace(args, spec=net_spec(mse), theta=mse.init(0)), **kw)


def test_a_gradient_that_overflows_mid_loop_raises(core):
    """Finite θ and start, but logits that overflow once the iterate moves: the loop's own check."""
    args, kw = _loop_args(core)
    theta = args["theta"] * np.float32(1e18)
    assert np.isfinite(theta).all()
    with np.errstate(all="ignore"), pytest.raises(ValueError, match="NaN or infinite"):
        core.attack_loop(**_replace(args, theta=theta), **kw)
