"""PyTorch interop: a ``Net`` and its flat θ to and from an ``nn.Sequential``.

θ's layout is PyTorch's (``Dense`` weight ``[out, in]``, conv weight ``[out, in, *kernel]``, each
followed by its bias; names ``"{layer index}.weight"``/``".bias"`` as in ``nn.Sequential``), so a
conversion is a copy of each parameter tensor, nothing more. See ``docs/interop.md``.

torch is never a dependency of pyquirk: it is imported inside these functions only, so importing
this module works without it and a call says clearly that torch is missing.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import functools

import numpy as np

from .._validate import as_float_array, check_choice
from ..nn import layers as L
from ..nn.net import Net

if TYPE_CHECKING:  # pragma: no cover
    import torch

__all__ = ["to_torch", "from_torch", "torch_loss_fn", "unflatten_torch"]


def _torch():
    try:
        import torch
    except ImportError as e:  # pragma: no cover - exercised only where torch is absent
        raise ImportError(f"pyquirk.interop.torch needs PyTorch, which could not be imported: {e}") from e
    return torch


def _torch_dtype(torch, dtype, default):
    """A torch float dtype from ``None`` (use ``default``), a torch dtype, or a NumPy dtype-like."""
    if dtype is None:
        dtype = default
    if isinstance(dtype, torch.dtype):
        if dtype not in (torch.float32, torch.float64):
            raise ValueError(f"dtype must be float32 or float64, got {dtype}")
        return dtype
    np_dtype = np.dtype(dtype)
    if np_dtype.type not in (np.float32, np.float64):
        raise ValueError(f"dtype must be float32 or float64, got {np_dtype}")
    return torch.float32 if np_dtype.type is np.float32 else torch.float64


# ============================================================================================
# pyquirk -> torch
# ============================================================================================

@functools.cache
def unit_gate_class(torch):
    """``UnitGate``: the torch twin of :class:`pyquirk.nn.Gate`, ``y = x · gate`` per unit/channel."""

    class UnitGate(torch.nn.Module):
        def __init__(self, units: int, spatial_dims: int = 0):
            super().__init__()
            self.spatial_dims = spatial_dims
            self.gate = torch.nn.Parameter(torch.ones(units, device="meta"))

        def forward(self, x):
            return x * self.gate.reshape((-1,) + (1,) * self.spatial_dims)

    return UnitGate


def _module_of(torch, layer):
    """The torch module computing the same function as one engine layer (parameters not yet set)."""
    nn = torch.nn
    if isinstance(layer, L.Gate):
        return unit_gate_class(torch)(layer.in_shape[0], len(layer.in_shape) - 1)
    if isinstance(layer, L.Dense):
        return nn.Linear(layer.in_features, layer.out_features, device="meta")
    if isinstance(layer, (L.Conv1d, L.Conv2d)):
        cls = nn.Conv1d if layer.d == 1 else nn.Conv2d
        return cls(layer.in_shape[0], layer.out_channels, layer.kernel, stride=layer.stride,
                   padding=layer.padding, device="meta")
    if isinstance(layer, (L.MaxPool, L.AvgPool)):  # 1-D or 2-D from the input rank fixed at build
        pools = {L.MaxPool: (nn.MaxPool1d, nn.MaxPool2d), L.AvgPool: (nn.AvgPool1d, nn.AvgPool2d)}
        cls = pools[type(layer)][layer.d - 1]
        kernel, stride = (layer.kernel[0], layer.stride[0]) if layer.d == 1 else (layer.kernel, layer.stride)
        return cls(kernel, stride=stride)
    if isinstance(layer, L.Flatten):
        return nn.Flatten()
    if isinstance(layer, L.LeakyReLU):
        return nn.LeakyReLU(layer.negative_slope)
    if isinstance(layer, L.GELU):
        return nn.GELU(approximate="none")
    simple = {L.ReLU: nn.ReLU, L.Tanh: nn.Tanh, L.Sigmoid: nn.Sigmoid, L.Identity: nn.Identity}
    if type(layer) in simple:
        return simple[type(layer)]()
    raise TypeError(f"to_torch: no PyTorch equivalent for layer {type(layer).__name__}")


def to_torch(net: Net, theta, dtype=None) -> "torch.nn.Sequential":
    """An ``nn.Sequential`` computing ``net.logits(θ, ·)``, with θ's values copied into it.

    Module ``i`` of the result is ``net.layers[i]``, so its parameter names are exactly the names
    in ``net.layout`` (``"0.weight"``, ``"0.bias"``, ...). The parameters are fresh copies: changing
    them does not change θ, and vice versa.

    Args:
        net: the architecture.
        theta: ``[P]`` (one network; for a population pass ``theta[e]``), NumPy or a torch tensor.
        dtype: torch or NumPy float32/float64; default θ's dtype.
    Returns:
        ``torch.nn.Sequential`` on the CPU, in training mode (there is no dropout or batch norm,
        so the mode changes nothing).
    """
    torch = _torch()
    if isinstance(theta, torch.Tensor):
        theta = theta.detach().cpu().numpy()
    theta = as_float_array(theta, "theta", ndim=(1, 2))
    if theta.ndim != 1:
        raise ValueError(f"to_torch builds one network: theta must be [P], got shape {theta.shape}; "
                         f"for a population pass theta[e]")
    net._check_p(theta.shape, "theta")
    tdtype = _torch_dtype(torch, dtype, theta.dtype)
    model = torch.nn.Sequential(*(_module_of(torch, layer) for layer in net.layers))
    for name, view in net.unflatten(theta).items():
        index, kind = name.split(".")
        data = torch.tensor(np.array(view, copy=True), dtype=tdtype)
        setattr(model[int(index)], kind, torch.nn.Parameter(data))
    return model


def unflatten_torch(net: Net, theta: "torch.Tensor") -> dict:
    """Views ``{name: [*lead, *shape]}`` into a torch θ ``[*lead, P]`` (differentiable, no copies).

    With :func:`to_torch`'s module this feeds ``torch.func.functional_call(model,
    unflatten_torch(net, θ), (X,))``, a function of the flat θ that torch can differentiate.
    """
    if theta.shape[-1] != net.n_params:
        raise ValueError(f"theta must have last dimension P={net.n_params}, got shape {tuple(theta.shape)}")
    lead = tuple(theta.shape[:-1])
    return {s.name: theta[..., s.offset:s.offset + s.size].reshape(lead + s.shape) for s in net.layout}


def torch_loss_fn(net: Net, reduction: str = "mean") -> "torch.nn.Module":
    """The torch loss matching ``net.loss``: ``CrossEntropyLoss`` or ``MSELoss``.

    With ``reduction="mean"`` both equal ``net.loss(θ, X, y)``. ``MSELoss`` wants float targets
    ``[N, C]`` (the engine also accepts integer classes and one-hot encodes them), and its
    ``reduction="none"`` output is ``[N, C]``: the engine's per-sample loss is its mean over C.
    """
    torch = _torch()
    check_choice(reduction, ("mean", "sum", "none"), "reduction")
    if net.loss_name in ("ce", "cross_entropy"):
        return torch.nn.CrossEntropyLoss(reduction=reduction)
    if net.loss_name == "mse":
        return torch.nn.MSELoss(reduction=reduction)
    raise ValueError(f"torch_loss_fn: no torch loss for {net.loss_name!r}")  # pragma: no cover


# ============================================================================================
# torch -> pyquirk
# ============================================================================================

def _tup(v, d):
    return tuple(int(e) for e in ((v,) * d if isinstance(v, (int, np.integer)) else v))


def _require(ok, module, what):
    if not ok:
        raise ValueError(f"from_torch: {type(module).__name__} with {what} is not supported")


def _conv_padding(m, d):
    if m.padding == "valid":
        return (0,) * d
    if m.padding == "same":  # symmetric only for odd kernels (dilation 1, stride 1 in torch)
        _require(all(k % 2 == 1 for k in m.kernel_size), m, "padding='same' and an even kernel (asymmetric padding)")
        return tuple((k - 1) // 2 for k in m.kernel_size)
    return _tup(m.padding, d)


def _layer_of(torch, m):
    """One engine layer from one torch module (checking every option the engine cannot express)."""
    nn = torch.nn
    t = type(m)
    if t is nn.Linear:
        _require(m.bias is not None, m, "bias=False")
        return L.Dense(m.out_features, m.in_features), m.in_features
    if t in (nn.Conv1d, nn.Conv2d):
        d = 1 if t is nn.Conv1d else 2
        _require(m.bias is not None, m, "bias=False")
        _require(_tup(m.dilation, d) == (1,) * d, m, f"dilation={m.dilation}")
        _require(m.groups == 1, m, f"groups={m.groups}")
        _require(m.padding_mode == "zeros", m, f"padding_mode={m.padding_mode!r}")
        layer = (L.Conv1d if d == 1 else L.Conv2d)(m.out_channels, _tup(m.kernel_size, d),
                                                   stride=_tup(m.stride, d), padding=_conv_padding(m, d))
        return layer, m.in_channels
    if t in (nn.MaxPool1d, nn.MaxPool2d, nn.AvgPool1d, nn.AvgPool2d):
        d = 1 if t in (nn.MaxPool1d, nn.AvgPool1d) else 2
        _require(_tup(m.padding, d) == (0,) * d, m, f"padding={m.padding}")
        _require(not m.ceil_mode, m, "ceil_mode=True")
        if t in (nn.MaxPool1d, nn.MaxPool2d):
            _require(_tup(m.dilation, d) == (1,) * d, m, f"dilation={m.dilation}")
            _require(not m.return_indices, m, "return_indices=True")
            cls = L.MaxPool
        else:  # count_include_pad only matters with padding, which is rejected above
            divisor = getattr(m, "divisor_override", None)  # AvgPool1d has none
            _require(divisor is None, m, f"divisor_override={divisor}")
            cls = L.AvgPool
        stride = m.kernel_size if m.stride is None else m.stride
        return cls(_tup(m.kernel_size, d), stride=_tup(stride, d)), d
    if t is unit_gate_class(torch):
        return L.Gate(), None
    if t is nn.Flatten:
        _require(m.start_dim == 1 and m.end_dim == -1, m, f"start_dim={m.start_dim}, end_dim={m.end_dim}")
        return L.Flatten(), None
    if t is nn.LeakyReLU:
        return L.LeakyReLU(m.negative_slope), None
    if t is nn.GELU:
        _require(m.approximate == "none", m, f"approximate={m.approximate!r} (only the exact GELU)")
        return L.GELU(), None
    simple = {nn.ReLU: L.ReLU, nn.Tanh: L.Tanh, nn.Sigmoid: L.Sigmoid, nn.Identity: L.Identity}
    if t in simple:
        return simple[t](), None
    hint = {"Softmax": "; the loss applies the (log-)softmax itself, drop it",
            "LogSoftmax": "; the loss applies the (log-)softmax itself, drop it",
            "Dropout": "; pyquirk's passes are deterministic, drop it",
            "BatchNorm1d": "; pyquirk has no batch norm (see DESIGN §2); fold it into the previous layer",
            "BatchNorm2d": "; pyquirk has no batch norm (see DESIGN §2); fold it into the previous layer"}
    raise TypeError(f"from_torch: unsupported module type {t.__module__}.{t.__name__}"
                    f"{hint.get(t.__name__, '')}. Supported: {', '.join(SUPPORTED_MODULES)}")


SUPPORTED_MODULES = ("Linear", "Conv1d", "Conv2d", "MaxPool1d", "MaxPool2d", "AvgPool1d", "AvgPool2d",
                     "Flatten", "ReLU", "LeakyReLU", "Tanh", "Sigmoid", "GELU", "Identity", "UnitGate")


def _flat_modules(torch, module):
    """The leaf modules of (possibly nested) ``nn.Sequential`` containers, in order."""
    if type(module) is torch.nn.Sequential:
        return [leaf for child in module for leaf in _flat_modules(torch, child)]
    return [module]


def _check_shapes(converted, leaves, input_shape):
    """Walk the feature shapes, checking what torch states against what the engine would infer."""
    shape = tuple(int(s) for s in np.atleast_1d(input_shape))
    if not shape or any(s < 1 for s in shape):
        raise ValueError(f"input_shape must be positive, got {shape}")
    for i, (layer, expect) in enumerate(converted):
        where = f"from_torch: module {i} ({type(leaves[i]).__name__})"
        if isinstance(layer, (L.Conv1d, L.Conv2d)) and len(shape) == layer.d + 1 and shape[0] != expect:
            raise ValueError(f"{where} has in_channels={expect} but receives {shape[0]} channels "
                             f"(feature shape {shape})")
        if isinstance(layer, L._Pool) and len(shape) - 1 != expect:
            raise ValueError(f"{where} is {expect}-D but receives feature shape {shape} "
                             f"({len(shape) - 1} spatial dims)")
        try:
            shape = layer.build(shape)
        except ValueError as e:
            raise ValueError(f"{where}: {e}") from None


def from_torch(module: "torch.nn.Module", input_shape, loss: str = "ce", dtype=None) -> tuple[Net, np.ndarray]:
    """A ``Net`` and its θ from an ``nn.Sequential`` of supported modules (weights copied).

    Nested ``nn.Sequential`` containers are flattened; layer ``i`` of the net is the i-th leaf
    module, so θ's names are the leaves' positions (identical to the module's own names when it
    is flat, as :func:`to_torch` builds it). ``from_torch(to_torch(net, θ), net.input_shape,
    net.loss_name)`` returns θ bit for bit.

    Args:
        module: ``nn.Sequential`` (or one supported module).
        input_shape: feature shape of one example, without the batch axis, e.g. ``(1, 28, 28)``.
        loss: ``"ce"`` or ``"mse"``.
        dtype: NumPy float32/float64 for θ; default the module's parameter dtype (float32 for
            any other float dtype).
    Returns:
        ``(net, theta)`` with ``theta: [P]``.
    Raises:
        TypeError: a module type with no engine equivalent (named in the message).
        ValueError: an option the engine does not implement (dilation, groups, non-zero padding
            mode, ceil_mode, pooling padding, bias=False, approximate GELU, ...), or channel and
            feature counts that do not match ``input_shape``.
    """
    torch = _torch()
    if not isinstance(module, torch.nn.Module):
        raise TypeError(f"from_torch expects a torch.nn.Module, got {type(module).__name__}")
    leaves = _flat_modules(torch, module)
    converted = [_layer_of(torch, m) for m in leaves]
    _check_shapes(converted, leaves, input_shape)
    net = Net([layer for layer, _ in converted], input_shape, loss=loss)
    params = {s.name: getattr(leaves[s.layer], s.kind) for s in net.layout}
    if dtype is None:
        pdtype = next(iter(params.values())).dtype
        dtype = np.float64 if pdtype == torch.float64 else np.float32
    dtype = np.dtype(dtype)
    if dtype.type not in (np.float32, np.float64):
        raise ValueError(f"dtype must be float32 or float64, got {dtype}")
    theta = np.empty(net.n_params, dtype=dtype)
    for s in net.layout:
        p = params[s.name].detach().cpu()
        if tuple(p.shape) != s.shape:  # pragma: no cover - guaranteed by the checks above
            raise ValueError(f"from_torch: {s.name} has shape {tuple(p.shape)}, expected {s.shape}")
        theta[s.slice] = p.to(torch.float64 if dtype.type is np.float64 else torch.float32).reshape(-1).numpy()
    return net, theta
