"""Pivotal Tuning Inversion (Roich, Mokady, Bermano, Cohen-Or, "Pivotal Tuning for Latent-based
Editing of Real Images", ACM TOG 2022), following danielroich/PTI@85632a39
(`training/coaches/single_id_coach.py`, `base_coach.py`, `criteria/localitly_regulizer.py`,
`training/projectors/w_projector.py`, `configs/hyperparameters.py`).

1. Pivot: W optimisation with NVlabs' projector schedule (450 steps, peak lr 0.01, noise maps
   optimised under the regulariser, 600 samples for w_avg / w_std) - or a given pivot, e.g. an
   e4e code (PTI's `first_inv_type='w+'`).
2. Tuning: Adam (lr 3e-4) on **all parameters of a deep copy** of the generator, loss
   `l2 * MSE + perceptual * LPIPS` of `copy.synthesis(pivot, noise_mode='const')` against the
   target, stopping early once the perceptual term is <= 0.07 (checked before the step, as the
   official loop does), for at most 350 steps.
3. Locality regularisation (on by default, as in the official config): each step, for a z drawn
   from our seeded generator, `w_z = mapping(z, psi=0.5)`, `w_r = pivot + alpha * (w_z - pivot) /
   |w_z - pivot|` (alpha 30), and the tuned and original generators' images of `w_r` (noise
   'none') are pulled together with 0.1 * MSE + 0.1 * perceptual.

Deviation: the official tuning loss uses LPIPS-AlexNet; we use the hub's perceptual loss
(LPIPS-VGG16, or the offline fallback), named in `extra['perceptual']`.

Memory: the shared generator is read, never written. The tuned copy lives on the generator's
device and costs about 4x the generator's parameters while tuning (weights, gradients, two Adam
moments: ~0.5 GB for FFHQ-1024 config-f, 30M parameters) plus one synthesis' activations (two
with locality regularisation); after return only the copy's weights remain (eval mode, no
gradients) in `extra['generator']`. The caller keeps at most one per session and drops it when
the session ends.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, field

import torch
from torch import nn

from shared.errors import InputError
from shared.inversion.losses import PerceptualLoss, masked_mse
from shared.inversion.optimize import (OptimizeOptions, WStats, adam_loop, as_generator, check_target, optimize_latent,
                                       synthesize)
from shared.inversion.result import InversionCancelled, InversionResult, Monitor, Progress, ShouldStop

__all__ = ["PTIOptions", "pivotal_tuning"]


def _pti_pivot_options() -> OptimizeOptions:
    return OptimizeOptions(steps=450, lr=0.01, space="w", noise="optimize", mse_weight=0.0, w_avg_samples=600)


@dataclass(frozen=True)
class PTIOptions:
    """PTI settings; the defaults are the official `configs/hyperparameters.py`.

    pivot:              options of the W pivot search (skipped when a pivot is passed in).
    steps / lr:         generator tuning steps (max_pti_steps) and Adam learning rate.
    l2_weight, perceptual_weight: pt_l2_lambda, pt_lpips_lambda.
    perceptual_threshold: stop tuning once the perceptual term is <= this (LPIPS_value_threshold;
                        0 disables; it is on LPIPS' scale, so scale it for a fallback loss).
    locality:           use the locality regulariser; its samples per step, alpha, loss weights,
                        step interval and the truncation of the sampled w.
    """
    pivot: OptimizeOptions = field(default_factory=_pti_pivot_options)
    steps: int = 350
    lr: float = 3e-4
    l2_weight: float = 1.0
    perceptual_weight: float = 1.0
    perceptual_threshold: float = 0.07
    locality: bool = True
    locality_samples: int = 1
    locality_alpha: float = 30.0
    locality_l2_weight: float = 0.1
    locality_perceptual_weight: float = 0.1
    locality_interval: int = 1
    locality_psi: float = 0.5

    def __post_init__(self) -> None:
        if self.steps < 0 or not self.lr > 0:
            raise InputError("PTI needs a non-negative number of tuning steps and a positive learning rate.")
        if self.locality and (self.locality_samples < 1 or self.locality_interval < 1):
            raise InputError("Locality regularisation needs at least 1 sample and an interval of at least 1.")


def pivotal_tuning(G: nn.Module, target: torch.Tensor, options: PTIOptions = PTIOptions(), *,
                   perceptual: PerceptualLoss | None = None, pivot_ws: torch.Tensor | None = None,
                   w_stats: WStats | None = None, seed: int | torch.Generator = 0, progress: Progress | None = None,
                   should_stop: ShouldStop | None = None) -> InversionResult:
    """Invert `target` by PTI: find a pivot, then tune a private copy of G around it.

    Args:
        G:          StyleGAN2/3 generator, shared and read-only (never modified).
        target:     [1, 3, R, R] in [-1, 1], R = G.img_resolution.
        options:    `PTIOptions`.
        perceptual: `PerceptualLoss` on G's device (None: MSE only, no early stop, no perceptual
                    locality term).
        pivot_ws:   [1, num_ws, w_dim] to skip the pivot search (e.g. an e4e code).
        w_stats:    precomputed W statistics for the pivot search.
        seed:       int or CPU generator (pivot latent noise, locality samples).
    Returns:
        InversionResult(method='pti'): ws = the pivot, image = tuned generator's reconstruction;
        `extra['generator']` the tuned copy (G's device, eval, no grad), `extra['pivot_result']`
        (the pivot search's result or None), 'perceptual', 'stopped_early', 'tuning_steps'.
        `losses` holds the pivot search steps (key 'phase' 1) then the tuning steps ('phase' 2).
    Raises:
        InputError for bad shapes; InversionCancelled (partial: the copy tuned so far).
    """
    check_target(G, target, None)
    monitor = Monitor(progress, should_stop)
    gen, dev = as_generator(seed), next(G.parameters()).device
    share = 0.0 if pivot_ws is not None else options.pivot.steps / (options.pivot.steps + max(options.steps, 1))
    pivot_result = None
    if pivot_ws is None:
        pivot_result = optimize_latent(G, target, options.pivot, perceptual=perceptual, w_stats=w_stats, seed=gen,
                                       method="pti-pivot", _monitor=monitor.sub(0.0, share))
        pivot_ws = pivot_result.ws
    if pivot_ws.shape != (1, G.num_ws, G.w_dim):
        raise InputError(f"The pivot must be [1, {G.num_ws}, {G.w_dim}], got {list(pivot_ws.shape)}.")
    pivot = pivot_ws.to(dev, torch.float32).detach()
    target = target.to(dev, torch.float32)

    tuned = copy.deepcopy(G).float().eval()  # the session's own generator; G stays untouched
    params = [p for p in tuned.parameters()]
    for p in params:
        p.requires_grad_(True)
    use_perc = perceptual is not None and options.perceptual_weight > 0

    def loss_fn(step: int):
        img = synthesize(tuned, pivot)
        log, loss = {"phase": 2.0}, img.new_zeros(())
        if options.l2_weight > 0:
            m = masked_mse(img, target).sum()
            loss, log["mse"] = loss + options.l2_weight * m, m.item()
        if use_perc:
            p = perceptual(img, target).sum()
            loss, log["perceptual"] = loss + options.perceptual_weight * p, p.item()
        if options.locality and step % options.locality_interval == 0:
            r = _locality_loss(G, tuned, pivot, options, perceptual, gen)
            loss, log["locality"] = loss + r, r.item()
        return loss, log

    def stop_when(log: dict[str, float]) -> bool:
        return use_perc and options.perceptual_threshold > 0 and log["perceptual"] <= options.perceptual_threshold

    first = [{**log, "phase": 1.0} for log in pivot_result.losses] if pivot_result is not None else []
    logs: list[dict[str, float]] = []
    try:
        stopped = False
        if options.steps > 0:
            stopped = adam_loop(params, loss_fn, logs, steps=options.steps, lr=options.lr, schedule=lambda s: 1.0,
                                betas=(0.9, 0.999), monitor=monitor.sub(share, 1.0 - share),
                                label="Tuning the generator", stop_when=stop_when)
    except InversionCancelled as e:
        raise InversionCancelled(str(e), _finish(tuned, pivot, first + logs, monitor, pivot_result, perceptual,
                                                 use_perc, True)) from None
    return _finish(tuned, pivot, first + logs, monitor, pivot_result, perceptual, use_perc, stopped)


def _locality_loss(G: nn.Module, tuned: nn.Module, pivot: torch.Tensor, options: PTIOptions,
                   perceptual: PerceptualLoss | None, gen: torch.Generator) -> torch.Tensor:
    """PTI's locality regulariser: keep the tuned generator equal to the original at
    `options.locality_samples` latents `locality_alpha` away from the pivot towards mapped samples."""
    dev = pivot.device
    z = torch.randn([options.locality_samples, G.z_dim], generator=gen).to(dev)
    with torch.no_grad():
        w_samples = G.mapping(z, None, truncation_psi=options.locality_psi)  # [S, num_ws, w_dim]
    total = pivot.new_zeros(())
    for w in w_samples:
        direction = w.unsqueeze(0) - pivot
        w_r = pivot + options.locality_alpha * direction / direction.norm(p=2)
        new_img = tuned.synthesis(w_r, noise_mode="none")
        with torch.no_grad():
            old_img = G.synthesis(w_r, noise_mode="none")
        if options.locality_l2_weight > 0:
            total = total + options.locality_l2_weight * masked_mse(new_img, old_img).sum()
        if perceptual is not None and options.locality_perceptual_weight > 0:
            total = total + options.locality_perceptual_weight * perceptual(new_img, old_img).sum()
    return total / len(w_samples)


@torch.no_grad()
def _finish(tuned: nn.Module, pivot: torch.Tensor, logs: list[dict[str, float]], monitor: Monitor,
            pivot_result: InversionResult | None, perceptual: PerceptualLoss | None, use_perc: bool,
            stopped: bool) -> InversionResult:
    tuned.requires_grad_(False)
    for p in tuned.parameters():
        p.grad = None
    img = synthesize(tuned, pivot).clamp(-1, 1)
    tuning_steps = sum(1 for log in logs if log.get("phase") == 2.0) - int(stopped)  # the stopping step made no update
    return InversionResult("pti", pivot.cpu().clone(), img.cpu(), list(logs), monitor.elapsed(),
                           extra={"generator": tuned, "pivot_result": pivot_result,
                                  "perceptual": perceptual.name if use_perc else "none",
                                  "stopped_early": stopped, "tuning_steps": tuning_steps})
