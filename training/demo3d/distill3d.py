"""The demo 3D generator: a small EG3D (Chan et al., CVPR 2022; our `shared.archs.eg3d`, which
reproduces NVlabs/eg3d@7cf1fd1) distilled from the portrait renderer on this CPU.

The renderer (shared/portraits.py) is view-consistent by construction: its yaw and pitch turn one
rigid head. So the view factors become the EG3D camera (shared/demo/camera3d.py: EG3D world = the
head frame, a far pinhole camera that matches the renderer's orthographic one) and the other 33
factor coordinates (shared/demo/factor_latents.py without the two view dimensions) are z. G(z, c) is
regressed on render(factors at that view), as the 2D demo generator is (training/demo/distill.py,
whose `DistillLoss` is used on the 64 px image), plus a part-weighted L1 on the 32 px raw
neural-rendering image and an L1 on depth against the renderer's depth map (foreground pixels),
which pins the geometry. The mapping sees the camera (EG3D's generator pose conditioning); with
probability `swap_prob` it sees another view, and the target's light is then turned so that the
head is lit as it is in that view (`static_light`): the scene of (z, conditioning camera) is one
rigid, lit head seen from any render camera, which is what an orbit with a fixed latent shows.
EMA of G, cosine learning rate, resumable checkpoints, held-out PSNR in the log.

    python -m training.demo3d.distill3d --run-dir ~/.cache/stylegan-hub-runs/demo3d --seconds 10800 \
        --export demo3d.safetensors
"""
from __future__ import annotations

import argparse
import copy
import json
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import torch

from shared.archs.eg3d import EG3DConfig, EG3DGenerator, RayDraws
from shared.demo.camera3d import CAMERA_DISTANCE, LOOK_AT_PIVOT, portrait_camera, ray_depth_from_portrait
from shared.demo.factor_latents import LAYOUT, Z_DIM, category_offsets, z_to_factors
from shared.loaders.native import save_native
from shared.portraits import Factors, head_rotation, render, with_view
from training.demo.distill import DistillLoss

__all__ = ["VIEW_FACTORS", "Z3_DIM", "Distill3DConfig", "build_generator", "distill3d", "export_generator",
           "generator_config", "heldout_psnr", "latent_factors", "sample_latents", "static_light"]

VIEW_FACTORS = ("yaw", "pitch")
_VIEW_DIMS = [e.start for e in LAYOUT if e.spec.name in VIEW_FACTORS]
_KEEP_DIMS = [i for i in range(Z_DIM) if i not in _VIEW_DIMS]
Z3_DIM = len(_KEEP_DIMS)                        # 33: the factor coordinates without yaw and pitch
_VIEW_RANGE = {e.spec.name: (e.spec.low, e.spec.high) for e in LAYOUT if e.spec.name in VIEW_FACTORS}


@dataclass(frozen=True)
class Distill3DConfig:
    resolution: int = 64             # final image (the SR network's output)
    neural_resolution: int = 32      # rays per side
    plane_resolution: int = 64       # tri-plane side (official EG3D: 256)
    channel_base: int = 2048         # backbone channels min(channel_base // res, channel_max)
    channel_max: int = 64
    mapping_layers: int = 2
    mapping_lr: float = 1.0          # as the 2D demo: StyleGAN's 0.01 learns the factor map slowly
    depth_samples: int = 12          # stratified samples per ray
    importance_samples: int = 12     # importance samples per ray
    box_warp: float = 3.2            # the planes span +-1.6 head-frame units: head, hair and the neck's top
    batch: int = 8
    lr: float = 0.004
    lr_final: float = 0.1            # cosine decay to this fraction of lr at schedule_kimg
    schedule_kimg: float = 70.0      # ~3 h at ~1.1 s/step (batch 8, 2 uncontended cores; see the note)
    part_weight: float = 6.0         # extra L1 weight on the small parts (eyes, brows, nose, mouth, ...)
    perceptual: float = 0.5          # weight of the predictor-feature loss on the 64 px image
    perceptual_share: float = 0.5
    raw_weight: float = 0.5          # L1 of the 32 px raw image against a 32 px render
    depth_weight: float = 0.5        # L1 of depth (world units) on the renderer's foreground
    swap_prob: float = 0.3           # mapping sees another view; the target is relit to match it
    ema_kimg: float = 2.0
    ema_rampup: float = 0.05
    seed: int = 0


def generator_config(cfg: Distill3DConfig) -> EG3DConfig:
    """The EG3D configuration of the demo 3D generator (camera defaults from shared/demo/camera3d.py)."""
    groups = tuple((_KEEP_DIMS.index(e.start), category_offsets(tuple(e.spec.probs)))
                   for e in LAYOUT if e.spec.kind != "continuous")
    half = cfg.box_warp / 2
    return EG3DConfig(z_dim=Z3_DIM, img_resolution=cfg.resolution, mapping_layers=cfg.mapping_layers,
                      mapping_lr=cfg.mapping_lr, channel_base=cfg.channel_base, channel_max=cfg.channel_max,
                      sr_module="HubSuperresolution2X64", sr_conv_clamp=None,
                      neural_rendering_resolution=cfg.neural_resolution, depth_resolution=cfg.depth_samples,
                      depth_resolution_importance=cfg.importance_samples, ray_start=CAMERA_DISTANCE - half,
                      ray_end=CAMERA_DISTANCE + half, box_warp=cfg.box_warp, c_scale=1 / CAMERA_DISTANCE,
                      avg_camera_radius=CAMERA_DISTANCE, avg_camera_pivot=LOOK_AT_PIVOT,
                      plane_resolution=cfg.plane_resolution, normalize_z=False, z_onehot=groups)


def sample_latents(n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """z [n, Z3_DIM] ~ N(0, I) and a view (yaw, pitch) [n] in degrees from the renderer's prior."""
    z = torch.randn([n, Z3_DIM], generator=generator)
    u = torch.rand([2, n], generator=generator, dtype=torch.float64)
    (ylo, yhi), (plo, phi) = _VIEW_RANGE["yaw"], _VIEW_RANGE["pitch"]
    return z, (ylo + (yhi - ylo) * u[0]).float(), (plo + (phi - plo) * u[1]).float()


def latent_factors(z: torch.Tensor, yaw: float | torch.Tensor, pitch: float | torch.Tensor) -> Factors:
    """The renderer's factors of z [N, Z3_DIM] seen from (yaw, pitch) [deg]."""
    full = torch.zeros([z.shape[0], Z_DIM])
    full[:, _KEEP_DIMS] = z.detach().float().cpu()
    return with_view(z_to_factors(full), yaw=yaw, pitch=pitch)


def static_light(factors: Factors, cond_yaw: torch.Tensor, cond_pitch: torch.Tensor) -> Factors:
    """The factors with the light turned so that, seen from factors' own view, the head is lit as
    it is at the view (cond_yaw, cond_pitch) [deg] (light fixed to the head, not to the world)."""
    az, el = torch.deg2rad(factors["light_azimuth"].double()), torch.deg2rad(factors["light_elevation"].double())
    light = torch.stack([torch.sin(az) * torch.cos(el), torch.sin(el), torch.cos(az) * torch.cos(el)], 1)
    r_view = head_rotation(factors["yaw"], factors["pitch"])
    r_cond = head_rotation(cond_yaw.float(), cond_pitch.float())
    turned = (r_view @ r_cond.transpose(1, 2) @ light.unsqueeze(2)).squeeze(2)
    vals = dict(factors.values)
    vals["light_azimuth"] = torch.rad2deg(torch.atan2(turned[:, 0], turned[:, 2])).float()
    vals["light_elevation"] = torch.rad2deg(torch.asin(turned[:, 1].clamp(-1, 1))).float()
    return Factors(vals)


def build_generator(cfg: Distill3DConfig) -> EG3DGenerator:
    """A freshly initialised demo EG3D (deterministic for cfg.seed)."""
    with torch.random.fork_rng():
        torch.manual_seed(cfg.seed)
        G = EG3DGenerator(generator_config(cfg))
    G.backbone.init_random_(torch.Generator().manual_seed(cfg.seed))
    return G.train().requires_grad_(True)


def _midpoints(G: EG3DGenerator, n: int, device: torch.device | str = "cpu") -> RayDraws:
    cfg = G.config
    r = cfg.neural_rendering_resolution
    return RayDraws.midpoints(n, r * r, cfg.depth_resolution, cfg.depth_resolution_importance, device=device)


@torch.no_grad()
def heldout_psnr(G: EG3DGenerator, n: int = 32, seed: int = 7_300_003) -> float:
    """Mean PSNR [dB] of G(z, c) against render(factors of z at that view) on n fixed held-out
    (z, view) pairs (the mapping sees the render camera; no ray jitter)."""
    z, yaw, pitch = sample_latents(n, torch.Generator().manual_seed(seed))
    dev = G.w_avg.device
    c = portrait_camera(yaw, pitch).to(dev)
    fake = G(z.to(dev), c, draws=_midpoints(G, n, dev)).image.clamp(-1, 1).cpu()
    real = render(latent_factors(z, yaw, pitch), int(G.img_resolution)).img
    mse = ((fake - real) / 2).square().mean(dim=[1, 2, 3])
    return float((10 * torch.log10(1 / mse.clamp_min(1e-10))).mean())


class _Losses:
    """DistillLoss on the final image, part-weighted multi-scale L1 on the raw image (DistillLoss
    without its perceptual term), L1 on foreground depth."""

    def __init__(self, cfg: Distill3DConfig, device: torch.device | str = "cpu") -> None:
        self.cfg = cfg
        self.final = DistillLoss(part_weight=cfg.part_weight, perceptual=cfg.perceptual,
                                 perceptual_share=cfg.perceptual_share, device=device)
        self.raw = DistillLoss(part_weight=cfg.part_weight, perceptual=0.0, perceptual_share=0.0, device=device)

    def __call__(self, out, factors: Factors) -> dict[str, torch.Tensor]:
        cfg = self.cfg
        target = render(factors, cfg.resolution)
        low = render(factors, out.image_raw.shape[-1])
        total, pix, perc = self.final(out.image, target)
        raw = self.raw(out.image_raw, low)[1]
        fg = torch.isfinite(low.depth).unsqueeze(1)
        want = ray_depth_from_portrait(torch.where(fg[:, 0], low.depth, 0.0)).to(out.image_depth.device)
        fg = fg.to(want.device)
        depth = ((out.image_depth - want).abs() * fg).sum() / fg.sum().clamp_min(1)
        total = total + cfg.raw_weight * raw + cfg.depth_weight * depth
        return {"total": total, "pix": pix, "perc": perc, "raw": raw, "depth": depth}


def _lr_at(cfg: Distill3DConfig, kimg: float) -> float:
    t = min(kimg / cfg.schedule_kimg, 1.0)
    return cfg.lr * (cfg.lr_final + (1 - cfg.lr_final) * 0.5 * (1 + math.cos(math.pi * t)))


def _save_atomic(obj, path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def export_generator(G: EG3DGenerator, path: Path) -> Path:
    """Write G (EMA weights) as the hub's native safetensors (arch 'eg3d'), atomically."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    save_native(G, tmp, source="StyleGAN Hub demo world, 3D (training/demo3d/distill3d.py)")
    os.replace(tmp, path)
    return path


def _step(G, loss_fn, cfg: Distill3DConfig, gen: torch.Generator) -> dict[str, torch.Tensor]:
    """One batch: sample (z, render view, conditioning view), render targets, G forward, losses."""
    z, yaw, pitch = sample_latents(cfg.batch, gen)
    _, cyaw, cpitch = sample_latents(cfg.batch, gen)
    swap = torch.rand([cfg.batch], generator=gen) < cfg.swap_prob
    cyaw, cpitch = torch.where(swap, cyaw, yaw), torch.where(swap, cpitch, pitch)
    factors = static_light(latent_factors(z, yaw, pitch), cyaw, cpitch)
    dev = G.w_avg.device
    ws = G.mapping(z.to(dev), portrait_camera(cyaw, cpitch).to(dev))
    r = G.config.neural_rendering_resolution
    draws = RayDraws.draw(cfg.batch, r * r, G.config.depth_resolution, G.config.depth_resolution_importance,
                          generator=gen)  # drawn on the CPU: the same run on any device
    draws = RayDraws(draws.stratified.to(dev), None if draws.importance is None else draws.importance.to(dev))
    out = G.synthesis(ws, portrait_camera(yaw, pitch).to(dev), draws=draws)
    return loss_fn(out, factors)


def distill3d(cfg: Distill3DConfig, run_dir: Path, *, kimg: float, seconds: float | None = None,
              export: Path | None = None, eval_every_kimg: float = 2.0, checkpoint_every: int = 50,
              log_every: int = 10, device: torch.device | str = "cpu",
              progress: Callable[[str], None] = print) -> EG3DGenerator:
    """Train (or resume) until `kimg` thousand samples were shown or `seconds` passed; returns G_ema
    (on `device`; the renderer and all random draws stay on the CPU)."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    ckpt_path = run_dir / "checkpoint.pt"
    G = build_generator(cfg).to(device)
    G_ema = copy.deepcopy(G).eval().requires_grad_(False)
    opt = torch.optim.Adam(G.parameters(), lr=cfg.lr, betas=(0.0, 0.99))
    gen = torch.Generator().manual_seed(cfg.seed + 1)
    step, nimg, log, seconds_done = 0, 0, [], 0.0
    if ckpt_path.exists():
        st = torch.load(ckpt_path, weights_only=False, map_location=device)  # our own file
        stored = {**asdict(Distill3DConfig()), **st["config"]}
        if {k: v for k, v in stored.items() if k != "schedule_kimg"} != \
                {k: v for k, v in asdict(cfg).items() if k != "schedule_kimg"}:
            raise ValueError(f"{ckpt_path} was trained with another config; use a new --run-dir")
        G.load_state_dict(st["G"]); G_ema.load_state_dict(st["G_ema"]); opt.load_state_dict(st["opt"])
        G.w_avg.copy_(st["w_avg"]); G_ema.w_avg.copy_(st["w_avg"])
        gen.set_state(st["rng"].cpu())
        step, nimg, log, seconds_done = st["step"], st["nimg"], st["log"], st.get("seconds", 0.0)
        progress(f"resumed at step {step} ({nimg / 1000:.2f} kimg, {seconds_done / 3600:.2f} h)")
    loss_fn = _Losses(cfg, device)
    params_g, params_e = list(G.parameters()), list(G_ema.parameters())
    t_start, t_log, steps_since_log = time.time(), time.time(), 0
    next_eval = (math.floor(nimg / 1000 / eval_every_kimg) + 1) * eval_every_kimg

    def checkpoint() -> None:
        _save_atomic({"config": asdict(cfg), "G": G.state_dict(), "G_ema": G_ema.state_dict(),
                      "w_avg": G_ema.w_avg.clone(), "opt": opt.state_dict(), "rng": gen.get_state(),
                      "step": step, "nimg": nimg, "log": log,
                      "seconds": seconds_done + time.time() - t_start}, ckpt_path)
        (run_dir / "log.json").write_text(json.dumps(log, indent=0))

    while nimg < kimg * 1000 and (seconds is None or time.time() - t_start < seconds):
        for group in opt.param_groups:
            group["lr"] = _lr_at(cfg, nimg / 1000)
        losses = _step(G, loss_fn, cfg, gen)
        opt.zero_grad(set_to_none=True)
        losses["total"].backward()
        opt.step()
        nimg += cfg.batch
        step += 1
        steps_since_log += 1
        beta = 0.5 ** (cfg.batch / max(min(cfg.ema_kimg * 1000, nimg * cfg.ema_rampup), 1e-8))
        with torch.no_grad():
            torch._foreach_lerp_(params_e, params_g, 1 - beta)
            if step % 10 == 0:
                z, yaw, pitch = sample_latents(256, gen)
                w = G.mapping(z.to(device), portrait_camera(yaw, pitch).to(device))[:, 0].mean(0)
                G.w_avg.lerp_(w, 0.2)
                G_ema.w_avg.copy_(G.w_avg)
        if step % log_every == 0:
            rate = (time.time() - t_log) / steps_since_log
            t_log, steps_since_log = time.time(), 0
            parts = "  ".join(f"{k} {v.item():.4f}" for k, v in losses.items() if k != "total")
            progress(f"step {step:6d}  kimg {nimg / 1000:7.3f}/{kimg:g}  {parts}  "
                     f"lr {_lr_at(cfg, nimg / 1000):.5f}  {rate:.2f} s/step")
        if nimg / 1000 >= next_eval:
            next_eval += eval_every_kimg
            psnr = heldout_psnr(G_ema)
            hours = (seconds_done + time.time() - t_start) / 3600
            log.append({"kimg": round(nimg / 1000, 3), "hours": round(hours, 3),
                        **{k: round(v.item(), 5) for k, v in losses.items()}, "heldout_psnr": round(psnr, 2)})
            progress(f"  held-out PSNR {psnr:.2f} dB at {nimg / 1000:.2f} kimg ({hours:.2f} h)")
            checkpoint()
            if export is not None:
                export_generator(G_ema, export)
        elif step % checkpoint_every == 0:
            checkpoint()
    checkpoint()
    if export is not None:
        export_generator(G_ema, export)
    progress(f"stopped at step {step} ({nimg / 1000:.3f} kimg)")
    return G_ema


def main() -> None:
    ap = argparse.ArgumentParser(description="Distil the portrait renderer into the demo 3D EG3D (resumable).")
    ap.add_argument("--run-dir", type=Path, default=Path("runs/demo3d_distill"))
    ap.add_argument("--kimg", type=float, default=Distill3DConfig.schedule_kimg)
    ap.add_argument("--schedule-kimg", type=float, default=Distill3DConfig.schedule_kimg,
                    help="length of the cosine learning-rate schedule (may be changed when resuming)")
    ap.add_argument("--batch", type=int, default=Distill3DConfig.batch, help="a new run's setting")
    ap.add_argument("--seconds", type=float, default=None, help="stop after this many seconds (resumable)")
    ap.add_argument("--threads", type=int, default=max(1, (os.cpu_count() or 2)))
    ap.add_argument("--eval-every-kimg", type=float, default=2.0)
    ap.add_argument("--export", type=Path, help="write G_ema here (native safetensors) at every evaluation")
    ap.add_argument("--device", default="cpu", help="torch device of G (the renderer runs on the CPU)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cfg = Distill3DConfig(schedule_kimg=args.schedule_kimg, batch=args.batch)
    distill3d(cfg, args.run_dir, kimg=args.kimg, seconds=args.seconds, export=args.export,
              eval_every_kimg=args.eval_every_kimg, device=args.device, progress=lambda s: print(s, flush=True))


if __name__ == "__main__":
    main()
