"""bias_act: bias + activation + gain + clamp in one op.

Follows the semantics of NVlabs' `torch_utils/ops/bias_act.py` (github.com/NVlabs/stylegan3):
`y = clamp(act(x + b) * gain, -clamp, clamp)`, with each activation's default gain
(sqrt(2) for relu, lrelu and swish, 1 otherwise) and lrelu's default slope 0.2.
rosinality's `FusedLeakyReLU` is `bias_act(x, b, act="lrelu")` with any slope.
"""
from __future__ import annotations

import torch

from custom_ops import _dispatch
from custom_ops.activations import ACTIVATIONS

__all__ = ["bias_act", "ACTIVATIONS"]


def bias_act(x: torch.Tensor, b: torch.Tensor | None = None, *, dim: int = 1, act: str = "linear",
             alpha: float | None = None, gain: float | None = None, clamp: float | None = None,
             impl: str = "auto") -> torch.Tensor:
    """Adds a bias, applies an activation, scales by a gain and clamps.

    Args:
        x: input tensor of any shape and float dtype.
        b: bias [x.shape[dim]] or None.
        dim: the axis of `x` that `b` runs along.
        act: one of `ACTIVATIONS` ("linear", "relu", "lrelu", "tanh", "sigmoid", "elu",
            "selu", "softplus", "swish").
        alpha: activation parameter (lrelu's negative slope); None = its default.
        gain: output scale; None = the activation's default gain.
        clamp: clamp the output to [-clamp, clamp]; None = no clamping.
        impl: "auto", "ref" or "cuda".

    Returns:
        A tensor of the shape and dtype of `x`.
    """
    if act not in ACTIVATIONS:
        raise ValueError(f"unknown activation {act!r}; expected one of {sorted(ACTIVATIONS)}")
    spec = ACTIVATIONS[act]
    alpha = float(spec.def_alpha if alpha is None else alpha)
    gain = float(spec.def_gain if gain is None else gain)
    clamp = float(clamp if clamp is not None else -1)
    dim = dim % x.ndim if x.ndim > 0 else dim  # a negative `dim` counts from the end
    if b is not None:
        assert b.ndim == 1 and b.shape[0] == x.shape[dim], "bias must be 1-D along `dim`"
    if _dispatch.use_cuda("bias_act", x, impl):
        from custom_ops import _cuda_bias_act  # the CUDA path is imported on first use only
        return _cuda_bias_act.bias_act(x, b, dim=dim, act=act, alpha=alpha, gain=gain, clamp=clamp)
    return _bias_act_ref(x, b, dim=dim, act=act, alpha=alpha, gain=gain, clamp=clamp)


def _bias_act_ref(x, b=None, *, dim=1, act="linear", alpha=None, gain=None, clamp=None):
    """Pure-PyTorch reference. `clamp` < 0 or None means no clamping."""
    spec = ACTIVATIONS[act]
    alpha = spec.def_alpha if alpha is None else alpha
    gain = spec.def_gain if gain is None else gain
    if b is not None:
        dim = dim % x.ndim
        x = x + b.to(x.dtype).reshape([-1 if i == dim else 1 for i in range(x.ndim)])
    x = spec.func(x, float(alpha))
    if gain != 1:
        x = x * gain
    if clamp is not None and clamp >= 0:
        # The gradient passes only strictly inside (-clamp, clamp), as in the official kernel's
        # backward; spelled out because torch.clamp's gradient on the bound itself differs between
        # torch versions (2.11 passes it, 2.14 does not).
        x = torch.where(x.abs() < clamp, x, x.detach().clamp(-clamp, clamp))
    return x
