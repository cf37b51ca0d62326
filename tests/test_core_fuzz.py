"""Fuzzing the bindings of pyquirk._core with malformed input: Python exceptions, never a crash.

Wrong dtypes, byte order, non-contiguous and misaligned arrays, wrong ranks and shapes, zero
sizes, NaN/inf, mismatched member counts E and tangent counts k, out-of-range labels, bad net
descriptions, and a seeded stream of random arrays. The cases run in a subprocess (this file run
as a script), so a segmentation fault fails the test instead of killing pytest.
"""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

if os.environ.get("PYQUIRK_NATIVE_CPU") == "0":  # the native passes switched off, see pyquirk/backends/cpu.py
    pytest.skip("native CPU passes switched off (PYQUIRK_NATIVE_CPU=0)", allow_module_level=True)

ALLOWED = ("ok", "TypeError", "ValueError")
USES = {"logits": "theta X", "loss": "theta X y", "loss_and_grad": "theta X y", "vjp": "theta X g",
        "hvp": "theta X y V", "input_grad": "theta X y"}


# ------------------------------------------------------------------ the cases (run in the child)
def _nets(core):
    mlp = core.net_spec([{"kind": "dense", "out": 6}, {"kind": "tanh"}, {"kind": "dense", "out": 3}], [4], "ce")
    cnn = core.net_spec([{"kind": "conv", "out": 3, "kernel": [2, 3], "stride": [1, 2], "padding": [1, 1]},
                         {"kind": "relu"}, {"kind": "maxpool", "kernel": [2, 2], "stride": [1, 1]},
                         {"kind": "gate"}, {"kind": "flatten"}, {"kind": "dense", "out": 3}], [2, 7, 8], "mse")
    return {"mlp": (mlp, (4,)), "cnn": (cnn, (2, 7, 8))}


def _valid(spec, feat, dtype=np.float32, E=2, N=5, k=3, mse=False, seed=0):
    rng = np.random.default_rng(seed)
    C, P = spec.n_outputs, spec.n_params
    y = rng.standard_normal((E, N, C)).astype(dtype) if mse else rng.integers(0, C, (E, N))
    return {"theta": rng.standard_normal((E, P)).astype(dtype), "X": rng.standard_normal((E, N) + feat).astype(dtype),
            "y": y, "V": rng.standard_normal((E, k, P)).astype(dtype), "g": rng.standard_normal((E, N, C)).astype(dtype)}


def _misaligned(a):
    buf = np.zeros(a.nbytes + 1, dtype=np.uint8)
    out = np.frombuffer(buf.data, dtype=a.dtype, count=a.size, offset=1).reshape(a.shape)
    out[...] = a
    return out


def _noncontig(a):
    wide = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), dtype=a.dtype)
    wide[..., ::2] = a
    return wide[..., ::2]


def _with(arr, value):
    out = arr.copy()
    out.flat[out.size // 2] = value
    return out


def _calls(core, spec, args):
    """Every pass with the argument dict ``args``."""
    t, X, y, V, g = args["theta"], args["X"], args["y"], args["V"], args["g"]
    return {"logits": lambda: core.logits(spec, t, X), "loss": lambda: core.loss(spec, t, X, y),
            "loss_and_grad": lambda: core.loss_and_grad(spec, t, X, y), "vjp": lambda: core.vjp(spec, t, X, g),
            "hvp": lambda: core.hvp(spec, t, X, y, V), "input_grad": lambda: core.input_grad(spec, t, X, y)}


def _mutations(base):
    """(name, argument to replace, replacement) for one valid argument set."""
    t, X, y, V, g = base["theta"], base["X"], base["y"], base["V"], base["g"]
    other = np.float64 if t.dtype == np.float32 else np.float32
    out = []
    for name, a in (("theta", t), ("X", X), ("V", V), ("g", g)):
        out += [(f"{name} int64", name, a.astype(np.int64)), (f"{name} float16", name, a.astype(np.float16)),
                (f"{name} other float", name, a.astype(other)), (f"{name} complex", name, a.astype(np.complex64)),
                (f"{name} bool", name, a.astype(bool)), (f"{name} object", name, a.astype(object)),
                (f"{name} big-endian", name, a.astype(a.dtype.newbyteorder(">"))),
                (f"{name} list", name, a.tolist()), (f"{name} None", name, None),
                (f"{name} scalar", name, np.float32(1)), (f"{name} 0-d", name, np.array(1.0, dtype=a.dtype)),
                (f"{name} rank+1", name, a[None]), (f"{name} rank-1", name, a[0]),
                (f"{name} empty lead", name, a[:0]), (f"{name} empty last", name, a[..., :0]),
                (f"{name} non-contiguous", name, _noncontig(a)), (f"{name} fortran", name, np.asfortranarray(a)),
                (f"{name} misaligned", name, _misaligned(a)), (f"{name} nan", name, _with(a, np.nan)),
                (f"{name} inf", name, _with(a, -np.inf)), (f"{name} 3 members", name, np.concatenate([a, a[:1]])),
                (f"{name} last dim +1", name, np.concatenate([a, a[..., :1]], axis=-1))]
    out += [("theta E=0", "theta", t[:0]), ("X N=0", "X", X[:, :0]), ("V k=0", "V", V[:, :0]),
            ("X N+1", "X", np.concatenate([X, X[:, :1]], axis=1)),
            ("X wrong features", "X", X.reshape(X.shape[:2] + (-1,))[..., :3].copy())]
    if y.dtype.kind == "i":
        out += [("y label C", "y", _with(y, 3)), ("y label -1", "y", _with(y, -1)), ("y label huge", "y", _with(y, 2**62)),
                ("y int32", "y", y.astype(np.int32)), ("y float", "y", y.astype(np.float32)),
                ("y uint64", "y", y.astype(np.uint64)), ("y rank 1", "y", y[0]), ("y rank 3", "y", y[..., None]),
                ("y N-1", "y", y[:, :-1]), ("y 3 members", "y", np.concatenate([y, y[:1]])),
                ("y non-contiguous", "y", _noncontig(y)), ("y empty", "y", y[:, :0])]
    else:
        out += [("y nan", "y", _with(y, np.nan)), ("y int", "y", y.astype(np.int64)), ("y rank 2", "y", y[..., 0]),
                ("y C+1", "y", np.concatenate([y, y[..., :1]], axis=-1)), ("y other float", "y", y.astype(other))]
    return out


def _specs(core):
    """Malformed net descriptions."""
    d = {"kind": "dense", "out": 3}
    return {
        "no layers": lambda: core.net_spec([], [4], "ce"),
        "unknown kind": lambda: core.net_spec([{"kind": "softmaxx"}], [4], "ce"),
        "kind not str": lambda: core.net_spec([{"kind": 3}], [4], "ce"),
        "record not dict": lambda: core.net_spec(["dense"], [4], "ce"),
        "negative out": lambda: core.net_spec([{"kind": "dense", "out": -2}], [4], "ce"),
        "huge out": lambda: core.net_spec([{"kind": "dense", "out": 2**62}], [2**40], "ce"),
        "out not int": lambda: core.net_spec([{"kind": "dense", "out": "3"}], [4], "ce"),
        "no params": lambda: core.net_spec([{"kind": "flatten"}, {"kind": "relu"}], [4], "ce"),
        "dense on 2-D": lambda: core.net_spec([d], [2, 4], "ce"),
        "pool on flat": lambda: core.net_spec([{"kind": "maxpool", "kernel": [2], "stride": [2]}, d], [4], "ce"),
        "kernel too big": lambda: core.net_spec([{"kind": "conv", "out": 2, "kernel": [9], "stride": [1],
                                                  "padding": [0]}, {"kind": "flatten"}, d], [1, 4], "ce"),
        "kernel length": lambda: core.net_spec([{"kind": "conv", "out": 2, "kernel": [2, 2], "stride": [1],
                                                 "padding": [0]}, {"kind": "flatten"}, d], [1, 4], "ce"),
        "zero stride": lambda: core.net_spec([{"kind": "conv", "out": 2, "kernel": [2], "stride": [0],
                                               "padding": [0]}, {"kind": "flatten"}, d], [1, 4], "ce"),
        "negative padding": lambda: core.net_spec([{"kind": "conv", "out": 2, "kernel": [2], "stride": [1],
                                                    "padding": [-1]}, {"kind": "flatten"}, d], [1, 4], "ce"),
        "kernel not ints": lambda: core.net_spec([{"kind": "conv", "out": 2, "kernel": ["a"], "stride": [1],
                                                   "padding": [0]}, {"kind": "flatten"}, d], [1, 4], "ce"),
        "pool padding": lambda: core.net_spec([{"kind": "avgpool", "kernel": [2], "stride": [1], "padding": [1]},
                                               {"kind": "flatten"}, d], [1, 4], "ce"),
        "not flat at the end": lambda: core.net_spec([{"kind": "conv", "out": 2, "kernel": [2], "stride": [1],
                                                       "padding": [0]}], [1, 4], "ce"),
        "input shape 0": lambda: core.net_spec([d], [0], "ce"),
        "input shape rank 4": lambda: core.net_spec([d], [1, 1, 1, 4], "ce"),
        "input shape str": lambda: core.net_spec([d], "4", "ce"),
        "loss": lambda: core.net_spec([d], [4], "hinge"),
        "slope nan": lambda: core.net_spec([d, {"kind": "leaky_relu", "slope": float("nan")}], [4], "ce"),
        "spec not a spec": lambda: core.logits({"kind": "dense"}, np.zeros((1, 3), np.float32),
                                               np.zeros((1, 1, 4), np.float32)),
        "set_blas not capsules": lambda: core.set_blas(1, 2, "x"),
        "negative tangent budget": lambda: core.set_tangent_budget(-1),
    }


def _outcome(fn):
    try:
        fn()
        return "ok"
    except Exception as e:  # noqa: BLE001 - the type is the result
        return type(e).__name__


def _random_array(rng, P, N, feat):
    dtype = rng.choice([np.float32, np.float64, np.int64, np.int32, np.float16, np.uint8])
    dims = [int(rng.choice([0, 1, 2, 3, N, P, *feat])) for _ in range(int(rng.integers(0, 5)))]
    a = np.asarray(np.abs(rng.standard_normal(dims)) * 3).astype(dtype)
    if a.ndim and rng.random() < 0.2:
        a = np.swapaxes(a, 0, -1)
    if a.size and rng.random() < 0.1 and a.dtype.kind == "f":
        a.flat[int(rng.integers(a.size))] = np.nan
    return a


def run_cases(n_random=1500):
    from pyquirk import _core as core
    results = []
    for net_name, (spec, feat) in _nets(core).items():
        for dtype in (np.float32, np.float64):
            base = _valid(spec, feat, dtype, mse=net_name == "cnn")
            for pass_name, fn in _calls(core, spec, base).items():
                results.append((f"{net_name} {np.dtype(dtype).name} valid {pass_name}", _outcome(fn), True))
            for pass_name, fn in _calls(core, spec, {**base, "V": base["V"][:1, :1]}).items():
                results.append((f"{net_name} {np.dtype(dtype).name} V shared k=1 -> {pass_name}", _outcome(fn), True))
            for name, key, value in _mutations(base):
                for pass_name, fn in _calls(core, spec, {**base, key: value}).items():
                    # a pass must reject what it reads; an N that disagrees only with y or g is fine for logits
                    bad = key in USES[pass_name].split() and not (name == "X N+1" and pass_name == "logits")
                    results.append((f"{net_name} {np.dtype(dtype).name} {name} -> {pass_name}", _outcome(fn),
                                    False if bad else None))
    for name, fn in _specs(core).items():
        results.append((f"spec: {name}", _outcome(fn), False))
    rng = np.random.default_rng(2024)
    spec, feat = _nets(core)["mlp"]
    keys = ("theta", "X", "y", "V", "g")
    for i in range(n_random):
        base = _valid(spec, feat, np.float32, E=int(rng.integers(1, 3)), N=int(rng.integers(1, 4)))
        args = {k: (_random_array(rng, spec.n_params, 3, feat) if rng.random() < 0.4 else v) for k, v in base.items()}
        pass_name, fn = list(_calls(core, spec, args).items())[int(rng.integers(6))]
        changed = [k for k in keys if args[k] is not base[k]]
        results.append((f"random {i}: {pass_name} with random {changed}", _outcome(fn), None))
    return results


# ------------------------------------------------------------------ the test (runs the child)
def test_malformed_input_raises_and_never_crashes():
    out = subprocess.run([sys.executable, os.path.abspath(__file__)], capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, f"the fuzz run died (exit {out.returncode}):\n{out.stderr[-3000:]}"
    results = json.loads(out.stdout.strip().splitlines()[-1])
    assert len(results) > 1000
    wrong = [r for r in results if r[1] not in ALLOWED]
    assert not wrong, f"{len(wrong)} cases raised something other than TypeError/ValueError: {wrong[:10]}"
    valid_failed = [r for r in results if r[2] is True and r[1] != "ok"]
    assert not valid_failed, valid_failed
    malformed_passed = [r for r in results if r[2] is False and r[1] == "ok"]
    assert not malformed_passed, f"malformed input accepted: {malformed_passed[:10]}"


if __name__ == "__main__":
    print(json.dumps(run_cases()))
