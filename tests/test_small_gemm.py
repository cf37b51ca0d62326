"""The GEMM dispatch of the native passes: pyquirk's AVX2 small-GEMM kernel and the BLAS behind it.

``_core.gemm`` runs one product through the same dispatch as the passes, so every shape class the
kernel handles (row and column remainders, transposes, accumulation, the K and N limits where the BLAS
takes over) is checked against NumPy in float64.
"""
import os
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from _tol import assert_close

MAX_K, MAX_N = 1024, 256  # csrc/cpu/small_gemm.h


@pytest.fixture(scope="module")
def core():
    from test_cpu_backend import require_cpu_backend
    require_cpu_backend()
    from pyquirk._native import load_core
    return load_core()[0]


def _cpu_has_avx2_fma() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return " avx2" in flags and " fma" in flags


def operands(rng, M, N, K, ta, tb, dtype):
    A = rng.standard_normal((K, M) if ta else (M, K)).astype(dtype)
    B = rng.standard_normal((N, K) if tb else (K, N)).astype(dtype)
    C = rng.standard_normal((M, N)).astype(dtype)
    return A, B, C


def expected(A, B, C, ta, tb, beta):
    a, b = A.astype(np.float64), B.astype(np.float64)
    return (a.T if ta else a) @ (b.T if tb else b) + beta * C.astype(np.float64)


def test_build_info_reports_the_kernel(core):
    assert core.build_info()["small_gemm"] == (_cpu_has_avx2_fma() and os.environ.get("PYQUIRK_SMALL_GEMM") != "0")


@settings(max_examples=60, deadline=None)
@given(M=st.integers(1, 40), N=st.sampled_from([1, 5, 10, 16, 17, 33, 100, MAX_N, MAX_N + 1]),
       K=st.sampled_from([0, 1, 7, 40, 100, MAX_K, MAX_K + 1]), ta=st.booleans(), tb=st.booleans(),
       beta=st.sampled_from([0.0, 1.0, -0.5]), dtype=st.sampled_from([np.float32, np.float64]),
       seed=st.integers(0, 2**16))
def test_gemm_equals_numpy(core, M, N, K, ta, tb, beta, dtype, seed):
    A, B, C = operands(np.random.default_rng(seed), M, N, K, ta, tb, dtype)
    want = expected(A, B, C, ta, tb, beta)
    core.gemm(A, B, C, ta=ta, tb=tb, beta=beta)
    assert C.dtype == dtype
    assert_close(C, want, "fast", dtype, what=f"gemm M={M} N={N} K={K} ta={ta} tb={tb} beta={beta}")


def test_beta_zero_never_reads_c(core):
    """C may hold NaN when beta = 0 (the passes hand the kernel uninitialised scratch)."""
    A, B, _ = operands(np.random.default_rng(0), 13, 21, 9, False, True, np.float32)
    C = np.full((13, 21), np.nan, np.float32)
    core.gemm(A, B, C, tb=True)
    assert np.isfinite(C).all()


@pytest.mark.parametrize("ta", [False, True])
@pytest.mark.parametrize("tb", [False, True])
@pytest.mark.parametrize("N", [37, 28])      # 28: a last panel of 4 columns, which goes row by row
def test_rows_do_not_depend_on_their_neighbours(core, ta, tb, N):
    """Bit for bit: a product's rows equal those of the same rows stacked into a larger product.

    The exact population / tangent-block equalities of the passes rest on this.
    """
    if not core.build_info()["small_gemm"]:
        pytest.skip("the small-GEMM kernel does not run on this CPU (no AVX2/FMA) or is switched off")
    rng = np.random.default_rng(1)
    M, K = 23, 50
    A, B, _ = operands(rng, 3 * M, N, K, ta, tb, np.float32)
    whole = np.empty((3 * M, N), np.float32)
    core.gemm(A, B, whole, ta=ta, tb=tb)
    for part in range(3):
        rows = slice(part * M, (part + 1) * M)
        Ap = np.ascontiguousarray(A[:, rows] if ta else A[rows])
        alone = np.empty((M, N), np.float32)
        core.gemm(Ap, B, alone, ta=ta, tb=tb)
        assert np.array_equal(alone, whole[rows])


@pytest.mark.parametrize("bad, error", [
    (lambda A, B, C: (A.astype(np.float64), B, C), TypeError),          # mixed dtypes
    (lambda A, B, C: (A.astype(np.int32), B, C), TypeError),            # not a float dtype
    (lambda A, B, C: (A[:, ::2], B, C), ValueError),                    # not contiguous
    (lambda A, B, C: (A.ravel(), B, C), ValueError),                    # wrong rank
    (lambda A, B, C: (A, B[:-1], C), ValueError),                       # K mismatch
    (lambda A, B, C: (A, B, C[:, :-1].copy()), ValueError),             # N mismatch
    (lambda A, B, C: (A.tolist(), B, C), TypeError),                    # not an array
])
def test_bad_operands_raise(core, bad, error):
    A, B, C = operands(np.random.default_rng(2), 6, 8, 4, False, False, np.float32)
    with pytest.raises(error):
        core.gemm(*bad(A, B, C))


def test_read_only_c_raises(core):
    A, B, C = operands(np.random.default_rng(3), 6, 8, 4, False, False, np.float32)
    C.setflags(write=False)
    with pytest.raises(ValueError, match="writeable"):
        core.gemm(A, B, C)


def test_switching_the_kernel_off_keeps_the_passes(tmp_path):
    """PYQUIRK_SMALL_GEMM=0 sends every product to the BLAS; the passes agree within the fast tolerance."""
    from test_cpu_backend import sharded_passes, sharded_passes_in_subprocess
    off = sharded_passes_in_subprocess(
        tmp_path, {"PYQUIRK_SMALL_GEMM": "0"},
        check="from pyquirk._native import load_core; assert not load_core()[0].build_info()['small_gemm']")
    for key, value in sharded_passes().items():
        assert_close(value, off[key], "fast", np.float32, what=f"{key}, kernel on vs off")
