"""Type stub for the C++ extension ``pyquirk._core`` (source: csrc/bindings.cpp; design: docs/native.md).

Shapes follow pyquirk/backends/reference.py: ``theta: [E, P]``; ``X: [1|E, N, *input_shape]``;
``y: [1|E, N]`` int64 labels (cross-entropy) or ``[1|E, N, C]`` targets (MSE); ``V: [1|E, k, P]``;
``g: [1|E, N, C]``. A leading 1 means shared by all E members. Every float array has theta's dtype
(float32 or float64), is C-contiguous and aligned; bad input raises TypeError or ValueError.
"""
from typing import Any, TypedDict

from numpy.typing import NDArray

__version__: str

class BuildInfo(TypedDict):
    compiler: str
    """The C++ compiler and its version, e.g. ``"GCC 12.2.0"``."""
    cxx_standard: str
    """The C++ standard the module was compiled as, e.g. ``"C++17"``."""
    blas: str
    """The GEMM provider (SciPy's cython_blas sgemm/dgemm), its library configuration and threading."""
    small_gemm: bool
    """True when float32 GEMMs with K ≤ 1024 and N ≤ 256 run on pyquirk's AVX2 kernel (csrc/cpu/small_gemm.h)."""
    avx2_loops: bool
    """True when the element-wise loops run their AVX2 copy (csrc/cpu/activations.cpp; same bits)."""
    cuda: bool
    """True when CMake found a CUDA compiler and built the CUDA parts (``PYQUIRK_CUDA``)."""
    openmp: bool
    """True when the module was compiled with OpenMP."""
    version: str
    """The pyquirk version the module was built from."""

def build_info() -> BuildInfo:
    """How this ``_core`` was built, and which BLAS its GEMMs call."""
    ...

def gemm(A: NDArray[Any], B: NDArray[Any], C: NDArray[Any], *, ta: bool = False, tb: bool = False,
         beta: float = 0.0) -> None:
    """``C = op(A)·op(B) + beta·C`` in place through the passes' GEMM dispatch (for tests); ``op`` transposes."""
    ...

class _NetSpec:
    """A net description for the native passes (built by :func:`net_spec`)."""

    @property
    def n_params(self) -> int: ...
    @property
    def n_outputs(self) -> int: ...
    @property
    def input_shape(self) -> tuple[int, ...]: ...
    @property
    def param_offsets(self) -> list[int]:
        """Offset in θ of each parameter tensor, in ``Net.layout`` order."""
        ...
    @property
    def units(self) -> str:
        """The fused units the passes run, one per parameter layer / pool / stray activation."""
        ...
    def workspace_bytes(self, N: int, k: int = 0, itemsize: int = 4) -> int:
        """Scratch bytes (per thread) of a grad pass (``k=0``) or an HVP block of ``k`` tangents."""
        ...

def net_spec(layers: list[dict[str, Any]], input_shape: list[int] | tuple[int, ...], loss: str) -> _NetSpec:
    """The net description from one record per layer.

    Records: ``{"kind": "dense", "out": int}``; ``{"kind": "conv", "out": int, "kernel": [..],
    "stride": [..], "padding": [..]}`` (1 or 2 values each); ``{"kind": "maxpool"|"avgpool",
    "kernel": [..], "stride": [..]}``; ``{"kind": "gate"}``; ``{"kind": "flatten"}``;
    ``{"kind": "identity"|"relu"|"tanh"|"sigmoid"|"gelu"}``; ``{"kind": "leaky_relu", "slope": float}``.
    ``loss``: ``"ce"`` or ``"mse"``. Shapes and parameter offsets are derived here, as ``Net`` does.
    """
    ...

def logits(spec: _NetSpec, theta: NDArray[Any], X: NDArray[Any], *, check_finite: bool = True) -> NDArray[Any]:
    """Logits ``[E, N, C]``."""
    ...

def loss(spec: _NetSpec, theta: NDArray[Any], X: NDArray[Any], y: NDArray[Any], *,
         check_finite: bool = True) -> NDArray[Any]:
    """Per-sample losses ``[E, N]``."""
    ...

def loss_and_grad(spec: _NetSpec, theta: NDArray[Any], X: NDArray[Any], y: NDArray[Any], *,
                  check_finite: bool = True) -> tuple[NDArray[Any], NDArray[Any]]:
    """Per-sample losses ``[E, N]`` and the gradient of their mean ``[E, P]``."""
    ...

def vjp(spec: _NetSpec, theta: NDArray[Any], X: NDArray[Any], g: NDArray[Any], *,
        check_finite: bool = True) -> NDArray[Any]:
    """``∂/∂θ Σ_{n,c} g[n, c]·z[n, c]`` ``[E, P]`` for a cotangent ``g: [1|E, N, C]`` on the logits."""
    ...

def hvp(spec: _NetSpec, theta: NDArray[Any], X: NDArray[Any], y: NDArray[Any], V: NDArray[Any], *,
        check_finite: bool = True) -> NDArray[Any]:
    """Hessian-vector products of the mean loss ``[E, k, P]`` for tangents ``V: [1|E, k, P]``.

    Pearlmutter's R-operator; the k tangents share one primal forward and backward pass.
    """
    ...

def input_grad(spec: _NetSpec, theta: NDArray[Any], X: NDArray[Any], y: NDArray[Any], *,
               check_finite: bool = True) -> tuple[NDArray[Any], NDArray[Any]]:
    """Logits ``[E, N, C]`` and each sample's own-loss gradient w.r.t. its input ``[E, N, *in]``."""
    ...

def attack_loop(spec: _NetSpec, theta: NDArray[Any], x0: NDArray[Any], labels: NDArray[Any], x: NDArray[Any],
                alpha: NDArray[Any], eps: NDArray[Any], *, steps: int, norm: str, targeted: bool, lo: float,
                hi: float, l2_floor: float,
                check_finite: bool = True) -> tuple[NDArray[Any], NDArray[Any], NDArray[Any], NDArray[Any]]:
    """The PGD iteration of :mod:`pyquirk.adversarial` in one call (source: csrc/attack_bindings.cpp).

    ``x [E, N, *in]`` holds the start and receives the last iterate; ``x0 [N, *in]``, ``labels``
    int64 ``[N]``, ``alpha``/``eps`` float64 ``[E, N]``. Returns ``(z [E, N, C], x_best, z_best,
    m_best [E, N])``: the last iterate's logits and the best iterate (largest margin) so far.
    """
    ...

def set_blas(sgemm: object, dgemm: object, name: str) -> None:
    """Install the GEMM provider: PyCapsules holding Fortran-interface sgemm/dgemm pointers.

    pyquirk.backends.cpu installs SciPy's (``scipy.linalg.cython_blas.__pyx_capi__``) at import.
    """
    ...

def set_tangent_budget(bytes: int) -> int:
    """Scratch bytes per thread an HVP block may take before it is split into tangent chunks; returns the old value."""
    ...

def release_workspace() -> None:
    """Free the calling thread's scratch block (kept between passes to avoid re-allocation)."""
    ...

def csr_matmul(indptr: NDArray[Any], indices: NDArray[Any], data: NDArray[Any], bias: NDArray[Any] | None,
               Xt: NDArray[Any], relu: bool = False, *, check: bool = True,
               x_rows: bool = False) -> NDArray[Any]:
    """``Yt [out, N] = act(W Xt + b)`` for a CSR weight ``W [out, in]`` (source: csrc/sparse_bindings.cpp).

    ``indptr`` int64 ``[out+1]``, ``indices`` int32 ``[nnz]``, ``data`` ``[nnz]``, ``Xt [in, N]`` (or
    ``X [N, in]`` with ``x_rows``); ``act`` is ReLU when ``relu``. ``check=False`` skips the O(nnz) scan.
    """
    ...
