"""Shared fixtures. Oracles (torch) skip locally when missing, but fail under PYQUIRK_REQUIRE_ORACLES=1."""
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))  # tests/_tol.py, tests/nets.py

from pyquirk._native import keep_freed_memory  # noqa: E402

keep_freed_memory()  # the test run is pyquirk's own process (pyquirk/_native.py)


def require_oracle(module: str):
    """Import an oracle package; a missing oracle is a failure in CI, a skip elsewhere."""
    if os.environ.get("PYQUIRK_REQUIRE_ORACLES") == "1":
        return __import__(module)
    return pytest.importorskip(module)
