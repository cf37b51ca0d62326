"""The Result contract: to_dict, save/load (bit-exact, allow_pickle=False), errors, plot."""
from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from pyquirk.results import Result, registered_results
from pyquirk.seeds import Seeds


@dataclasses.dataclass
class Curve(Result):
    eps: np.ndarray
    acc: np.ndarray
    extra: dict = dataclasses.field(default_factory=dict)
    norm: str = "linf"
    n_iter: int = 10

    def _plot(self, fig):
        ax = fig.add_subplot()
        ax.plot(self.eps, self.acc, marker="o")
        ax.set(xlabel="eps", ylabel="accuracy")


@dataclasses.dataclass
class Outer(Result):
    inner: Curve
    members: list
    derived: float = dataclasses.field(init=False, default=0.0)

    def __post_init__(self):
        self.derived = float(len(self.members))


@dataclasses.dataclass
class NoPlot(Result):
    x: int = 0


def _curve() -> Curve:
    rng = np.random.default_rng(0)
    acc = rng.random(5).astype(np.float32)
    acc[2] = np.nan
    extra = {
        "hist": {"loss": rng.standard_normal((3, 4)), "steps": np.arange(4, dtype=np.int64)},
        "mask": rng.random(7) > 0.5,
        "names": np.array(["a", "bc"]),
        "scalar0d": np.array(3.5, dtype=np.float64),
        "empty": np.zeros((0, 3), dtype=np.float32),
        "per_task": [np.ones(2, np.float16), {"k": np.arange(3, dtype=np.uint8)}, "txt", None],
        "by_eps": {0.1: 0.5, 2: np.int64(7), True: "yes", None: [1, 2]},
        "np_scalars": [np.float32(0.25), np.int32(-3), np.bool_(True), np.str_("s")],
        "tup": (1, 2),
        "dotted.key": np.arange(2.0),
    }
    return Curve(np.linspace(0, 0.3, 5), acc, extra,
                 semantics={"norm": "linf", "order": "step-project-clip"},
                 seeds=Seeds(attack=3), counts={"grad_calls": 50, "wall_time_s": 0.25})


def _assert_same_array(a, b):
    assert isinstance(b, np.ndarray)
    assert a.dtype == b.dtype and a.shape == b.shape
    assert a.tobytes() == b.tobytes()   # bit-exact, NaNs included


def test_registry_knows_subclasses():
    reg = registered_results()
    assert reg[f"{__name__}:Curve"] is Curve
    assert reg[f"{__name__}:Outer"] is Outer


def test_to_dict_is_json_serialisable():
    d = _curve().to_dict()
    text = json.dumps(d)
    assert isinstance(d["eps"], list) and d["eps"][1] == pytest.approx(0.075)
    assert d["extra"]["hist"]["loss"] == np.asarray(_curve().extra["hist"]["loss"]).tolist()
    assert d["seeds"] == Seeds(attack=3).to_dict()
    assert d["extra"]["np_scalars"] == [0.25, -3, True, "s"]
    assert type(d["extra"]["np_scalars"][0]) is float
    assert "semantics" in json.loads(text)


def test_save_load_round_trip_is_bit_exact(tmp_path):
    r = _curve()
    out = r.save(tmp_path / "curve")
    assert sorted(p.name for p in out.iterdir()) == ["arrays.npz", "result.json"]
    doc = json.loads((out / "result.json").read_text())
    assert doc["type"] == "Curve"
    assert "eps" in doc["arrays"] and "extra.hist.loss" in doc["arrays"]
    assert "extra.per_task.1.k" in doc["arrays"]
    with np.load(out / "arrays.npz", allow_pickle=False) as npz:
        assert set(npz.files) == set(doc["arrays"])

    back = Result.load(out)
    assert type(back) is Curve
    _assert_same_array(r.eps, back.eps)
    _assert_same_array(r.acc, back.acc)
    for key in ("mask", "names", "scalar0d", "empty", "dotted.key"):
        _assert_same_array(r.extra[key], back.extra[key])
    _assert_same_array(r.extra["hist"]["loss"], back.extra["hist"]["loss"])
    _assert_same_array(r.extra["hist"]["steps"], back.extra["hist"]["steps"])
    _assert_same_array(r.extra["per_task"][0], back.extra["per_task"][0])
    _assert_same_array(r.extra["per_task"][1]["k"], back.extra["per_task"][1]["k"])
    assert back.extra["per_task"][2:] == ["txt", None]
    assert back.extra["by_eps"] == {0.1: 0.5, 2: 7, True: "yes", None: [1, 2]}
    assert back.extra["tup"] == [1, 2]          # tuples come back as lists (documented)
    assert back.norm == "linf" and back.n_iter == 10
    assert back.semantics == r.semantics and back.counts == r.counts
    assert back.seeds == Seeds(attack=3).to_dict()
    assert Curve.load(out).norm == "linf"


def test_nested_result_and_init_false_fields(tmp_path):
    r = Outer(_curve(), [np.arange(3), np.eye(2, dtype=np.float32)])
    r.derived = 42.0  # a value that __post_init__ would not recompute
    back = Result.load(r.save(tmp_path / "outer"))
    assert type(back) is Outer and type(back.inner) is Curve
    _assert_same_array(r.inner.acc, back.inner.acc)
    _assert_same_array(r.members[1], back.members[1])
    assert back.derived == 42.0


def test_load_checks_class(tmp_path):
    out = _curve().save(tmp_path / "c")
    with pytest.raises(TypeError, match="holds a Curve, not a NoPlot"):
        NoPlot.load(out)
    doc = json.loads((out / "result.json").read_text())
    doc["class"], doc["type"] = "nowhere:Missing", "Missing"
    (out / "result.json").write_text(json.dumps(doc))
    with pytest.raises(TypeError, match="unknown result class"):
        Result.load(out)


def test_load_honours_allow_pickle_false(tmp_path):
    out = NoPlot(x=1).save(tmp_path / "p")
    np.savez(out / "arrays.npz", evil=np.array([{"a": 1}], dtype=object))  # pickled on disk
    doc = json.loads((out / "result.json").read_text())
    doc["arrays"] = ["evil"]
    (out / "result.json").write_text(json.dumps(doc))
    with pytest.raises(ValueError, match="allow_pickle"):
        Result.load(out)


@pytest.mark.parametrize("bad, where", [
    ({"k": {1, 2}}, "extra.k"),
    ({"k": [object()]}, "extra.k.0"),
    ({"k": np.array([None, 1], dtype=object)}, "extra.k"),
    ({"k": {(1, 2): 3}}, "extra.k"),
    ({"__ndarray__": 1}, "extra"),
])
def test_unsaveable_field_raises_typeerror_naming_it(tmp_path, bad, where):
    r = Curve(np.zeros(2), np.zeros(2), bad)
    with pytest.raises(TypeError, match=f"field '{where}'"):
        r.save(tmp_path / "bad")
    assert not (tmp_path / "bad").exists()   # nothing is written when encoding fails
    with pytest.raises(TypeError, match=f"field '{where}'"):
        r.to_dict()


def test_plot_returns_figure_and_writes_png(tmp_path):
    fig = _curve().plot(tmp_path / "sub" / "curve.png")
    assert fig.axes and fig.axes[0].get_xlabel() == "eps"
    data = (tmp_path / "sub" / "curve.png").read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert _curve().plot().axes   # no path: no file, still a figure


def test_plot_requires_subclass_hook():
    with pytest.raises(NotImplementedError, match="NoPlot does not implement _plot"):
        NoPlot().plot()


def test_plot_is_headless_without_pyplot(tmp_path):
    code = (
        "import sys, numpy as np, dataclasses\n"
        "from pyquirk.results import Result\n"
        "import pyquirk.report, pyquirk.cli\n"
        "assert 'matplotlib.pyplot' not in sys.modules\n"
        "@dataclasses.dataclass\n"
        "class R(Result):\n"
        "    x: np.ndarray\n"
        "    def _plot(self, fig): fig.add_subplot().plot(self.x)\n"
        f"R(np.arange(3.0)).plot(r'{tmp_path / 'h.png'}')\n"
        "assert 'matplotlib.pyplot' not in sys.modules, 'pyplot was imported'\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [_root(), env.get("PYTHONPATH")]))
    env_run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert env_run.returncode == 0, env_run.stderr
    assert (tmp_path / "h.png").exists()


def _root() -> str:
    import pathlib
    return str(pathlib.Path(__file__).resolve().parents[1])


def test_npz_is_a_plain_zip_of_npy(tmp_path):
    out = _curve().save(tmp_path / "z")
    with zipfile.ZipFile(out / "arrays.npz") as zf:
        assert all(n.endswith(".npy") for n in zf.namelist())
