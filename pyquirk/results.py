"""The result contract shared by every experiment (DESIGN §6, STYLE 12).

A result is data: a dataclass whose fields hold NumPy arrays, scalars, strings and (nested) lists
and dicts of those, plus, by convention,

- ``semantics: dict`` — the choices the experiment ran with (parameter selection, ε order, norm, …);
- ``seeds: dict``     — the named RNG streams it used (``Seeds.to_dict()``);
- ``counts: dict``    — work done: gradient calls, HVPs, forward calls, ``wall_time_s``.

These three are keyword-only fields of :class:`Result`, so a subclass declares its own fields
(with or without defaults) in the usual way::

    @dataclasses.dataclass
    class Curve(Result):
        eps: np.ndarray            # [K]
        acc: np.ndarray            # [K]
        norm: str = "linf"

        def _plot(self, fig):
            ax = fig.add_subplot()
            ax.plot(self.eps, self.acc)

    r = Curve(eps, acc, seeds=Seeds(attack=3).to_dict())
    r.save("out/curve")            # out/curve/result.json + out/curve/arrays.npz
    r2 = Result.load("out/curve")  # a Curve again, arrays bit-exact
    r.plot("curve.png")            # a matplotlib Figure, headless

On disk, ``result.json`` holds the class name, the non-array content, and a placeholder
``{"__ndarray__": key}`` wherever an array sat; ``arrays.npz`` holds every array under that key
(a dotted path such as ``history.test_acc`` or ``members.3``). Loading uses ``allow_pickle=False``,
so object arrays are refused when saving. Other JSON round-trip rules: tuples come back as lists,
NumPy scalars come back as Python scalars, a ``Seeds`` object is stored as its dict, a nested
``Result`` comes back as its own class, and dicts with non-string keys (int, float, bool, None)
keep their keys. Load re-creates the object through its ``__init__`` (so ``__post_init__`` runs and
must accept its own output), then restores ``init=False`` fields.
"""
from __future__ import annotations

import dataclasses
import importlib
import json
import os
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

FORMAT_VERSION = 1
_RESERVED = ("__ndarray__", "__result__", "__items__")

# class key "module:qualname" -> class; class name -> list of class keys
_REGISTRY: dict[str, type] = {}
_BY_NAME: dict[str, list[str]] = {}


def _class_key(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


@dataclasses.dataclass(kw_only=True)
class Result:
    """Base class of every experiment's result. Subclasses are ``@dataclasses.dataclass``.

    Attributes:
        semantics: the choices the experiment ran with (JSON-able dict).
        seeds: the RNG stream seeds it used, ``{stream: int}``.
        counts: work done, e.g. ``{"grad_calls": 120, "hvps": 40, "wall_time_s": 1.7}``.
    """

    semantics: dict = dataclasses.field(default_factory=dict)
    seeds: dict = dataclasses.field(default_factory=dict)
    counts: dict = dataclasses.field(default_factory=dict)

    RESULT_JSON: ClassVar[str] = "result.json"
    ARRAYS_NPZ: ClassVar[str] = "arrays.npz"

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        key = _class_key(cls)
        _REGISTRY[key] = cls
        names = _BY_NAME.setdefault(cls.__name__, [])
        if key not in names:
            names.append(key)

    # ------------------------------------------------------------------ serialisation
    def to_dict(self) -> dict:
        """All fields as plain JSON-serialisable content (arrays become nested lists).

        Returns:
            ``{field: value}``; ``json.dumps`` accepts it. Nested results become dicts too.

        Raises:
            TypeError: naming the field (and the path inside it) that holds an unsupported value.
        """
        return {f.name: _encode(getattr(self, f.name), f.name, None)
                for f in dataclasses.fields(self)}

    def save(self, directory: str | os.PathLike) -> Path:
        """Write ``directory/result.json`` and ``directory/arrays.npz``; return the directory.

        The array file is written first and the JSON last, each through a temporary file and an
        atomic rename, so a directory with a ``result.json`` always holds a complete result.

        Raises:
            TypeError: a field holds something that cannot be saved; the message names it.
        """
        directory = Path(directory)
        arrays: dict[str, np.ndarray] = {}
        fields = {f.name: _encode(getattr(self, f.name), f.name, arrays)
                  for f in dataclasses.fields(self)}
        doc = {
            "format": FORMAT_VERSION,
            "type": type(self).__name__,
            "class": _class_key(type(self)),
            "fields": fields,
            "arrays": sorted(arrays),
        }
        text = json.dumps(doc, indent=1, sort_keys=False)  # encode fully before touching disk
        directory.mkdir(parents=True, exist_ok=True)
        tmp = directory / (self.ARRAYS_NPZ + ".tmp.npz")
        np.savez(tmp, **arrays)
        os.replace(tmp, directory / self.ARRAYS_NPZ)
        tmp = directory / (self.RESULT_JSON + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, directory / self.RESULT_JSON)
        return directory

    @classmethod
    def load(cls, directory: str | os.PathLike) -> "Result":
        """Read a result written by :meth:`save`, as the subclass that wrote it.

        The class is found by name in the registry filled by ``__init_subclass__``; a class from
        a ``pyquirk.*`` module that is not imported yet is imported first.

        Raises:
            FileNotFoundError: ``result.json`` or ``arrays.npz`` is missing.
            TypeError: the stored class is unknown, or is not a subclass of ``cls``.
        """
        directory = Path(directory)
        doc = json.loads((directory / cls.RESULT_JSON).read_text(encoding="utf-8"))
        if doc.get("format") != FORMAT_VERSION:
            raise ValueError(f"{directory / cls.RESULT_JSON}: unsupported result format "
                             f"{doc.get('format')!r} (this pyquirk reads {FORMAT_VERSION})")
        with np.load(directory / cls.ARRAYS_NPZ, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
        missing = set(doc["arrays"]) - set(arrays)
        if missing:
            raise ValueError(f"{directory / cls.ARRAYS_NPZ} lacks arrays {sorted(missing)}")
        obj = _build(doc["class"], doc["type"], doc["fields"], arrays)
        if not isinstance(obj, cls):
            raise TypeError(f"{directory} holds a {type(obj).__name__}, not a {cls.__name__}")
        return obj

    # ------------------------------------------------------------------ plotting
    def plot(self, path: str | os.PathLike | None = None, *, fig=None, dpi: int = 120):
        """Draw this result on a headless matplotlib ``Figure``; save a PNG if ``path`` is given.

        Uses ``matplotlib.figure.Figure`` directly (no pyplot global state, no backend switch), so
        it works without a display and does not leak figures.

        Args:
            path: where to write the PNG (parent folders are created), or None.
            fig: an existing Figure to draw into (e.g. one from pyplot in a notebook).
            dpi: resolution of the saved PNG.

        Returns:
            The Figure.
        """
        if fig is None:
            from matplotlib.figure import Figure
            fig = Figure(figsize=(6.4, 4.0), layout="constrained")
        self._plot(fig)
        if path is not None:
            path = Path(path)
            path.parent.mkdir(parents=True, exist_ok=True)
            fig.savefig(path, dpi=dpi, format="png")
        return fig

    def _plot(self, fig) -> None:
        """Draw onto ``fig`` (a matplotlib Figure). Every subclass implements this."""
        raise NotImplementedError(f"{type(self).__name__} does not implement _plot(fig)")


# ---------------------------------------------------------------------- encoding
_SCALARS = (bool, int, float, str, type(None))
_KEY_SCALARS = (bool, int, float, type(None))


def _encode(value: Any, where: str, arrays: dict | None) -> Any:
    """Turn ``value`` into JSON-able content.

    With ``arrays`` None (``to_dict``) arrays become lists; otherwise they are moved into
    ``arrays`` under the dotted key ``where`` and replaced by a placeholder.
    """
    if isinstance(value, np.generic):
        if isinstance(value, (np.bool_, np.integer, np.floating, np.str_)):
            return value.item()
        raise TypeError(f"field {where!r}: NumPy scalar of dtype {value.dtype} cannot be saved")
    if isinstance(value, _SCALARS):
        return value
    if isinstance(value, np.ndarray):
        if value.dtype.hasobject:
            raise TypeError(f"field {where!r}: object arrays cannot be saved without pickle "
                            f"(dtype {value.dtype}); use a numeric or string dtype")
        if arrays is None:
            return _plain_list(value, where)
        key = where
        n = 1
        while key in arrays:   # only possible when a dict key itself contains a dot
            key, n = f"{where}~{n}", n + 1
        arrays[key] = value
        return {"__ndarray__": key}
    if isinstance(value, Result):
        fields = {f.name: _encode(getattr(value, f.name), f"{where}.{f.name}", arrays)
                  for f in dataclasses.fields(value)}
        if arrays is None:
            return fields
        return {"__result__": _class_key(type(value)), "type": type(value).__name__,
                "fields": fields}
    if _is_seeds(value):
        return value.to_dict()
    if isinstance(value, (list, tuple)):
        return [_encode(v, f"{where}.{i}", arrays) for i, v in enumerate(value)]
    if isinstance(value, dict):
        return _encode_dict(value, where, arrays)
    raise TypeError(f"field {where!r} holds a {type(value).__module__}.{type(value).__qualname__}, "
                    "which a Result cannot save; use arrays, scalars, strings, lists or dicts")


def _encode_dict(value: dict, where: str, arrays: dict | None) -> Any:
    if all(isinstance(k, str) for k in value):
        bad = [k for k in value if k in _RESERVED]
        if bad:
            raise TypeError(f"field {where!r}: dict key {bad[0]!r} is reserved by the result format")
        return {k: _encode(v, f"{where}.{k}", arrays) for k, v in value.items()}
    for k in value:
        if not isinstance(k, (str,) + _KEY_SCALARS + (np.integer, np.floating, np.bool_)):
            raise TypeError(f"field {where!r}: dict key {k!r} of type {type(k).__name__} cannot "
                            "be saved; use str, int, float, bool or None keys")
    items = [[_encode(k, where, arrays), _encode(v, f"{where}.{k}", arrays)]
             for k, v in value.items()]
    if arrays is None:   # plain JSON: json.dumps turns scalar keys into strings itself
        return {k: v for k, v in items}
    return {"__items__": items}


def _plain_list(value: np.ndarray, where: str) -> Any:
    if value.dtype.kind == "c":
        raise TypeError(f"field {where!r}: complex arrays have no JSON form; save() keeps them")
    if value.dtype.kind in "mMV":
        raise TypeError(f"field {where!r}: arrays of dtype {value.dtype} have no JSON form")
    return value.tolist()


def _is_seeds(value) -> bool:
    from .seeds import Seeds
    return isinstance(value, Seeds)


# ---------------------------------------------------------------------- decoding
def _decode(value: Any, arrays: dict[str, np.ndarray]) -> Any:
    if isinstance(value, list):
        return [_decode(v, arrays) for v in value]
    if not isinstance(value, dict):
        return value
    if len(value) == 1 and "__ndarray__" in value:
        return arrays[value["__ndarray__"]]
    if len(value) == 1 and "__items__" in value:
        return {_decode(k, arrays): _decode(v, arrays) for k, v in value["__items__"]}
    if "__result__" in value:
        return _build(value["__result__"], value["type"], value["fields"], arrays)
    return {k: _decode(v, arrays) for k, v in value.items()}


def _resolve(class_key: str, name: str) -> type:
    if class_key in _REGISTRY:
        return _REGISTRY[class_key]
    module = class_key.split(":", 1)[0]
    if module.startswith("pyquirk.") and "<locals>" not in class_key:
        try:  # the defining module may simply not be imported in this process yet
            importlib.import_module(module)
        except ImportError:
            pass
        if class_key in _REGISTRY:
            return _REGISTRY[class_key]
    keys = _BY_NAME.get(name, [])
    if len(keys) == 1:
        return _REGISTRY[keys[0]]
    if not keys:
        raise TypeError(f"unknown result class {class_key!r}: import the module that defines "
                        f"{name} before loading")
    raise TypeError(f"result class name {name!r} is ambiguous ({', '.join(keys)}) and "
                    f"{class_key!r} is not among them")


def _build(class_key: str, name: str, fields: dict, arrays: dict[str, np.ndarray]) -> Result:
    cls = _resolve(class_key, name)
    values = {k: _decode(v, arrays) for k, v in fields.items()}
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = set(values) - set(known)
    if unknown:
        raise TypeError(f"stored {name} has fields {sorted(unknown)} that the class lacks")
    obj = cls(**{k: v for k, v in values.items() if known[k].init})
    for k, v in values.items():
        if not known[k].init:
            object.__setattr__(obj, k, v)
    return obj


def registered_results() -> dict[str, type]:
    """Every registered Result subclass, ``{"module:qualname": class}``."""
    return dict(_REGISTRY)


__all__ = ["Result", "registered_results", "FORMAT_VERSION"]
