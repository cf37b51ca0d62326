"""The build: the C++ extension pyquirk._core, its build_info(), and the CMake CUDA switch."""
from __future__ import annotations

import importlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BUILD_INFO_KEYS = {
    "compiler": str,
    "cxx_standard": str,
    "blas": str,
    "small_gemm": bool,
    "avx2_loops": bool,
    "cuda": bool,
    "openmp": bool,
    "version": str,
}


def test_import_pyquirk():
    import pyquirk

    assert isinstance(pyquirk.__version__, str)


def test_core_build_info_keys_and_types():
    import pyquirk
    from pyquirk import _core

    info = _core.build_info()
    assert set(info) == set(BUILD_INFO_KEYS)
    for key, typ in BUILD_INFO_KEYS.items():
        assert type(info[key]) is typ, (key, info[key])
    assert info["cxx_standard"] in {"C++17", "C++20", "C++23"}
    assert info["version"] == pyquirk.__version__ == _core.__version__
    assert info["compiler"] and info["blas"]


def test_stub_matches_module():
    """pyquirk/_core.pyi names exactly what the module exports (and ships beside py.typed)."""
    from pyquirk import _core

    pkg = ROOT / "pyquirk"
    stub = (pkg / "_core.pyi").read_text()
    assert (pkg / "py.typed").exists()
    public = {n for n in dir(_core) if not n.startswith("_")}
    for name in public:
        assert f"def {name}(" in stub, f"{name} missing from _core.pyi"


def test_import_survives_missing_core(monkeypatch):
    """Importing pyquirk never fails because _core is missing (STYLE 4)."""
    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'pyquirk._core':\n"
        "            raise ImportError('blocked for the test')\n"
        "sys.meta_path.insert(0, Block())\n"
        "import pyquirk\n"
        "print(pyquirk.available()['cpu'])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "blocked for the test" in out.stdout


@pytest.mark.parametrize("user", [None, "ACTIVE"])
def test_omp_wait_policy_defaults_to_passive_before_core_loads(user):
    """Idle OpenMP threads sleep rather than spin (pyquirk/_native.py), unless the user chose."""
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    if user:
        env["OMP_WAIT_POLICY"] = user
    code = "import os, pyquirk; pyquirk.available(); print(os.environ.get('OMP_WAIT_POLICY'))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == (user or "PASSIVE")


# ---- CMake configure (no compile): the CUDA switch -------------------------------------------

def _cmake_args() -> list[str]:
    cmake = shutil.which("cmake")
    if cmake is None:
        pytest.skip("cmake not on PATH")
    try:
        pybind11 = importlib.import_module("pybind11")
    except ImportError:
        pytest.skip("pybind11 not installed")
    args = [cmake, "-S", str(ROOT), f"-Dpybind11_DIR={pybind11.get_cmake_dir()}",
            f"-DPython_EXECUTABLE={sys.executable}"]
    if shutil.which("ninja"):
        args += ["-G", "Ninja"]
    return args


def _configure(tmp_path: Path, *defs: str, env: dict | None = None) -> subprocess.CompletedProcess:
    args = _cmake_args() + ["-B", str(tmp_path / "build"), *defs]
    try:
        return subprocess.run(args, capture_output=True, text=True, timeout=60,
                              env={**os.environ, **(env or {})})
    except subprocess.TimeoutExpired:
        pytest.skip("CMake configure took over 60 s on this machine")


def test_cmake_configure_cuda_off(tmp_path):
    t0 = time.perf_counter()
    out = _configure(tmp_path, "-DPYQUIRK_CUDA=OFF")
    assert out.returncode == 0, out.stdout + out.stderr
    status = [line for line in out.stdout.splitlines() if "pyquirk:" in line]
    assert len(status) == 1, out.stdout
    assert "CUDA off (PYQUIRK_CUDA=OFF)" in status[0]
    assert "Looking for a CUDA compiler" not in out.stdout
    assert time.perf_counter() - t0 < 60


def test_cmake_rejects_bad_cuda_value(tmp_path):
    out = _configure(tmp_path, "-DPYQUIRK_CUDA=maybe")
    assert out.returncode != 0
    assert "PYQUIRK_CUDA must be AUTO, ON or OFF" in out.stderr


def test_cmake_cuda_on_without_compiler_fails(tmp_path):
    out = _configure(tmp_path, "-DPYQUIRK_CUDA=ON",
                     env={"CUDACXX": str(tmp_path / "no-such-nvcc")})
    assert out.returncode != 0
    assert "PYQUIRK_CUDA=ON but CMake found no CUDA compiler" in out.stderr


@pytest.mark.parametrize("user", [False, True])
def test_keep_freed_memory_applies_unless_the_user_chose(user):
    """pyquirk's own processes keep freed memory (pyquirk/_native.py) unless MALLOC_* is set."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    if user:
        env["MALLOC_TRIM_THRESHOLD_"] = str(1 << 20)
    code = "import platform; from pyquirk._native import keep_freed_memory as k; print(k(), platform.libc_ver()[0])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 0, out.stderr
    applied, libc = out.stdout.split()
    assert applied == str(libc == "glibc" and not user)
