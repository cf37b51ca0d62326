"""The CUDA backend: CuPy arrays plus CUDA kernels. Not built yet; reports itself unavailable."""


def unavailable_reason() -> str:
    try:
        import cupy  # noqa: F401
    except ImportError as e:
        return f"CuPy is not installed ({e})"
    return "the CUDA passes are not implemented yet in this build of pyquirk"
