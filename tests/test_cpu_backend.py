"""The native cpu backend (pyquirk._core) against its twin, the reference backend.

Every pass, every net of the catalogue (every layer type and activation), float32 and float64,
E ∈ {1, 3} with shared and per-member data and labels, k ∈ {1, 5}; random shapes by hypothesis;
the exact population and tangent axes also where the batch is sharded and the tangents chunked;
the whole engine suite run under PYQUIRK_BACKEND=cpu and =reference.
"""
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings, strategies as st

import pyquirk
from _tol import assert_close
from nets import ACTS, NETS, problem
from pyquirk.nn import (GELU, AvgPool, Conv1d, Conv2d, Dense, Flatten, Gate, Identity, LeakyReLU, MaxPool, Net,
                        ReLU, Sigmoid, Tanh)

ROOT = Path(__file__).resolve().parents[1]
DTYPES = [np.float32, np.float64]


def require_cpu_backend():
    """Skip when the user switched the native backend off; fail when it is missing otherwise."""
    why = pyquirk.available()["cpu"]
    if why is not None:
        if os.environ.get("PYQUIRK_NATIVE_CPU") == "0":
            pytest.skip(f"the cpu backend is switched off: {why}")
        pytest.fail(f"the cpu backend is not available: {why}")


@pytest.fixture(autouse=True, scope="module")
def _cpu_backend():
    require_cpu_backend()


def both(fn):
    """``fn(backend)`` on cpu and on reference."""
    return fn("cpu"), fn("reference")


def check(name, fn, dtype, what):
    cpu, ref = both(fn)
    if isinstance(cpu, tuple):
        for i, (a, b) in enumerate(zip(cpu, ref)):
            assert a.dtype == b.dtype == dtype, what
            assert_close(a, b, "fast", dtype, what=f"{name} {what}[{i}]")
    else:
        assert cpu.dtype == np.dtype(dtype), what
        assert_close(cpu, ref, "fast", dtype, what=f"{name} {what}")


def member_data(net, X, y, E, rng, dtype):
    """Per-member inputs [E, N, ...] and labels [E, N] (or MSE targets [E, N, C])."""
    Xs = rng.standard_normal((E,) + X.shape).astype(dtype)
    if net.loss_name == "mse":
        ys = rng.standard_normal((E,) + y.shape).astype(dtype)
    else:
        ys = rng.integers(0, net.n_outputs, (E,) + y.shape)
    return Xs, ys


# ------------------------------------------------------------------ every pass, every net
@pytest.mark.parametrize("E", [1, 3])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(NETS))
def test_every_pass_equals_reference(name, dtype, E):
    net, th, X, y = problem(name, n=6, dtype=dtype)
    rng = np.random.default_rng(11)
    theta = th if E == 1 else (th + 0.3 * rng.standard_normal((E, net.n_params))).astype(dtype)
    Xs, ys = member_data(net, X, y, E, rng, dtype)
    cases = [("shared", X, y)] + ([("per-member", Xs, ys), ("per-member labels", X, ys)] if E > 1 else [])
    for data, Xd, yd in cases:
        tag = f"E={E} {data}"
        check(name, lambda b: net.logits(theta, Xd, backend=b), dtype, f"logits {tag}")
        check(name, lambda b: net.loss(theta, Xd, yd, per_sample=True, backend=b), dtype, f"loss {tag}")
        check(name, lambda b: net.loss_and_grad(theta, Xd, yd, backend=b), dtype, f"loss_and_grad {tag}")
        check(name, lambda b: net.input_grad(theta, Xd, yd, backend=b, with_logits=True), dtype,
              f"input_grad {tag}")
        g = rng.standard_normal(net.logits(theta, Xd).shape).astype(dtype)
        check(name, lambda b: net.vjp(theta, Xd, g, backend=b), dtype, f"vjp {tag}")
        for k in (1, 5):
            V = rng.standard_normal((k, net.n_params)).astype(dtype)
            Vk = V[0] if k == 1 else V
            check(name, lambda b: net.hvp(theta, Xd, yd, Vk, backend=b), dtype, f"hvp k={k} {tag}")
        if E > 1:  # per-member tangents
            V = rng.standard_normal((E, 2, net.n_params)).astype(dtype)
            check(name, lambda b: net.hvp(theta, Xd, yd, V, backend=b), dtype, f"hvp per-member V {tag}")


@pytest.mark.parametrize("name", ["mlp-relu", "cnn1d-maxpool", "cnn2d-pools"])
def test_targeted_input_grad_equals_reference(name):
    net, th, X, y = problem(name)
    target = (y + 1) % net.n_outputs
    check(name, lambda b: net.input_grad(th, X, y, target=target, backend=b), np.float64, "targeted input_grad")


# ------------------------------------------------------------------ random shapes
ACTIVATIONS = [ReLU, Tanh, Sigmoid, GELU, Identity, lambda: LeakyReLU(0.2)]


@st.composite
def random_nets(draw):
    """A random MLP, 1-D CNN or 2-D CNN with random widths, kernels, strides, paddings and pools."""
    kind = draw(st.sampled_from(["mlp", "conv1d", "conv2d"]))
    act = lambda: draw(st.sampled_from(ACTIVATIONS))()
    layers = []
    if kind == "mlp":
        shape = (draw(st.integers(1, 9)),)
        for _ in range(draw(st.integers(0, 2))):
            layers += [Dense(draw(st.integers(1, 9))), act()]
            if draw(st.booleans()):
                layers.append(Gate())
    else:
        d = 1 if kind == "conv1d" else 2
        spatial = tuple(draw(st.integers(3, 9)) for _ in range(d))
        shape = (draw(st.integers(1, 3)),) + spatial
        conv = Conv1d if d == 1 else Conv2d
        for _ in range(draw(st.integers(1, 2))):
            ks = tuple(draw(st.integers(1, 3)) for _ in range(d))
            layers += [conv(draw(st.integers(1, 4)), ks, stride=tuple(draw(st.integers(1, 2)) for _ in range(d)),
                            padding=tuple(draw(st.integers(0, 2)) for _ in range(d))), act()]
            if draw(st.booleans()):
                pool = draw(st.sampled_from([MaxPool, AvgPool]))
                pk = tuple(draw(st.integers(1, 2)) for _ in range(d))
                layers.append(pool(pk, stride=tuple(draw(st.integers(1, 2)) for _ in range(d))))
            if draw(st.booleans()):
                layers.append(Gate())
        layers.append(Flatten())
    layers.append(Dense(draw(st.integers(1, 5))))
    loss = draw(st.sampled_from(["ce", "mse"]))
    try:
        net = Net(layers, input_shape=shape, loss=loss)
    except ValueError:  # a kernel that does not fit
        assume(False)
    return net


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(net=random_nets(), n=st.integers(1, 7), k=st.integers(1, 3), E=st.integers(1, 2), seed=st.integers(0, 99))
def test_random_shapes_equal_reference(net, n, k, E, seed):
    rng = np.random.default_rng(seed)
    theta = 0.5 * rng.standard_normal((E, net.n_params))
    X = rng.standard_normal((n,) + net.input_shape)
    y = (rng.standard_normal((n, net.n_outputs)) if net.loss_name == "mse"
         else rng.integers(0, net.n_outputs, n))
    V = rng.standard_normal((k, net.n_params))
    what = repr(net)
    check(what, lambda b: net.logits(theta, X, backend=b), np.float64, "logits")
    check(what, lambda b: net.loss_and_grad(theta, X, y, backend=b), np.float64, "loss_and_grad")
    check(what, lambda b: net.hvp(theta, X, y, V, backend=b), np.float64, "hvp")
    check(what, lambda b: net.input_grad(theta, X, y, backend=b), np.float64, "input_grad")


# ------------------------------------------------------------------ the HVP's skipped primal gradients
# The HVP forms the primal gradient only where an R-term reads it (cpu/passes.cpp,
# primal_grad_needed): below a first Dense + ReLU it skips G_0·W and the activation's slot 0. Each
# net runs first on another problem of the same shapes, so a slot read without being written holds
# that problem's stale values and the comparison with the reference fails.
SKIP_NETS = {
    "relu": [Dense(6), ReLU(), Dense(5), ReLU(), Dense(3)],
    "leaky, identity": [Dense(6), LeakyReLU(0.1), Dense(5), Identity(), Dense(3)],
    "relu then tanh": [Dense(6), ReLU(), Tanh(), Dense(5), Dense(3)],     # a standalone f'' ≠ 0
    "tanh first": [Dense(6), Tanh(), Dense(5), ReLU(), Dense(3)],
    "relu, gate": [Dense(6), ReLU(), Gate(), Dense(3)],
    "conv below": [Conv1d(2, (2,)), ReLU(), Flatten(), Dense(5), ReLU(), Dense(3)],
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", sorted(SKIP_NETS))
def test_hvp_reads_no_skipped_slot(name, dtype):
    shape = (2, 5) if name == "conv below" else (4,)
    net = Net(SKIP_NETS[name], input_shape=shape)
    rng = np.random.default_rng(5)
    draw = lambda: ((0.5 * rng.standard_normal(net.n_params)).astype(dtype),
                    rng.standard_normal((7,) + shape).astype(dtype), rng.integers(0, 3, 7),
                    rng.standard_normal((3, net.n_params)).astype(dtype))
    stale, (th, X, y, V) = draw(), draw()
    net.hvp(*stale, backend="cpu")
    check(name, lambda b: net.hvp(th, X, y, V, backend=b), dtype, "hvp after another problem")


# ------------------------------------------------------------------ exact axes where it gets harder
def sharded_problem(dtype=np.float32):
    """Big enough that the batch is cut into shards (net.flops_per_sample ≈ 11 kFLOP, N = 1600)."""
    net = Net([Dense(64), Tanh(), Dense(64), ReLU(), Dense(5)], input_shape=(20,))
    rng = np.random.default_rng(3)
    theta = (0.3 * rng.standard_normal((3, net.n_params))).astype(dtype)
    X = rng.standard_normal((1600, 20)).astype(dtype)
    y = rng.integers(0, 5, 1600)
    V = rng.standard_normal((5, net.n_params)).astype(dtype)
    return net, theta, X, y, V


@pytest.fixture
def small_tangent_budget():
    from pyquirk import _core
    old = _core.set_tangent_budget(1 << 20)  # 1 MiB: the 5 tangents go in several chunks
    yield
    _core.set_tangent_budget(old)


@pytest.mark.parametrize("dtype", DTYPES)
def test_population_and_tangent_axes_exact_when_sharded_and_chunked(dtype, small_tangent_budget):
    net, T, X, y, V = sharded_problem(dtype)
    grad = net.grad(T, X, y, backend="cpu")
    block = net.hvp(T, X, y, V, backend="cpu")
    for e in range(3):
        assert np.array_equal(grad[e], net.grad(T[e], X, y, backend="cpu"))
        assert np.array_equal(block[e], net.hvp(T[e], X, y, V, backend="cpu"))
        for i in (0, 4):
            assert np.array_equal(block[e, i], net.hvp(T[e], X, y, V[i], backend="cpu"))
    assert_close(block, net.hvp(T, X, y, V, backend="reference"), "fast", dtype, what="sharded hvp")
    assert_close(grad, net.grad(T, X, y, backend="reference"), "fast", dtype, what="sharded grad")


def test_net_hands_ready_arrays_to_the_core_as_they_are():
    """θ, X and int64 labels that the core takes as they are go to it as views (Net._native_ready);
    other inputs are converted by NumPy first. Both ways give the same bits, and the same words for
    a bad label, which only the core checks on this backend."""
    net, T, X, y, V = sharded_problem()
    assert net._native_ready(T[0], X, y) and net._native_ready(T, X, y) and net._native_ready(T, X[None], y[None])
    for theta, data, labels in [(T[0], X.astype(np.float64), y), (T[0], X, y.astype(np.int32)), (T[0].tolist(), X, y),
                                (T[0], X, y[None]), (T[0], X[None], y[None]), (T, X[None], y)]:
        assert not net._native_ready(theta, data, labels)
    slow = dict(X=X.tolist(), y=y.astype(np.int32))
    for theta in (T[0], T):
        assert np.array_equal(net.hvp(theta, X, y, V, backend="cpu"), net.hvp(theta, **slow, V=V, backend="cpu"))
        assert np.array_equal(net.grad(theta, X, y, backend="cpu"), net.grad(theta, **slow, backend="cpu"))
    for labels, words in [(y - 5, r"negative label \(-5\)"), (y + 3, "label 7 but there are only 5 classes")]:
        for form in (labels, labels.astype(np.int32)):
            with pytest.raises(ValueError, match=words):
                net.loss(T[0], X, form, backend="cpu")


def _poisoned(a, index, value=np.nan):
    out = a.copy()
    out[index] = value
    return out


def test_the_threads_find_nan_and_inf_anywhere(small_tangent_budget):
    """The core scans θ, X, V, MSE targets and cotangents inside its items (member × shard × tangent
    chunk): a NaN or an infinity in any member, shard or chunk, shared or per member, is a ValueError
    naming the array, the first in the order theta, X, y, V, g; check_finite=False skips the scan."""
    from pyquirk import _core
    from pyquirk.backends.cpu import net_spec
    net, T, X, y, V = sharded_problem()
    spec = net_spec(net)
    X1, y1, V1 = X[None], y[None], V[None]
    XE, yE, VE = np.stack([X] * 3), np.stack([y] * 3), np.stack([V] * 3)
    cases = [  # (expected name, pass) with one poisoned entry
        ("theta", lambda: _core.loss_and_grad(spec, _poisoned(T, (2, 7)), X1, y1)),
        ("X", lambda: _core.logits(spec, T, _poisoned(X1, (0, 1500, 3), np.inf))),    # shared, last shard
        ("X", lambda: _core.input_grad(spec, T, _poisoned(XE, (1, 900, 0)), yE)),    # member 1
        ("V", lambda: _core.hvp(spec, T, X1, y1, _poisoned(V1, (0, 4, 11), -np.inf))),  # a later chunk
        ("V", lambda: _core.hvp(spec, T, X1, y1, _poisoned(VE, (2, 3, 0)))),
        ("g", lambda: _core.vjp(spec, T, X1, _poisoned(np.ones((3, 1600, 5), T.dtype), (2, 1599, 4)))),
        ("theta", lambda: _core.hvp(spec, _poisoned(T, (1, 0)), _poisoned(X1, (0, 0, 0)), y1, V1)),
        ("X", lambda: _core.hvp(spec, T, _poisoned(X1, (0, 5, 5)), y1, _poisoned(V1, (0, 0, 0)))),
    ]
    for name, call in cases:
        with pytest.raises(ValueError, match=f"^{name} contains NaN or infinite values"):
            call()
    mse, th, Xm, Ym = problem("mlp-mse", n=30, dtype=np.float32)
    with pytest.raises(ValueError, match="^y contains NaN"):
        _core.loss(net_spec(mse), th[None], Xm[None], _poisoned(Ym, (29, 2))[None])
    z = _core.logits(spec, T, _poisoned(X1, (0, 3, 3)), check_finite=False)  # no scan: NaN flows through
    assert np.isnan(z[:, 3]).any() and np.isfinite(np.delete(z, 3, axis=1)).all()
    for bad_T, bad_X, name in ((_poisoned(T[0], 5), X, "theta"), (T[0], _poisoned(X, (9, 9)), "X")):
        with pytest.raises(ValueError, match=f"^{name} contains NaN"):
            net.grad(bad_T, bad_X, y, backend="cpu")


def sharded_passes() -> dict:
    """grad, hvp and input_grad of :func:`sharded_problem` on the cpu backend."""
    net, T, X, y, V = sharded_problem()
    return {"grad": net.grad(T, X, y, backend="cpu"), "hvp": net.hvp(T, X, y, V, backend="cpu"),
            "gx": net.input_grad(T, X, y, backend="cpu")}


def every_activation_passes() -> dict:
    """Every pass, in float32 and float64, of a net per activation wide enough for whole vectors of
    the element-wise loops (and their remainders), and of the conv nets of the catalogue."""
    out = {}
    nets = {**{f"mlp67-{a}": Net([Dense(67), make(), Dense(35), make(), Dense(3)], input_shape=(9,))
               for a, make in ACTS.items()},
            **{name: NETS[name]() for name in ("cnn1d-gelu", "cnn2d-pools", "cnn2d-relu", "cnn1d-gated")}}
    for name, net in nets.items():
        for dtype in DTYPES:
            rng = np.random.default_rng(5)
            theta = (0.5 * rng.standard_normal(net.n_params)).astype(dtype)
            X = rng.standard_normal((29,) + net.input_shape).astype(dtype)
            y = rng.integers(0, net.n_outputs, 29)
            V = rng.standard_normal((3, net.n_params)).astype(dtype)
            key = f"{name} {np.dtype(dtype).name}"
            out[f"{key} logits"] = net.logits(theta, X, backend="cpu")
            out[f"{key} loss"], out[f"{key} grad"] = net.loss_and_grad(theta, X, y, backend="cpu")
            out[f"{key} hvp"] = net.hvp(theta, X, y, V, backend="cpu")
            out[f"{key} gx"] = net.input_grad(theta, X, y, backend="cpu")
    return out


def sharded_passes_in_subprocess(tmp_path, env: dict, check: str = "", passes: str = "sharded_passes") -> dict:
    """``passes()`` (a function of this module, :func:`sharded_passes` by default) in a fresh process
    with ``env`` added to the environment (after the statement ``check``, run there first)."""
    code = (f"import sys; sys.path.insert(0, {str(ROOT / 'tests')!r})\n"
            f"import numpy as np\nfrom test_cpu_backend import {passes}\n"
            f"{check}\n"
            f"np.savez({str(tmp_path / 'passes.npz')!r}, **{passes}())\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600,
                         env={**os.environ, **env})
    assert out.returncode == 0, out.stderr
    return dict(np.load(tmp_path / "passes.npz"))


def test_results_do_not_depend_on_the_thread_count(tmp_path):
    """One OpenMP thread (a subprocess) gives the same bits as the default team."""
    one = sharded_passes_in_subprocess(tmp_path, {"OMP_NUM_THREADS": "1"})
    for key, value in sharded_passes().items():
        assert np.array_equal(one[key], value), key


def test_avx2_loops_give_the_baseline_bits(tmp_path):
    """The element-wise loops' AVX2 copy (activations.cpp) and the baseline copy
    (PYQUIRK_AVX2_LOOPS=0, a subprocess) agree bit for bit, for every activation and layer kind."""
    from pyquirk import _core
    has_avx2 = " avx2" in Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else False
    if _core.build_info()["compiler"].startswith("GCC"):  # the AVX2 copy is built by GCC only
        assert _core.build_info()["avx2_loops"] == (has_avx2 and os.environ.get("PYQUIRK_AVX2_LOOPS") != "0")
    base = sharded_passes_in_subprocess(
        tmp_path, {"PYQUIRK_AVX2_LOOPS": "0"}, passes="every_activation_passes",
        check="from pyquirk._native import load_core; assert not load_core()[0].build_info()['avx2_loops']")
    here = every_activation_passes()
    assert base.keys() == here.keys()
    for key, value in here.items():
        assert np.array_equal(base[key], value), key


# ------------------------------------------------------------------ threads and processes
def _workload():
    """Passes over a sharded net and a conv net: name -> zero-argument callable."""
    net, T, X, y, V = sharded_problem()
    cnn, th, Xc, yc = problem("cnn2d-pools", n=40)
    Vc = np.random.default_rng(8).standard_normal((3, cnn.n_params))
    return {"grad": lambda: net.grad(T, X, y, backend="cpu"),
            "hvp": lambda: net.hvp(T[0], X, y, V, backend="cpu"),
            "input_grad": lambda: net.input_grad(T, X[:200], y[:200], backend="cpu"),
            "cnn hvp": lambda: cnn.hvp(th, Xc, yc, Vc, backend="cpu"),
            "cnn logits": lambda: cnn.logits(th, Xc, backend="cpu")}


def test_concurrent_calls_from_python_threads():
    """Passes from four Python threads at once (the GIL is released) give the sequential bits."""
    from concurrent.futures import ThreadPoolExecutor
    work = _workload()
    expected = {name: fn() for name, fn in work.items()}
    jobs = [name for name in work for _ in range(6)]
    np.random.default_rng(0).shuffle(jobs)
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda name: (name, work[name]()), jobs))
    for name, value in results:
        assert np.array_equal(value, expected[name]), name


def test_passes_work_in_a_forked_child():
    """After the parent has used its threads (and OpenMP), a fork() child still computes (no hang)."""
    import multiprocessing as mp
    if "fork" not in mp.get_all_start_methods():
        pytest.skip("no fork() here")
    work = _workload()
    expected = {name: fn() for name, fn in work.items()}
    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=lambda q: q.put({name: fn() for name, fn in work.items()}), args=(queue,))
    child.start()
    got = queue.get(timeout=300)
    child.join(60)
    assert child.exitcode == 0
    for name, value in got.items():
        assert np.array_equal(value, expected[name]), name


# ------------------------------------------------------------------ registry, fallbacks, BLAS
def test_cpu_is_the_automatic_choice(monkeypatch):
    monkeypatch.delenv("PYQUIRK_BACKEND", raising=False)
    if pyquirk.available()["cuda"] is None:
        pytest.skip("cuda outranks cpu here")
    assert pyquirk.backends.resolve() == "cpu"


def test_unknown_layer_types_run_on_the_reference_with_a_warning():
    class MyTanh(Tanh):  # a subclass may change the math: it is not a Tanh to the native core
        pass

    net = Net([Dense(5), MyTanh(), Dense(3)], input_shape=(4,))
    rng = np.random.default_rng(0)
    th, X, y = rng.standard_normal(net.n_params), rng.standard_normal((6, 4)), rng.integers(0, 3, 6)
    with pytest.warns(RuntimeWarning, match="MyTanh"):
        g = net.grad(th, X, y, backend="cpu")
    assert np.array_equal(g, net.grad(th, X, y, backend="reference"))
    for bad_th, bad_X, bad_V, name in ((_poisoned(th, 2), X, th, "theta"), (th, _poisoned(X, (1, 1), np.inf), th, "X"),
                                       (th, X, _poisoned(th, 0), "V")):
        with pytest.raises(ValueError, match=f"^{name} contains NaN"):  # NumPy scans what the core would have
            net.hvp(bad_th, bad_X, y, bad_V, backend="cpu")
    with pytest.raises(ValueError, match="^g contains NaN"):
        net.vjp(th, X, np.full((6, 3), np.nan), backend="cpu")
    for bad_y, words in ((y - 3, "negative label"), (y + 1, "only 3 classes")):  # and the label range
        for call in (net.loss, net.grad, net.input_grad, lambda *a, **k: net.hvp(*a, V=th, **k)):
            with pytest.raises(ValueError, match=words):
                call(th, X, bad_y, backend="cpu")


def test_build_info_names_the_blas_and_threads_are_restored():
    from pyquirk import _core
    info = _core.build_info()["blas"]
    assert "cython_blas" in info
    threadpoolctl = pytest.importorskip("threadpoolctl")
    net, T, X, y, V = sharded_problem()

    def scipy_threads():
        return [p["num_threads"] for p in threadpoolctl.threadpool_info()
                if "scipy" in p.get("filepath", "") and p.get("internal_api") == "openblas"]

    before = scipy_threads()
    net.hvp(T, X, y, V, backend="cpu")
    assert scipy_threads() == before


def test_workspace_release_and_reuse():
    from pyquirk import _core
    net, th, X, y = problem("cnn2d-pools")
    a = net.hvp(th, X, y, np.eye(net.n_params)[:4], backend="cpu")
    _core.release_workspace()
    assert np.array_equal(a, net.hvp(th, X, y, np.eye(net.n_params)[:4], backend="cpu"))


def test_net_spec_matches_layout_and_fuses_activations():
    from pyquirk.backends import cpu
    net = NETS["cnn1d-gated"]()
    spec = cpu.net_spec(net)
    assert spec is cpu.net_spec(net)  # cached per net
    assert list(spec.param_offsets) == [s.offset for s in net.layout]
    assert spec.units.count(";") == 3  # conv, gate+tanh, dense: Flatten vanishes, Tanh is fused
    assert spec.workspace_bytes(100, 4, 8) > spec.workspace_bytes(100, 0, 8) > 0


def test_net_spec_cache_leaves_with_its_net():
    """The description cache is keyed by id(net): an entry leaves with its net, and a new net that
    reuses a dead one's address gets its own description."""
    import gc
    from pyquirk.backends import cpu
    gc.collect()  # (nets of earlier tests caught in reference cycles leave now, not in the loop)
    before = len(cpu._specs)
    for width in (3, 5, 7, 3):
        net = Net([Dense(width), ReLU(), Dense(3)], input_shape=(4,))
        th = net.init(0)
        X = np.random.default_rng(0).standard_normal((4, 4)).astype(np.float32)
        y = np.arange(4) % 3
        assert_close(net.grad(th, X, y, backend="cpu"), net.grad(th, X, y, backend="reference"), "fast",
                     np.float32, what=f"grad of a fresh net ({width})")
        assert cpu.net_spec(net).n_params == net.n_params
        del net
        gc.collect()
    assert len(cpu._specs) == before


# ------------------------------------------------------------------ the engine suite, on each backend
@pytest.mark.parametrize("backend", ["reference", "cpu"])
def test_engine_suite_passes_on_backend(backend):
    """tests/test_engine.py (finite differences, symmetries, exact population and tangent axes,
    validation) with every pass resolved to ``backend`` through PYQUIRK_BACKEND."""
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider",
                          str(ROOT / "tests" / "test_engine.py")],
                         capture_output=True, text=True, cwd=ROOT, timeout=1800,
                         env={**os.environ, "PYQUIRK_BACKEND": backend})
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
    assert " passed" in out.stdout
