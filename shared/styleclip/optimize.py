"""StyleCLIP latent optimisation (Patashnik et al., ICCV 2021, orpatashnik/StyleCLIP
`optimization/run_optimization.py`), in W, W+ or StyleSpace.

The latent starts at the source and minimises  (1 - cos(CLIP(image), CLIP(text)))
+ λ·‖latent - source‖² (+ μ·identity loss when an identity model is given) with Adam and the
official learning-rate schedule (a cosine ramp-down over the last 75 % of the steps and a short
ramp-up). In W the edit is one vector shared by every row; in W+ every row moves; in S every
style channel moves, and the L2 term is measured in channel standard deviations so that the
layers with large styles do not dominate. Every `every` steps the caller receives the step, the
current CLIP similarity and the current image; `should_stop()` ends early with what is there.
A batch of sources is optimised at once (every loss is per image).
"""
from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from shared.errors import InputError

__all__ = ["OptimizeResult", "optimize_latent", "SPACES"]

SPACES = ("w", "w+", "s")


@dataclass
class OptimizeResult:
    """Outcome of `optimize_latent`: the final images [N,3,H,W] in [-1,1] (CPU), the edited ws
    ([N, num_ws, w_dim]; None in S space), the edited styles (S space only), CLIP similarity per
    step (mean over the batch), intermediate (step, image) pairs, steps run and wall time."""
    images: Tensor
    ws: Tensor | None
    styles: list[Tensor] | None
    similarity: list[float]
    intermediates: list[tuple[int, Tensor]] = field(default_factory=list)
    steps: int = 0
    seconds: float = 0.0
    stopped: bool = False


def _lr(step: int, total: int, base: float, rampdown: float = 0.25, rampup: float = 0.05) -> float:
    t = step / max(1, total)
    ramp = min(1.0, (1 - t) / rampdown)
    ramp = 0.5 - 0.5 * math.cos(ramp * math.pi)
    return base * ramp * min(1.0, t / rampup)


def optimize_latent(G: nn.Module, clip, ws: Tensor, text: Tensor, *, space: str = "w+", steps: int = 100,
                    lr: float = 0.1, l2_weight: float = 0.008, identity: Callable[[Tensor, Tensor], Tensor] | None = None,
                    identity_weight: float = 0.0, style_std: list[Tensor] | None = None, every: int = 10,
                    on_step: Callable[[int, float, Tensor | None], object] | None = None,
                    should_stop: Callable[[], bool] | None = None) -> OptimizeResult:
    """Optimise sources ws [N, num_ws, w_dim] towards the unit text embedding `text` [D].

    Args:
        space:  'w' (one offset per image, shared by all rows), 'w+' or 's' (StyleGAN2 only).
        identity: optional (images, source images) -> per-image loss [N] (e.g. 1 - ArcFace cosine).
        style_std: per-layer channel std (StyleStats.std) for the S-space L2; ones if None.
        on_step: called every `every` steps (and at the end) with (step, mean similarity, images).
    """
    if space not in SPACES:
        raise InputError(f"Space must be one of {', '.join(SPACES)}, not {space!r}.")
    if int(steps) < 1:
        raise InputError("Use at least one optimisation step.")
    if space == "s" and getattr(G, "arch", None) != "stylegan2":
        raise InputError("S-space optimisation needs a StyleGAN2 generator; pick W or W+.")
    ws = torch.as_tensor(ws, dtype=torch.float32)
    if ws.ndim != 3 or tuple(ws.shape[1:]) != (G.num_ws, G.w_dim):
        raise InputError(f"The latent must be [N, {G.num_ws}, {G.w_dim}], got {list(ws.shape)}.")
    dev = next(G.parameters()).device
    ws = ws.to(dev)
    text = text.to(dev, torch.float32).reshape(1, -1)
    t0 = time.perf_counter()
    with torch.no_grad():
        source_img = G.synthesis(ws, noise_mode="const").float() if identity is not None else None
        base_styles = G.synthesis.styles(ws) if space == "s" else None
    if space == "w":
        delta = torch.zeros(ws.shape[0], 1, G.w_dim, device=dev, requires_grad=True)
        params = [delta]
    elif space == "w+":
        delta = torch.zeros_like(ws, requires_grad=True)
        params = [delta]
    else:
        params = [torch.zeros_like(s, requires_grad=True) for s in base_styles]
        scale = [(torch.ones_like(s[0]) if style_std is None else style_std[i].to(dev).clamp_min(1e-8))
                 for i, s in enumerate(base_styles)]
    opt = torch.optim.Adam(params, lr=float(lr))

    def render() -> Tensor:
        if space == "s":
            return G.synthesis.from_styles([b + p for b, p in zip(base_styles, params)], noise_mode="const")
        return G.synthesis(ws + delta, noise_mode="const")

    sims: list[float] = []
    inter: list[tuple[int, Tensor]] = []
    stopped, step = False, 0
    for step in range(1, int(steps) + 1):
        for group in opt.param_groups:
            group["lr"] = _lr(step - 1, int(steps), float(lr))
        img = render().float()
        sim = (clip.encode_image(img) * text).sum(-1)                       # [N]
        if space == "s":
            l2 = sum(((p / s) ** 2).flatten(1).sum(1) for p, s in zip(params, scale))
        else:
            l2 = (delta ** 2).flatten(1).sum(1) * (G.num_ws if space == "w" else 1)
        loss = (1 - sim) + float(l2_weight) * l2
        if identity is not None and identity_weight > 0:
            loss = loss + float(identity_weight) * identity(img, source_img)
        opt.zero_grad(set_to_none=True)
        loss.sum().backward()
        opt.step()
        sims.append(float(sim.detach().mean()))
        if on_step is not None and (step % max(1, int(every)) == 0 or step == int(steps)):
            shown = img.detach().cpu().clamp(-1, 1)
            inter.append((step, shown))
            on_step(step, sims[-1], shown)
        if should_stop is not None and should_stop():
            stopped = True
            break
    with torch.no_grad():
        final = render().float().cpu().clamp(-1, 1)
        out_ws = None if space == "s" else (ws + delta).detach().cpu()
        out_s = [(b + p).detach().cpu() for b, p in zip(base_styles, params)] if space == "s" else None
    return OptimizeResult(final, out_ws, out_s, sims, inter, step, time.perf_counter() - t0, stopped)
