"""The one tolerance table. Every comparison in the tests takes its tolerance from here."""
import numpy as np

#: relative tolerance by (check, dtype)
RTOL = {
    ("fd", np.float64): 1e-6,         # central finite differences vs exact passes
    ("torch", np.float64): 1e-10,     # torch.func on copied weights
    ("torch", np.float32): 1e-4,
    ("exact", np.float64): 1e-12,     # two exact computations of the same quantity
    ("exact", np.float32): 1e-5,
    ("fast", np.float64): 1e-10,      # a fast path against the reference path
    ("fast", np.float32): 1e-4,
    ("symmetry", np.float64): 1e-10,  # uᵀHv vs vᵀHu, dense Hessian symmetry
}


def rtol(check: str, dtype) -> float:
    return RTOL[(check, np.dtype(dtype).type)]


def rel_err(a, b) -> float:
    """‖a − b‖ / max(‖b‖, tiny): one number for a whole array."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-300))


def assert_close(a, b, check: str, dtype=np.float64, what: str = ""):
    """Relative L2 error within the table's tolerance, and cosine similarity ≈ 1 for vectors."""
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape, f"{what}: shapes {a.shape} vs {b.shape}"
    err, tol = rel_err(a, b), rtol(check, dtype)
    assert err <= tol, f"{what}: relative error {err:.3e} > {tol:.1e} ({check}, {np.dtype(dtype).name})"


#: absolute tolerances by (check, dtype)
ATOL = {
    ("torchattacks", np.float32): 1e-6,  # our compat="torchattacks" iterates vs torchattacks' own
    ("norm_slack", np.float32): 1e-6,    # ‖δ‖_p ≤ ε + slack after projection
    ("norm_slack", np.float64): 1e-6,
}


def atol(check: str, dtype) -> float:
    return ATOL[(check, np.dtype(dtype).type)]
