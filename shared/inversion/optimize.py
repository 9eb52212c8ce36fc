"""Latent optimisation: W / W+ (Image2StyleGAN) and W+ then noise maps (Image2StyleGAN++).

- Abdal, Qin, Wonka, "Image2StyleGAN: How to Embed Images Into the StyleGAN Latent Space?",
  ICCV 2019: Adam on W+ from the mean latent with a perceptual plus pixel-MSE loss.
- NVlabs/stylegan2-ada-pytorch `projector.py` (the StyleGAN2 paper's projector): W from the
  sampled mean `w_avg`, learning rate ramped up over the first 5 % and cosine-ramped down over
  the last 25 %, Gaussian noise of `w_std * 0.05` on the latent decaying quadratically to 0 at
  75 %, noise maps optimised too under an autocorrelation regulariser (weight 1e5) and
  re-normalised after each step.
- Abdal, Qin, Wonka, "Image2StyleGAN++: How to Edit the Embedded Images?", CVPR 2020: noise
  space optimisation is stable only *after* W+ (sequentially, not jointly): first W+ with
  masked perceptual + masked MSE, then the noise maps with masked MSE, the mask restricting
  the fit to a region.

The shared generator is never modified: latents and noise maps are our own leaf tensors,
gradients come from `torch.autograd.grad` (nothing accumulates in the model's `.grad`), and
StyleGAN2 noise maps are fed through `synthesize_with_noises` instead of swapping buffers.
`OptimizeOptions.nvlabs_projector()` and `.image2stylegan()` give the published settings.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import torch
from torch import nn

from shared.errors import InputError
from shared.inversion.losses import PerceptualLoss, masked_mse, noise_regularization
from shared.inversion.result import InversionCancelled, InversionResult, Monitor, Progress, ShouldStop

__all__ = ["NoiseOptions", "OptimizeOptions", "WStats", "as_generator", "compute_w_stats", "optimize_latent",
           "optimize_wplus_noise", "synthesize", "synthesize_with_noises", "lr_schedule"]

SPACES = ("w", "w+")
NOISE = ("fixed", "optimize")


@dataclass(frozen=True)
class OptimizeOptions:
    """Options of latent optimisation (defaults: W+, NVlabs' schedule, perceptual + MSE).

    steps:             Adam steps.
    lr:                peak learning rate.
    space:             'w' (one vector repeated over the layers) or 'w+' (one per layer).
    noise:             'fixed' (the generator's constant noise) or 'optimize' (StyleGAN2 noise maps
                       optimised with the regulariser and re-normalised; ignored for StyleGAN3).
    perceptual_weight: weight of the perceptual loss (0 or no loss object: pixels only).
    mse_weight:        weight of the pixel MSE (images in [-1, 1]).
    noise_regularize_weight: weight of NVlabs' noise regulariser when noise='optimize'.
    lr_rampup, lr_rampdown: fractions of the run for the linear warm-up and cosine decay (0: none).
    latent_noise:      initial std of Gaussian noise on the latent, in units of w_std (0: none).
    latent_noise_ramp: fraction of the run after which that noise is 0 (quadratic decay).
    w_avg_samples:     mapping samples for w_avg / w_std (NVlabs: 10000; PTI: 600).
    betas:             Adam betas.
    """
    steps: int = 500
    lr: float = 0.1
    space: str = "w+"
    noise: str = "fixed"
    perceptual_weight: float = 1.0
    mse_weight: float = 1.0
    noise_regularize_weight: float = 1e5
    lr_rampup: float = 0.05
    lr_rampdown: float = 0.25
    latent_noise: float = 0.05
    latent_noise_ramp: float = 0.75
    w_avg_samples: int = 10000
    betas: tuple[float, float] = (0.9, 0.999)

    def __post_init__(self) -> None:
        if self.space not in SPACES:
            raise InputError(f"Latent space must be 'w' or 'w+', got {self.space!r}.")
        if self.noise not in NOISE:
            raise InputError(f"Noise must be 'fixed' or 'optimize', got {self.noise!r}.")
        if self.steps < 1:
            raise InputError(f"Steps must be at least 1, got {self.steps}.")
        if not self.lr > 0:
            raise InputError(f"The learning rate must be positive, got {self.lr}.")
        if self.w_avg_samples < 2:
            raise InputError(f"w_avg_samples must be at least 2, got {self.w_avg_samples}.")
        if min(self.perceptual_weight, self.mse_weight, self.noise_regularize_weight, self.latent_noise) < 0:
            raise InputError("Loss weights and latent noise must not be negative.")
        if not (0 <= self.lr_rampup <= 1 and 0 <= self.lr_rampdown <= 1 and self.latent_noise_ramp > 0):
            raise InputError("Ramp lengths must be fractions of the run in [0, 1].")

    @classmethod
    def nvlabs_projector(cls, steps: int = 1000) -> "OptimizeOptions":
        """stylegan2-ada-pytorch `projector.py`: W, lr 0.1, noise optimised, perceptual distance only."""
        return cls(steps=steps, lr=0.1, space="w", noise="optimize", mse_weight=0.0)

    @classmethod
    def image2stylegan(cls, steps: int = 5000) -> "OptimizeOptions":
        """Image2StyleGAN: W+, Adam lr 0.01 without schedule or latent noise, perceptual + MSE."""
        return cls(steps=steps, lr=0.01, space="w+", noise="fixed", lr_rampup=0.0, lr_rampdown=0.0,
                   latent_noise=0.0)

    @classmethod
    def hybrid(cls, steps: int = 200) -> "OptimizeOptions":
        """Refining an encoder's W+ code: a small learning rate and no latent noise, so the run
        starts where the encoder ended instead of jumping away from it."""
        return cls(steps=steps, lr=0.01, space="w+", latent_noise=0.0)


@dataclass(frozen=True)
class NoiseOptions:
    """Second phase of Image2StyleGAN++: optimise the StyleGAN2 noise maps with W+ fixed.

    steps / lr:        Adam steps and (constant) learning rate on the maps.
    mse_weight:        weight of the (masked) pixel MSE, the paper's loss for this phase.
    perceptual_weight: optional (masked) perceptual term (paper: 0).
    noise_regularize_weight: optional NVlabs regulariser (paper: 0; larger keeps maps white).
    """
    steps: int = 200
    lr: float = 0.05
    mse_weight: float = 1.0
    perceptual_weight: float = 0.0
    noise_regularize_weight: float = 0.0

    def __post_init__(self) -> None:
        if self.steps < 1 or not self.lr > 0:
            raise InputError("Noise optimisation needs at least 1 step and a positive learning rate.")
        if min(self.mse_weight, self.perceptual_weight, self.noise_regularize_weight) < 0:
            raise InputError("Loss weights must not be negative.")


@dataclass(frozen=True)
class WStats:
    """Mean and spread of W under the mapping network (NVlabs' projector statistics)."""
    w_avg: torch.Tensor   # [w_dim] float32 on the generator's device
    w_std: float          # sqrt(mean over samples of |w - w_avg|^2), a scalar


# ---- helpers -------------------------------------------------------------------------------------

def as_generator(seed: int | torch.Generator) -> torch.Generator:
    """A CPU `torch.Generator` from a seed (or the generator itself; it must be a CPU one, so the
    same seed gives the same run on every device)."""
    if isinstance(seed, torch.Generator):
        if seed.device.type != "cpu":
            raise ValueError("Pass a CPU torch.Generator; random numbers are drawn on the CPU and moved.")
        return seed
    return torch.Generator().manual_seed(int(seed))


def _device(module: nn.Module) -> torch.device:
    return next(module.parameters()).device


@torch.no_grad()
def compute_w_stats(G: nn.Module, samples: int = 10000, *, seed: int = 123, c: torch.Tensor | None = None,
                    batch: int = 2000) -> WStats:
    """W statistics from `samples` mapped z ~ N(0, I) (seeded separately from the run, as NVlabs
    uses RandomState(123)); `c` [1, c_dim] for conditional generators."""
    gen, dev = torch.Generator().manual_seed(seed), _device(G)
    z = torch.randn([samples, G.z_dim], generator=gen)
    ws = []
    for chunk in z.split(batch):
        cc = None if c is None else c.to(dev).expand(chunk.shape[0], -1)
        ws.append(G.mapping(chunk.to(dev), cc)[:, 0].float())  # [n, w_dim]
    w = torch.cat(ws)
    w_avg = w.mean(dim=0)
    w_std = float((w - w_avg).square().sum(dim=1).mean().sqrt())
    return WStats(w_avg, w_std)


def lr_schedule(step: int, steps: int, rampup: float, rampdown: float) -> float:
    """NVlabs' multiplier: cosine decay over the last `rampdown` of the run, linear warm-up over
    the first `rampup` (a zero length disables that ramp)."""
    t = step / steps
    ramp = 1.0
    if rampdown > 0:
        ramp = 0.5 - 0.5 * math.cos(min(1.0, (1.0 - t) / rampdown) * math.pi)
    if rampup > 0:
        ramp *= min(1.0, t / rampup)
    return ramp


def check_target(G: nn.Module, target: torch.Tensor, mask: torch.Tensor | None) -> None:
    r = G.img_resolution
    if target.ndim != 4 or target.shape[0] != 1 or target.shape[1] != 3 or tuple(target.shape[2:]) != (r, r):
        raise InputError(f"The image to invert must be [1, 3, {r}, {r}] (the model's resolution), "
                         f"got {list(target.shape)}; align or resize it first.")
    if mask is not None and (mask.ndim != 4 or tuple(mask.shape) != (1, 1, r, r)):
        raise InputError(f"The mask must be [1, 1, {r}, {r}], got {list(mask.shape)}.")
    if mask is not None and not float(mask.sum()) > 0:
        raise InputError("The mask is empty; mark the region to fit.")


def synthesize_with_noises(G: nn.Module, ws: torch.Tensor, noises: Sequence[torch.Tensor]) -> torch.Tensor:
    """StyleGAN2 synthesis (fp32) with our own noise maps in place of `G.noises.noise_i`, without
    touching the shared module; equals `G.synthesis(ws, noise_mode='const')` when `noises` are
    G's buffers. ws [N, num_ws, w_dim], noises[i] [1, 1, r_i, r_i] -> img [N, 3, H, W]."""
    return G.synthesis(ws, noises=list(noises))


def synthesize(G: nn.Module, ws: torch.Tensor, noises: Sequence[torch.Tensor] | None = None) -> torch.Tensor:
    """G.synthesis(ws, noise_mode='const'), or with the given StyleGAN2 noise maps."""
    if noises is None:
        return G.synthesis(ws, noise_mode="const")
    return synthesize_with_noises(G, ws, noises)


def _noise_buffers(G: nn.Module) -> list[torch.Tensor] | None:
    """Copies of G's constant noise maps (StyleGAN2), or None for generators without noise."""
    holder = getattr(G, "noises", None)
    if holder is None:
        return None
    n = len(list(holder.buffers()))
    return [getattr(holder, f"noise_{i}").detach().clone().float() for i in range(n)]


LossFn = Callable[[int], tuple[torch.Tensor, dict[str, float]]]


def adam_loop(params: list[torch.Tensor], loss_fn: LossFn, logs: list[dict[str, float]], *, steps: int, lr: float,
              schedule: Callable[[int], float], betas: tuple[float, float], monitor: Monitor, label: str,
              after_step: Callable[[], None] | None = None,
              stop_when: Callable[[dict[str, float]], bool] | None = None) -> bool:
    """Adam over `params` (leaves we own) with gradients from `torch.autograd.grad`, so modules
    used inside `loss_fn` never accumulate `.grad`. Appends one dict per step to `logs` (the
    caller keeps them if a step raises); returns True when `stop_when` ended the run early.
    Raises InversionCancelled (from `monitor`) between steps."""
    opt = torch.optim.Adam(params, lr=lr, betas=betas)
    stopped = False
    for step in range(steps):
        monitor.tick(step, steps, f"{label}: step {step + 1} of {steps}")
        step_lr = lr * schedule(step)
        for group in opt.param_groups:
            group["lr"] = step_lr
        loss, log = loss_fn(step)
        log = {"step": float(step), "loss": loss.item(), "lr": step_lr, **log}
        logs.append(log)
        if stop_when is not None and stop_when(log):
            stopped = True
            break
        grads = torch.autograd.grad(loss, params, allow_unused=True)
        for p, g in zip(params, grads):
            p.grad = g
        opt.step()
        if after_step is not None:
            after_step()
    monitor.tick(steps, steps, f"{label}: done")
    return stopped


# ---- Image2StyleGAN / NVlabs projector ---------------------------------------------------------

def _start_latent(G: nn.Module, space: str, stats: WStats, init_ws: torch.Tensor | None) -> torch.Tensor:
    """The first iterate on G's device: [1, 1, w_dim] for 'w', [1, num_ws, w_dim] for 'w+';
    w_avg, or `init_ws` (its row mean for 'w')."""
    dev = _device(G)
    if init_ws is None:
        start = stats.w_avg.reshape(1, 1, -1).to(dev)
    else:
        if init_ws.shape != (1, G.num_ws, G.w_dim):
            raise InputError(f"init_ws must be [1, {G.num_ws}, {G.w_dim}], got {list(init_ws.shape)}.")
        start = init_ws.to(dev, torch.float32)
        start = start.mean(dim=1, keepdim=True) if space == "w" else start
    return start.expand(1, G.num_ws, G.w_dim) if space == "w+" else start


def optimize_latent(G: nn.Module, target: torch.Tensor, options: OptimizeOptions = OptimizeOptions(), *,
                    perceptual: PerceptualLoss | None = None, mask: torch.Tensor | None = None,
                    init_ws: torch.Tensor | None = None, w_stats: WStats | None = None,
                    seed: int | torch.Generator = 0, progress: Progress | None = None,
                    should_stop: ShouldStop | None = None, method: str | None = None,
                    _monitor: Monitor | None = None) -> InversionResult:
    """Invert `target` by optimising a latent in W or W+ (see the module docstring).

    Args:
        G:          StyleGAN2/3 generator (read-only; any device).
        target:     [1, 3, R, R] in [-1, 1], R = G.img_resolution.
        options:    `OptimizeOptions`.
        perceptual: a `PerceptualLoss` on G's device (None: the perceptual term is skipped).
        mask:       optional [1, 1, R, R] weights in [0, 1] (1 = fit here, 0 = ignore): masked MSE
                    and the perceptual loss of the masked images (Image2StyleGAN++).
        init_ws:    start here instead of w_avg ([1, num_ws, w_dim]; for 'w' its row mean).
        w_stats:    precomputed `compute_w_stats(G, options.w_avg_samples)` (cache it per model).
        seed:       int or CPU generator for the latent noise.
        progress, should_stop: see `shared.inversion.result`.
    Returns:
        InversionResult(method 'w' / 'w+' or `method`), tensors on the CPU; `extra` has
        'perceptual', 'init_ws', 'space', 'noise'.
    Raises:
        InputError for a wrongly shaped target or mask; InversionCancelled with `partial`.
    """
    check_target(G, target, mask)
    monitor = _monitor or Monitor(progress, should_stop)
    gen, dev = as_generator(seed), _device(G)
    target = target.to(dev, torch.float32)
    mask = None if mask is None else mask.to(dev, torch.float32)
    stats = w_stats or compute_w_stats(G, options.w_avg_samples)
    start = _start_latent(G, options.space, stats, init_ws)
    w_opt = start.detach().clone().requires_grad_(True)  # [1, 1 | num_ws, w_dim]
    noises = _noise_buffers(G) if options.noise == "optimize" else None
    if noises is not None:
        noises = [n.to(dev).requires_grad_(True) for n in noises]
    use_perc = perceptual is not None and options.perceptual_weight > 0
    name = method or options.space

    def loss_fn(step: int):
        t = step / options.steps
        scale = stats.w_std * options.latent_noise * max(0.0, 1.0 - t / options.latent_noise_ramp) ** 2
        w = w_opt
        if scale > 0:
            w = w + torch.randn(w_opt.shape, generator=gen).to(dev) * scale
        img = synthesize(G, w.expand(1, G.num_ws, G.w_dim), noises)
        log, loss = {}, img.new_zeros(())
        if use_perc:
            p = perceptual(img, target, mask).sum()
            loss, log["perceptual"] = loss + options.perceptual_weight * p, p.item()
        if options.mse_weight > 0:
            m = masked_mse(img, target, mask).sum()
            loss, log["mse"] = loss + options.mse_weight * m, m.item()
        if noises is not None and options.noise_regularize_weight > 0:
            r = noise_regularization(noises)
            loss, log["noise_reg"] = loss + options.noise_regularize_weight * r, r.item()
        return loss, log

    @torch.no_grad()
    def renormalise():
        for n in noises:
            n -= n.mean()
            n *= n.square().mean().rsqrt()

    def result(logs, stopped: bool) -> InversionResult:
        return _finish(G, name, w_opt.detach().expand(1, G.num_ws, G.w_dim), noises, logs, monitor,
                       {"perceptual": perceptual.name if use_perc else "none", "space": options.space,
                        "noise": options.noise if noises is not None else "fixed",
                        "init_ws": start.detach().expand(1, G.num_ws, G.w_dim).cpu().clone(),
                        "stopped_early": stopped})

    logs: list[dict[str, float]] = []
    try:
        stopped = adam_loop([w_opt] + (noises or []), loss_fn, logs, steps=options.steps, lr=options.lr,
                                  schedule=lambda s: lr_schedule(s, options.steps, options.lr_rampup,
                                                                 options.lr_rampdown),
                                  betas=options.betas, monitor=monitor, label=f"Optimising {name.upper()}",
                                  after_step=renormalise if noises is not None else None)
    except InversionCancelled as e:
        raise InversionCancelled(str(e), result(logs, True)) from None
    return result(logs, stopped)


@torch.no_grad()
def _finish(G: nn.Module, method: str, ws: torch.Tensor, noises: list[torch.Tensor] | None,
            logs: list[dict[str, float]], monitor: Monitor, extra: dict) -> InversionResult:
    ws = ws.detach().float()
    noise_maps = None if noises is None else [n.detach().float() for n in noises]
    img = synthesize(G, ws, noise_maps).clamp(-1, 1)
    return InversionResult(method=method, ws=ws.cpu().clone(), image=img.cpu(), losses=list(logs),
                           seconds=monitor.elapsed(),
                           noises=None if noise_maps is None else tuple(n.cpu().clone() for n in noise_maps),
                           extra=extra)


# ---- Image2StyleGAN++ -------------------------------------------------------------------------------

def optimize_wplus_noise(G: nn.Module, target: torch.Tensor, options: OptimizeOptions = OptimizeOptions(),
                         noise_options: NoiseOptions = NoiseOptions(), *, perceptual: PerceptualLoss | None = None,
                         mask: torch.Tensor | None = None, init_ws: torch.Tensor | None = None,
                         w_stats: WStats | None = None, seed: int | torch.Generator = 0,
                         progress: Progress | None = None, should_stop: ShouldStop | None = None) -> InversionResult:
    """Image2StyleGAN++ embedding: W+ first (with fixed noise), then the noise maps with W+ fixed.

    Args as `optimize_latent` (its `options.space` and `options.noise` are overridden to 'w+'
    and 'fixed' for phase 1), plus `noise_options` for phase 2. With a mask [1, 1, R, R] both
    phases fit only the masked region (masked MSE; masked perceptual loss in phase 1).
    Returns:
        InversionResult(method='w+n') with `noises` (the fitted maps) and per-step losses of both
        phases (key 'phase': 1 or 2); `extra['wplus_result']` is the phase-1 result.
    Raises:
        InputError for StyleGAN3 (it has no noise inputs) or bad shapes; InversionCancelled.
    """
    if getattr(G, "noises", None) is None:
        raise InputError("W+ with noise maps needs a StyleGAN2 generator; StyleGAN3 has no noise inputs.")
    check_target(G, target, mask)
    monitor = Monitor(progress, should_stop)
    total = options.steps + noise_options.steps
    phase1 = optimize_latent(G, target, replace(options, space="w+", noise="fixed"), perceptual=perceptual,
                             mask=mask, init_ws=init_ws, w_stats=w_stats, seed=seed, method="w+",
                             _monitor=monitor.sub(0.0, options.steps / total))
    dev = _device(G)
    ws = phase1.ws.to(dev)
    target, mask = target.to(dev, torch.float32), None if mask is None else mask.to(dev, torch.float32)
    noises = [n.to(dev).requires_grad_(True) for n in _noise_buffers(G)]
    use_perc = perceptual is not None and noise_options.perceptual_weight > 0

    def loss_fn(step: int):
        img = synthesize_with_noises(G, ws, noises)
        log, loss = {"phase": 2.0}, img.new_zeros(())
        if noise_options.mse_weight > 0:
            m = masked_mse(img, target, mask).sum()
            loss, log["mse"] = loss + noise_options.mse_weight * m, m.item()
        if use_perc:
            p = perceptual(img, target, mask).sum()
            loss, log["perceptual"] = loss + noise_options.perceptual_weight * p, p.item()
        if noise_options.noise_regularize_weight > 0:
            r = noise_regularization(noises)
            loss, log["noise_reg"] = loss + noise_options.noise_regularize_weight * r, r.item()
        return loss, log

    first = [{**log, "phase": 1.0} for log in phase1.losses]
    extra = {**phase1.extra, "noise": "optimize", "wplus_result": phase1}

    logs: list[dict[str, float]] = []
    try:
        adam_loop(noises, loss_fn, logs, steps=noise_options.steps, lr=noise_options.lr, schedule=lambda s: 1.0,
                  betas=options.betas, monitor=monitor.sub(options.steps / total, noise_options.steps / total),
                  label="Optimising noise maps")
    except InversionCancelled as e:
        raise InversionCancelled(str(e), _finish(G, "w+n", ws, noises, first + logs, monitor, extra)) from None
    return _finish(G, "w+n", ws, noises, first + logs, monitor, extra)
