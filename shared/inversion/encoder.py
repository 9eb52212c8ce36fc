"""Encoder inversion (pSp, e4e, ReStyle) and the hybrid encoder + optimisation method.

Inference as the official code runs it (eladrich/pixel2style2pixel@5cfff385 `models/psp.py`,
omertov/encoder4editing@99ea5057 `models/psp.py`, yuval-alaluf/restyle-encoder@5e802762
`models/psp.py`, `models/e4e.py` and `utils/inference_utils.py: run_on_batch`):

- input: the aligned image resized to 256 px (PIL bilinear with antialiasing there; here
  `interpolate(..., 'bilinear', antialias=True)`), in [-1, 1];
- pSp / e4e: `ws = encoder(x) + latent_avg` (pSp adds it when trained with
  `start_from_latent_avg`; e4e checkpoints store `latent_avg` [18, 512]), decoded with constant
  noise (`randomize_noise=False`);
- ReStyle: `y_0 = face_pool(G(latent_avg))`, then for each iteration
  `ws_i = encoder(cat([x, y_{i-1}])) + ws_{i-1}` (with `ws_{-1} = latent_avg`) and
  `y_i = face_pool(G(ws_i))`, where `face_pool` is adaptive average pooling to 256 px; every
  iteration's full-resolution output is kept.

The hybrid method (an encoder's code refined by `optimize_latent`, as in PTI's 'w+' pivot and
the "encoder then optimise" recipe of the inversion surveys) starts exactly at the encoder's ws.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from shared.errors import InputError
from shared.inversion.losses import PerceptualLoss, masked_mse
from shared.inversion.optimize import OptimizeOptions, WStats, check_target, optimize_latent, synthesize
from shared.inversion.result import (InversionCancelled, InversionResult, InversionStep, Monitor, Progress,
                                     ShouldStop)

__all__ = ["ENCODER_KINDS", "encode", "encode_then_optimize", "encoder_input"]

ENCODER_KINDS = ("psp", "e4e", "restyle_psp", "restyle_e4e")


def encoder_input(image: torch.Tensor, size: int = 256) -> torch.Tensor:
    """[N, 3, H, W] in [-1, 1] -> [N, 3, size, size] (bilinear, antialiased when shrinking)."""
    if tuple(image.shape[-2:]) == (size, size):
        return image.to(torch.float32)
    return F.interpolate(image.to(torch.float32), size=(size, size), mode="bilinear", align_corners=False,
                         antialias=True)


def _face_pool(img: torch.Tensor, size: int) -> torch.Tensor:
    return F.adaptive_avg_pool2d(img, (size, size))


def _latent_avg_ws(latent_avg: torch.Tensor, num_ws: int, w_dim: int, dev: torch.device) -> torch.Tensor:
    avg = latent_avg.to(dev, torch.float32)
    if avg.shape == (w_dim,) or avg.shape == (1, w_dim):
        avg = avg.reshape(1, w_dim).expand(num_ws, w_dim)
    if avg.shape != (num_ws, w_dim):
        raise InputError(f"latent_avg must be [{num_ws}, {w_dim}] or [{w_dim}], got {list(latent_avg.shape)}.")
    return avg.unsqueeze(0)  # [1, num_ws, w_dim]


@torch.no_grad()
def encode(encoder: nn.Module, G: nn.Module, image: torch.Tensor, latent_avg: torch.Tensor | None, *,
           kind: str = "psp", iterations: int = 5, resize_to: int = 256, add_latent_avg: bool = True,
           progress: Progress | None = None, should_stop: ShouldStop | None = None) -> InversionResult:
    """Invert an aligned image with a pSp / e4e / ReStyle encoder.

    Args:
        encoder:    a module from `shared.loaders.load_encoder` (raw codes, eval mode); ReStyle
                    encoders take 6 channels, the others 3.
        G:          the StyleGAN2 generator it was trained with (num_ws rows = the encoder's n_styles).
        image:      [1, 3, H, W] in [-1, 1] (aligned; any size, resized to `resize_to`).
        latent_avg: [num_ws, w_dim] or [w_dim] (`EncoderCheckpoint.latent_avg`), or None.
        kind:       'psp', 'e4e', 'restyle_psp' or 'restyle_e4e'.
        iterations: ReStyle iterations (official default 5); ignored for pSp/e4e.
        resize_to:  the encoder's input size (256 for the official encoders).
        add_latent_avg: pSp/e4e: add `latent_avg` to the codes (pSp's `start_from_latent_avg`);
                    ReStyle always starts from it.
    Returns:
        InversionResult with ws [1, num_ws, w_dim], the full-resolution reconstruction, one loss
        dict per forward pass ('mse' against the input at `resize_to`), and for ReStyle `steps`
        holding every iteration's ws and image. Tensors on the CPU.
    Raises:
        InputError for a wrong kind, shape or missing ReStyle latent_avg; InversionCancelled
        (between ReStyle iterations; `partial` holds the iterations done).
    """
    if kind not in ENCODER_KINDS:
        raise InputError(f"Encoder kind must be one of {', '.join(ENCODER_KINDS)}, got {kind!r}.")
    if image.ndim != 4 or image.shape[:2] != (1, 3):
        raise InputError(f"The image to encode must be [1, 3, H, W], got {list(image.shape)}.")
    if kind.startswith("restyle") and latent_avg is None:
        raise InputError("ReStyle starts from the average latent, but this encoder checkpoint has no latent_avg.")
    if iterations < 1:
        raise InputError(f"ReStyle needs at least 1 iteration, got {iterations}.")
    monitor = Monitor(progress, should_stop)
    enc_dev, g_dev = next(encoder.parameters()).device, next(G.parameters()).device
    x = encoder_input(image, resize_to).to(enc_dev)
    avg = None if latent_avg is None else _latent_avg_ws(latent_avg, G.num_ws, G.w_dim, g_dev)

    def codes_of(inp: torch.Tensor) -> torch.Tensor:
        codes = encoder(inp).to(g_dev, torch.float32)
        if codes.shape[1:] != (G.num_ws, G.w_dim):
            raise InputError(f"The encoder predicts {codes.shape[1]} x {codes.shape[2]} codes but the generator "
                             f"needs {G.num_ws} x {G.w_dim}; pick the generator the encoder was trained with.")
        return codes

    if not kind.startswith("restyle"):
        monitor.tick(0, 1, f"Encoding ({kind})")
        ws = codes_of(x)
        if avg is not None and add_latent_avg:
            ws = ws + avg
        img = synthesize(G, ws)
        log = {"step": 0.0, "mse": float(masked_mse(_face_pool(img, resize_to).to(enc_dev), x))}
        monitor.tick(1, 1, f"Encoding ({kind}): done")
        return InversionResult(kind, ws.cpu().clone(), img.clamp(-1, 1).cpu(), [log], monitor.elapsed(),
                               extra={"latent_avg_added": avg is not None and add_latent_avg})

    steps: list[InversionStep] = []
    logs: list[dict[str, float]] = []
    y_hat = _face_pool(synthesize(G, avg), resize_to).to(enc_dev)  # the average image, the first "previous output"
    ws = avg
    try:
        for i in range(iterations):
            monitor.tick(i, iterations, f"ReStyle iteration {i + 1} of {iterations}")
            ws = codes_of(torch.cat([x, y_hat], dim=1)) + ws  # the first residual is taken w.r.t. latent_avg
            img = synthesize(G, ws)
            y_hat = _face_pool(img, resize_to).to(enc_dev)
            steps.append(InversionStep(i, ws.cpu().clone(), img.clamp(-1, 1).cpu()))
            logs.append({"step": float(i), "mse": float(masked_mse(y_hat, x))})
        monitor.tick(iterations, iterations, "ReStyle: done")
    except InversionCancelled as e:
        partial = None
        if steps:
            partial = InversionResult(kind, steps[-1].ws, steps[-1].image, logs, monitor.elapsed(), steps=tuple(steps),
                                      extra={"latent_avg_added": True, "iterations": len(steps)})
        raise InversionCancelled(str(e), partial) from None
    return InversionResult(kind, steps[-1].ws, steps[-1].image, logs, monitor.elapsed(), steps=tuple(steps),
                           extra={"latent_avg_added": True, "iterations": iterations})


def encode_then_optimize(encoder: nn.Module, G: nn.Module, image: torch.Tensor, latent_avg: torch.Tensor | None, *,
                         kind: str = "e4e", options: OptimizeOptions = OptimizeOptions.hybrid(),
                         perceptual: PerceptualLoss | None = None, iterations: int = 5, resize_to: int = 256,
                         add_latent_avg: bool = True, mask: torch.Tensor | None = None, w_stats: WStats | None = None,
                         seed: int | torch.Generator = 0, progress: Progress | None = None,
                         should_stop: ShouldStop | None = None) -> InversionResult:
    """Hybrid inversion: `encode(...)`, then `optimize_latent(..., init_ws=encoder ws)`.

    `image` must be at the generator's resolution ([1, 3, R, R]; it is the optimisation target).
    Returns InversionResult(method=f'hybrid_{kind}'); `extra['encoder_result']` is the encoder's
    result and `extra['init_ws']` equals its ws. Progress: 10 % encoder, 90 % optimisation.
    """
    check_target(G, image, mask)
    monitor = Monitor(progress, should_stop)
    enc_progress = None if progress is None else (lambda f, m: progress(0.1 * f, m))
    enc = encode(encoder, G, image, latent_avg, kind=kind, iterations=iterations, resize_to=resize_to,
                 add_latent_avg=add_latent_avg, progress=enc_progress, should_stop=should_stop)
    try:
        res = optimize_latent(G, image, options, perceptual=perceptual, mask=mask, init_ws=enc.ws, w_stats=w_stats,
                              seed=seed, method=f"hybrid_{kind}", _monitor=monitor.sub(0.1, 0.9))
    except InversionCancelled as e:
        partial = e.partial
        if partial is not None:
            partial = InversionResult(partial.method, partial.ws, partial.image, partial.losses, partial.seconds,
                                      partial.noises, enc.steps, {**partial.extra, "encoder_result": enc})
        raise InversionCancelled(str(e), partial) from None
    return InversionResult(res.method, res.ws, res.image, res.losses, res.seconds, res.noises, enc.steps,
                           {**res.extra, "encoder_result": enc})
