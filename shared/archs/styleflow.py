"""StyleFlow's conditional continuous normalising flow over W+ (Abdal, Zhu, Mitra, Wonka,
"StyleFlow: Attribute-conditioned Exploration of StyleGAN-Generated Images using Conditional
Continuous Normalizing Flows", ACM TOG 2021; RameenAbdal/StyleFlow, whose flow code follows
PointFlow / FFJORD).

The prior is `SequentialFlow[MovingBatchNorm1d, CNF, MovingBatchNorm1d]` with the official module
names, so the official `modellarge10k.pt` state dict loads as is:

- `chain.0` / `chain.2`: moving batch norm in eval mode, y = (x - mean) / sqrt(var + 1e-4) *
  exp(weight) + bias (log-scale affine), with its log-determinant for logp;
- `chain.1`: the CNF. dx/dt = f(t, x, c), f an MLP of "concat-squash" layers (Linear(x) *
  sigmoid(Linear([t, c])) + Linear([t, c]) without bias), tanh between layers; integrated from 0 to
  T = sqrt_end_time^2 (reversed for z -> w); the condition c is the 17 values cat(9 lighting
  spherical-harmonic coefficients, 8 attributes: Gender, Glasses, Yaw, Pitch, Baldness, Beard, Age,
  Expression) and is constant in t.

The ODE is solved with our own Dormand-Prince 5(4) (`dopri5`: adaptive steps, the official
tolerances atol = rtol = 1e-5, Hairer's initial step, safety 0.9, growth at most 10x, shrink at
least 0.2x), not a copy of torchdiffeq. Without the Hutchinson log-density state the step sequence
differs from the official solve, so results agree to the solver tolerance (about 1e-3), not bit
for bit. `logp=True` also integrates -tr(df/dx) with a seeded Hutchinson estimate.
"""
from __future__ import annotations

import os
import pickle
import struct
from collections.abc import Callable, Mapping
from pathlib import Path

import torch
from torch import nn

from shared.errors import CheckpointError

__all__ = ["ConcatSquashLinear", "StyleFlow", "dopri5", "load_styleflow", "styleflow_from_state_dict"]

NUM_LIGHTING = 9
ATTRIBUTES = ("Gender", "Glasses", "Yaw", "Pitch", "Baldness", "Beard", "Age", "Expression")


class ConcatSquashLinear(nn.Module):
    """Linear(x) gated and shifted by the context [t, c]: layer(x) * sigmoid(gate(ctx)) + hbias(ctx)."""

    def __init__(self, dim_in: int, dim_out: int, dim_ctx: int):
        super().__init__()
        self._layer = nn.Linear(dim_in, dim_out)
        self._hyper_bias = nn.Linear(dim_ctx, dim_out, bias=False)
        self._hyper_gate = nn.Linear(dim_ctx, dim_out)

    def forward(self, ctx: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        gate = torch.sigmoid(self._hyper_gate(ctx))
        shift = self._hyper_bias(ctx)
        if x.ndim == 3:
            gate, shift = gate.unsqueeze(1), shift.unsqueeze(1)
        return self._layer(x) * gate + shift


class _ODENet(nn.Module):
    def __init__(self, dims: tuple[int, ...], context_dim: int):
        super().__init__()
        self.layers = nn.ModuleList(ConcatSquashLinear(a, b, context_dim + 1) for a, b in zip(dims[:-1], dims[1:]))

    def forward(self, ctx: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        for i, layer in enumerate(self.layers):
            x = layer(ctx, x)
            if i < len(self.layers) - 1:
                x = torch.tanh(x)
        return x


class _ODEFunc(nn.Module):
    def __init__(self, dims: tuple[int, ...], context_dim: int):
        super().__init__()
        self.diffeq = _ODENet(dims, context_dim)
        self.register_buffer("_num_evals", torch.tensor(0.0))

    def velocity(self, t: torch.Tensor, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        tc = torch.cat([torch.full((x.shape[0], 1), float(t), dtype=x.dtype, device=x.device), c], dim=1)
        return self.diffeq(tc, x)


class _CNF(nn.Module):
    def __init__(self, dims: tuple[int, ...], context_dim: int):
        super().__init__()
        self.sqrt_end_time = nn.Parameter(torch.tensor(1.0))
        self.odefunc = _ODEFunc(dims, context_dim)


class _MovingBatchNorm1d(nn.Module):
    def __init__(self, dim: int, eps: float = 1e-4):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.zeros(dim))
        self.bias = nn.Parameter(torch.zeros(dim))
        self.register_buffer("step", torch.zeros(1))
        self.register_buffer("running_mean", torch.zeros(dim))
        self.register_buffer("running_var", torch.ones(dim))

    def logdet(self) -> torch.Tensor:
        return -0.5 * torch.log(self.running_var + self.eps) + self.weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = (x - self.running_mean) * torch.exp(-0.5 * torch.log(self.running_var + self.eps))
        return y * torch.exp(self.weight) + self.bias

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        x = (y - self.bias) * torch.exp(-self.weight)
        return x * torch.exp(0.5 * torch.log(self.running_var + self.eps)) + self.running_mean


# ---- the solver ---------------------------------------------------------------------------------------
# Dormand & Prince (1980) RK5(4)7FM coefficients.
_C = (0.0, 1 / 5, 3 / 10, 4 / 5, 8 / 9, 1.0, 1.0)
_A = ((),
      (1 / 5,),
      (3 / 40, 9 / 40),
      (44 / 45, -56 / 15, 32 / 9),
      (19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729),
      (9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656),
      (35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84))
_B5 = (35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84, 0.0)
_B4 = (5179 / 57600, 0.0, 7571 / 16695, 393 / 640, -92097 / 339200, 187 / 2100, 1 / 40)
_E = tuple(a - b for a, b in zip(_B5, _B4))


def _rms(x: torch.Tensor) -> float:
    return float(x.double().square().mean().sqrt())


def dopri5(f: Callable[[float, torch.Tensor], torch.Tensor], y0: torch.Tensor, t0: float, t1: float, *,
           atol: float = 1e-5, rtol: float = 1e-5, max_steps: int = 10_000) -> tuple[torch.Tensor, int]:
    """Integrate dy/dt = f(t, y) from t0 to t1 (either direction) with adaptive Dormand-Prince 5(4)
    steps (first-same-as-last). Returns (y(t1), number of f evaluations)."""
    direction = 1.0 if t1 >= t0 else -1.0
    span = abs(t1 - t0)
    if span == 0:
        return y0, 0
    t, y = t0, y0
    k1 = f(t, y)
    nfe = 1
    # Hairer, Norsett & Wanner, "Solving ODEs I", II.4: the starting step
    scale = atol + rtol * y.abs()
    d0, d1 = _rms(y / scale), _rms(k1 / scale)
    h0 = 1e-6 if d0 < 1e-5 or d1 < 1e-5 else 0.01 * d0 / d1
    y1 = y + direction * h0 * k1
    k2 = f(t + direction * h0, y1)
    nfe += 1
    d2 = _rms((k2 - k1) / scale) / h0
    h1 = max(1e-6, h0 * 1e-3) if max(d1, d2) <= 1e-15 else (0.01 / max(d1, d2)) ** (1 / 5)
    h = min(100 * h0, h1, span)
    for _ in range(max_steps):
        if abs(t - t0) >= span * (1 - 1e-12):
            return y, nfe
        h = min(h, span - abs(t - t0))
        ks = [k1]
        for i in range(1, 7):
            yi = y + direction * h * sum(a * k for a, k in zip(_A[i], ks) if a != 0.0)
            ks.append(f(t + direction * _C[i] * h, yi))
        nfe += 6
        y_new = y + direction * h * sum(b * k for b, k in zip(_B5, ks) if b != 0.0)
        err = direction * h * sum(e * k for e, k in zip(_E, ks) if e != 0.0)
        tol = atol + rtol * torch.maximum(y.abs(), y_new.abs())
        ratio = _rms(err / tol)
        if ratio <= 1.0:
            t, y, k1 = t + direction * h, y_new, ks[6]
        factor = 10.0 if ratio == 0 else min(10.0, max(0.2, 0.9 * ratio ** -0.2))
        h = h * factor
    raise RuntimeError(f"dopri5 did not reach t={t1} in {max_steps} steps")


class StyleFlow(nn.Module):
    """The official prior (module names as `build_model(input_dim, dims, context_dim, 1, True)`).

    `forward(w, cond)` maps W+ [N, num_ws, D] to the flow's z given cond [N, 17] (or [N, 17, 1, 1]);
    `reverse(z, cond)` maps back; `edit(w, cond_source, cond_target)` is StyleFlow's attribute edit.
    """

    def __init__(self, input_dim: int = 512, hidden: tuple[int, ...] = (512, 512, 512, 512, 512),
                 context_dim: int = NUM_LIGHTING + len(ATTRIBUTES)):
        super().__init__()
        self.input_dim, self.hidden, self.context_dim = input_dim, tuple(hidden), context_dim
        self.chain = nn.ModuleList([_MovingBatchNorm1d(input_dim),
                                    _CNF((input_dim, *hidden, input_dim), context_dim),
                                    _MovingBatchNorm1d(input_dim)])
        self.atol = self.rtol = 1e-5

    @property
    def end_time(self) -> float:
        return float(self.chain[1].sqrt_end_time) ** 2

    def _cond(self, cond: torch.Tensor, n: int) -> torch.Tensor:
        c = torch.as_tensor(cond).reshape(cond.shape[0], -1).to(self.chain[0].weight)
        if c.shape != (n, self.context_dim):
            raise ValueError(f"the condition must be [{n}, {self.context_dim}] (or [{n}, {self.context_dim}, 1, 1]), "
                             f"got {list(cond.shape)}")
        return c

    @torch.no_grad()
    def _solve(self, x: torch.Tensor, c: torch.Tensor, reverse: bool) -> tuple[torch.Tensor, int]:
        func = self.chain[1].odefunc
        t0, t1 = (self.end_time, 0.0) if reverse else (0.0, self.end_time)
        return dopri5(lambda t, y: func.velocity(t, y, c), x, t0, t1, atol=self.atol, rtol=self.rtol)

    def forward(self, w: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """w [N, num_ws, D] -> z [N, num_ws, D]."""
        c = self._cond(cond, w.shape[0])
        z, _ = self._solve(self.chain[0](w.to(c)), c, reverse=False)
        return self.chain[2](z)

    def reverse(self, z: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """z [N, num_ws, D] -> w [N, num_ws, D]."""
        c = self._cond(cond, z.shape[0])
        w, _ = self._solve(self.chain[2].inverse(z.to(c)), c, reverse=True)
        return self.chain[0].inverse(w)

    def edit(self, w: torch.Tensor, cond_source: torch.Tensor, cond_target: torch.Tensor) -> torch.Tensor:
        """StyleFlow's edit: z = forward(w | source condition), then reverse(z | target condition)."""
        return self.reverse(self.forward(w, cond_source), cond_target)


def styleflow_from_state_dict(sd: Mapping[str, torch.Tensor], name: str = "the StyleFlow weights") -> StyleFlow:
    """Build a `StyleFlow` from the official prior's state dict (dimensions read off the shapes).
    Returns it on the CPU, float32, eval mode, without gradients. CheckpointError when the tensors
    are not a StyleFlow prior."""
    sd = dict(sd)
    prefix = "chain.1.odefunc.diffeq.layers."
    n_layers = len({k[len(prefix):].split(".")[0] for k in sd if k.startswith(prefix)})
    if "chain.0.running_mean" not in sd or n_layers < 2:
        raise CheckpointError(f"{name} are not a StyleFlow prior (expected chain.0 batch norm and "
                              f"chain.1.odefunc.diffeq.layers.*).")
    widths = [int(sd[f"{prefix}{i}._layer.weight"].shape[0]) for i in range(n_layers)]
    input_dim = int(sd[f"{prefix}0._layer.weight"].shape[1])
    context_dim = int(sd[f"{prefix}0._hyper_gate.weight"].shape[1]) - 1
    model = StyleFlow(input_dim, tuple(widths[:-1]), context_dim)
    own = model.state_dict()
    missing, extra = sorted(set(own) - set(sd)), sorted(set(sd) - set(own))
    if missing or extra:
        raise CheckpointError(f"{name} do not match the StyleFlow prior (missing {missing[:3]}, unexpected {extra[:3]}).")
    for k, v in own.items():
        if tuple(sd[k].shape) != tuple(v.shape):
            raise CheckpointError(f"StyleFlow tensor {k!r} has shape {list(sd[k].shape)}, expected {list(v.shape)}.")
    model.load_state_dict({k: v.float() for k, v in sd.items()})
    return model.eval().requires_grad_(False)


def load_styleflow(path: str | os.PathLike) -> StyleFlow:
    """Load the official `modellarge10k.pt` (a state dict; `weights_only=True`, nothing executes)."""
    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, OSError, EOFError, pickle.UnpicklingError, struct.error) as e:
        raise CheckpointError(f"{Path(path).name} could not be read as a StyleFlow state dict ({e}).") from e
    if isinstance(sd, Mapping) and "state_dict" in sd and isinstance(sd["state_dict"], Mapping):
        sd = sd["state_dict"]
    if not isinstance(sd, Mapping):
        raise CheckpointError(f"{Path(path).name} holds a {type(sd).__name__}, not a StyleFlow state dict.")
    return styleflow_from_state_dict(sd, Path(path).name)
