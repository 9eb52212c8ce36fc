"""Factor-coordinate latents of the demo world: the demo generator's z is the renderer's factor
vector (shared/portraits.py, `FACTORS`) written in Gaussian coordinates, so that z ~ N(0, I)
maps to exactly the renderer's prior and G(z) can be trained by regression against
render(z_to_factors(z)). Own construction (the demo world is this project's, not a paper's).

Layout (`LAYOUT`, in `FACTORS` order):
- a continuous factor Uniform(low, high) takes one dimension: z = Phi^-1((f - low) / (high - low)),
  so f = low + (high - low) * Phi(z);
- a categorical factor with K categories takes K dimensions: its code is argmax_k (z_k + b_k),
  with offsets b (`category_offsets`) solved so that P(code = k) = probs[k] exactly under
  N(0, I) (a 1-D integral per category, solved to 1e-9).
13 continuous and 22 categorical dimensions: Z_DIM = 35. `factors_to_z` draws a z whose factors
are the given ones (the continuous dimensions are exact; a category's K dimensions are drawn
from N(0, I) conditioned on its arg-max).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
from torch import Tensor

from shared.portraits import FACTORS, Factors, FactorSpec

__all__ = ["LAYOUT", "Z_DIM", "LayoutEntry", "category_offsets", "factors_to_z", "z_to_factors"]

_EPS = 1e-6   # continuous positions are kept in [eps, 1 - eps] before Phi^-1


@dataclass(frozen=True)
class LayoutEntry:
    """Where one factor lives in z: dimensions [start, start + size)."""
    spec: FactorSpec
    start: int
    size: int


def _layout() -> tuple[LayoutEntry, ...]:
    out, start = [], 0
    for spec in FACTORS:
        size = 1 if spec.kind == "continuous" else len(spec.categories)
        out.append(LayoutEntry(spec, start, size))
        start += size
    return tuple(out)


LAYOUT: tuple[LayoutEntry, ...] = _layout()
Z_DIM: int = LAYOUT[-1].start + LAYOUT[-1].size


def _argmax_probs(b: np.ndarray) -> np.ndarray:
    """P(argmax_k (x_k + b_k) = k) for x ~ N(0, I): integral of phi(t) prod_{j != k} Phi(t + b_k - b_j)."""
    from scipy.special import ndtr
    t = np.linspace(-12.0, 12.0, 24001)
    phi = np.exp(-0.5 * t * t) / math.sqrt(2 * math.pi)
    dt = t[1] - t[0]
    out = np.empty(len(b))
    for k in range(len(b)):
        prod = np.ones_like(t)
        for j in range(len(b)):
            if j != k:
                prod *= ndtr(t + b[k] - b[j])
        out[k] = float(np.sum(phi * prod) * dt)
    return out


@lru_cache(maxsize=None)
def category_offsets(probs: tuple[float, ...]) -> tuple[float, ...]:
    """Offsets b (sum 0) with P(argmax_k (x_k + b_k) = k) = probs[k] under x ~ N(0, I)."""
    p = np.asarray(probs, dtype=np.float64)
    p = p / p.sum()
    b = np.zeros(len(p))
    for _ in range(200):
        q = _argmax_probs(b)
        if np.max(np.abs(q - p)) < 1e-9:
            break
        b += 0.8 * (np.log(p) - np.log(q))
        b -= b.mean()
    return tuple(float(v) for v in b)


def _offsets(spec: FactorSpec, device: torch.device) -> Tensor:
    return torch.tensor(category_offsets(tuple(spec.probs)), dtype=torch.float32, device=device)


def z_to_factors(z: Tensor) -> Factors:
    """z [N, Z_DIM] -> the renderer's factors (CPU tensors)."""
    if z.ndim != 2 or z.shape[1] != Z_DIM:
        raise ValueError(f"factor-coordinate latents are [N, {Z_DIM}], got {tuple(z.shape)}")
    z = z.detach().float().cpu()
    vals = {}
    for e in LAYOUT:
        block = z[:, e.start:e.start + e.size]
        if e.spec.kind == "continuous":
            u = torch.special.ndtr(block[:, 0].double())
            vals[e.spec.name] = (e.spec.low + (e.spec.high - e.spec.low) * u).float()
        else:
            vals[e.spec.name] = torch.argmax(block + _offsets(e.spec, block.device), dim=1)
    return Factors(vals)


def factors_to_z(factors: Factors, generator: torch.Generator) -> Tensor:
    """A z [N, Z_DIM] with z_to_factors(z) == factors (continuous factors up to float rounding;
    values outside a factor's range are clamped into it). The categorical dimensions are drawn
    from N(0, I) conditioned on the arg-max (rejection sampling with `generator`)."""
    n = len(factors)
    z = torch.empty([n, Z_DIM], dtype=torch.float32)
    for e in LAYOUT:
        if e.spec.kind == "continuous":
            u = (factors[e.spec.name].double() - e.spec.low) / (e.spec.high - e.spec.low)
            z[:, e.start] = torch.special.ndtri(u.clamp(_EPS, 1 - _EPS)).float()
            continue
        want = factors[e.spec.name].long()
        b = _offsets(e.spec, torch.device("cpu"))
        block = torch.empty([n, e.size])
        todo = torch.arange(n)
        while len(todo):
            draw = torch.randn([len(todo), e.size], generator=generator)
            ok = torch.argmax(draw + b, dim=1) == want[todo]
            block[todo[ok]] = draw[ok]
            todo = todo[~ok]
        z[:, e.start:e.start + e.size] = block
    return z
