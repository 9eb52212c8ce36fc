"""Train the demo world's small StyleGAN2 on procedural portraits (shared/portraits.py).

The recipe is StyleGAN2's (Karras et al. 2020; NVlabs/stylegan2-ada-pytorch `training/loss.py`):
non-saturating logistic loss, lazy R1 regularisation of D on real images, style-mixing
regularisation, an exponential moving average of G with ramp-up, Adam(0, 0.99) with the
lazy-regularisation learning-rate/beta correction. Data are rendered on the fly, so there is
no dataset and no overfitting. Resumable: a checkpoint in the run folder is written
atomically every `--checkpoint-every` steps and picked up on restart.

    python -m shared.demo.train_gan --run-dir runs/demo_g --kimg 200 [--threads 2]
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
import torch.nn.functional as F

from shared.archs.discriminator import Discriminator
from shared.archs.stylegan2 import StyleGAN2Config, StyleGAN2Generator
from shared.portraits import render, sample_factors

__all__ = ["GanTrainConfig", "demo_generator_config", "train_gan"]


@dataclass(frozen=True)
class GanTrainConfig:
    resolution: int = 64
    w_dim: int = 128
    mapping_layers: int = 4
    channels: tuple[tuple[int, int], ...] = ((4, 128), (8, 128), (16, 128), (32, 64), (64, 32))
    batch: int = 32
    lr: float = 0.0025
    r1_gamma: float = 0.1
    r1_every: int = 16
    mixing_prob: float = 0.9
    ema_kimg: float = 5.0
    ema_rampup: float = 0.05
    seed: int = 0


def demo_generator_config(cfg: GanTrainConfig) -> StyleGAN2Config:
    return StyleGAN2Config(z_dim=cfg.w_dim, w_dim=cfg.w_dim, img_resolution=cfg.resolution,
                           mapping_layers=cfg.mapping_layers, channels=cfg.channels)


def _real_batch(n: int, size: int, g: torch.Generator) -> torch.Tensor:
    return render(sample_factors(n, g), size=size).img.clone()  # out of inference mode


def _mixed_ws(G: StyleGAN2Generator, n: int, prob: float, g: torch.Generator) -> torch.Tensor:
    z = torch.randn([n, G.z_dim], generator=g)
    ws = G.mapping(z)
    if prob > 0 and torch.rand([], generator=g) < prob:
        cut = int(torch.randint(1, G.num_ws, [], generator=g))
        ws2 = G.mapping(torch.randn([n, G.z_dim], generator=g))
        ws = torch.cat([ws[:, :cut], ws2[:, cut:]], dim=1)
    return ws


def _save_atomic(obj, path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def train_gan(cfg: GanTrainConfig, run_dir: Path, *, kimg: float, checkpoint_every: int = 50,
              progress: Callable[[str], None] = print) -> StyleGAN2Generator:
    """Train (or resume) until `kimg` thousand real images have been shown; returns G_ema."""
    run_dir.mkdir(parents=True, exist_ok=True)
    ckpt_path = run_dir / "checkpoint.pt"
    G = StyleGAN2Generator(demo_generator_config(cfg)).init_random_(torch.Generator().manual_seed(cfg.seed))
    D = Discriminator(cfg.resolution, dict(cfg.channels))
    with torch.no_grad():
        gd = torch.Generator().manual_seed(cfg.seed + 1)
        for p in D.parameters():
            if p.ndim > 1:
                p.copy_(torch.randn(p.shape, generator=gd))
    G_ema = copy.deepcopy(G).eval().requires_grad_(False)
    c = cfg.r1_every / (cfg.r1_every + 1)
    opt_g = torch.optim.Adam(G.parameters(), lr=cfg.lr, betas=(0.0, 0.99))
    opt_d = torch.optim.Adam(D.parameters(), lr=cfg.lr * c, betas=(0.0, 0.99 ** c))
    gen = torch.Generator().manual_seed(cfg.seed + 2)
    step, nimg, log = 0, 0, []
    if ckpt_path.exists():
        st = torch.load(ckpt_path, weights_only=False)  # our own file, written by this function
        if st["config"] != asdict(cfg):
            raise ValueError(f"{ckpt_path} was trained with another config; use a new --run-dir")
        G.load_state_dict(st["G"]); D.load_state_dict(st["D"]); G_ema.load_state_dict(st["G_ema"])
        G_ema.w_avg.copy_(st["w_avg"])
        opt_g.load_state_dict(st["opt_g"]); opt_d.load_state_dict(st["opt_d"])
        gen.set_state(st["rng"]); step, nimg, log = st["step"], st["nimg"], st["log"]
        progress(f"resumed at step {step} ({nimg / 1000:.1f} kimg)")
    G.train(); D.train()
    t0 = time.time()
    while nimg < kimg * 1000:
        real = _real_batch(cfg.batch, cfg.resolution, gen)
        # --- G step
        G.requires_grad_(True); D.requires_grad_(False)
        fake = G.synthesis(_mixed_ws(G, cfg.batch, cfg.mixing_prob, gen), noise_mode="random", generator=gen)
        loss_g = F.softplus(-D(fake)).mean()
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        # --- D step
        G.requires_grad_(False); D.requires_grad_(True)
        with torch.no_grad():
            fake = G.synthesis(_mixed_ws(G, cfg.batch, cfg.mixing_prob, gen), noise_mode="random", generator=gen)
        loss_d = F.softplus(D(fake)).mean() + F.softplus(-D(real)).mean()
        r1 = torch.zeros([])
        if step % cfg.r1_every == 0:
            real_r = real.detach().requires_grad_(True)
            grad, = torch.autograd.grad(D(real_r).sum(), real_r, create_graph=True)
            r1 = grad.square().sum(dim=[1, 2, 3]).mean()
            loss_d = loss_d + r1 * (cfg.r1_gamma / 2) * cfg.r1_every
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()
        # --- EMA of G (and its w_avg tracking)
        nimg += cfg.batch
        ema_nimg = min(cfg.ema_kimg * 1000, nimg * cfg.ema_rampup)
        beta = 0.5 ** (cfg.batch / max(ema_nimg, 1e-8))
        with torch.no_grad():
            for pe, p in zip(G_ema.parameters(), G.parameters()):
                pe.lerp_(p, 1 - beta)
            for be, b in zip(G_ema.buffers(), G.buffers()):
                be.copy_(b)
            w = G.mapping(torch.randn([256, G.z_dim], generator=gen))[:, 0].mean(0)
            G_ema.w_avg.lerp_(w, 0.05)
        step += 1
        if step % 10 == 0:
            rate = (time.time() - t0) / 10
            t0 = time.time()
            log.append({"step": step, "kimg": nimg / 1000, "loss_g": loss_g.item(), "loss_d": loss_d.item(),
                        "r1": r1.item(), "s_per_step": rate})
            progress(f"step {step:6d}  kimg {nimg / 1000:7.2f}/{kimg:g}  G {float(loss_g):.3f}  "
                     f"D {float(loss_d):.3f}  {rate:.2f} s/step")
        if step % checkpoint_every == 0 or nimg >= kimg * 1000:
            _save_atomic({"config": asdict(cfg), "G": G.state_dict(), "D": D.state_dict(),
                          "G_ema": G_ema.state_dict(), "w_avg": G_ema.w_avg.clone(), "opt_g": opt_g.state_dict(),
                          "opt_d": opt_d.state_dict(), "rng": gen.get_state(), "step": step, "nimg": nimg,
                          "log": log}, ckpt_path)
            (run_dir / "log.json").write_text(json.dumps(log[-200:], indent=0))
    return G_ema


def load_checkpoint_generator(run_dir: Path) -> StyleGAN2Generator:
    """G_ema (with its w_avg) from a run folder's checkpoint."""
    st = torch.load(run_dir / "checkpoint.pt", weights_only=False)  # our own file
    cfg = GanTrainConfig(**{**st["config"], "channels": tuple(map(tuple, st["config"]["channels"]))})
    G = StyleGAN2Generator(demo_generator_config(cfg))
    G.load_state_dict(st["G_ema"])
    G.w_avg.copy_(st["w_avg"])
    return G.eval().requires_grad_(False)


@torch.no_grad()
def save_sample_grid(G: StyleGAN2Generator, path: Path, *, n: int = 64, psi: float = 1.0, seed: int = 0) -> Path:
    """A grid of n samples (seeded) as PNG."""
    from PIL import Image

    from shared.images import image_grid, to_uint8_hwc
    z = torch.randn([n, G.z_dim], generator=torch.Generator().manual_seed(seed))
    imgs = G(z, truncation_psi=psi)
    Image.fromarray(image_grid(to_uint8_hwc(imgs), pad=2)).save(path)
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description="Train the demo world's StyleGAN2 (resumable).")
    ap.add_argument("--run-dir", type=Path, default=Path("runs/demo_g"))
    ap.add_argument("--kimg", type=float, default=200)
    ap.add_argument("--threads", type=int, default=max(1, (os.cpu_count() or 2)))
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--checkpoint-every", type=int, default=50)
    ap.add_argument("--grid", type=Path, help="only write a sample grid of the run's G_ema to this PNG")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.grid:
        save_sample_grid(load_checkpoint_generator(args.run_dir), args.grid)
        return
    cfg = GanTrainConfig(batch=args.batch)
    train_gan(cfg, args.run_dir, kimg=args.kimg, checkpoint_every=args.checkpoint_every,
              progress=lambda s: print(s, flush=True))


if __name__ == "__main__":
    main()
