"""The backend registry: resolution order, availability reasons, and clear errors."""
import pytest

import pyquirk
from pyquirk import backends
from nets import problem


def test_reference_always_available_and_reasons_given():
    avail = pyquirk.available()
    assert avail["reference"] is None
    for name, why in avail.items():
        assert why is None or isinstance(why, str) and why


def test_resolution_order(monkeypatch):
    monkeypatch.setenv("PYQUIRK_BACKEND", "reference")
    assert backends.resolve() == "reference"
    with pyquirk.use_backend("cpu"):
        assert backends.resolve() == "cpu"              # context beats the environment
        assert backends.resolve("reference") == "reference"  # explicit beats the context
    assert backends.resolve() == "reference"


def test_unknown_and_unavailable_backends(monkeypatch):
    net, th, X, y = problem("mlp-relu")
    for name in ("tpu", ["cpu"], 3):
        with pytest.raises(ValueError, match="unknown backend"):
            net.loss(th, X, y, backend=name)
    monkeypatch.setenv("PYQUIRK_BACKEND", "gpu")
    with pytest.raises(ValueError, match="unknown backend"):
        net.loss(th, X, y)
    for name, why in pyquirk.available().items():
        if why is not None:
            with pytest.raises(RuntimeError, match=f"backend '{name}' is not available"):
                net.loss(th, X, y, backend=name)


def test_automatic_choice_is_an_available_backend(monkeypatch):
    monkeypatch.delenv("PYQUIRK_BACKEND", raising=False)
    assert pyquirk.available()[backends.resolve()] is None
