"""Train the demo world's small StyleGAN2 on procedural portraits (shared/portraits.py).

The recipe is StyleGAN2's (Karras et al. 2020; NVlabs/stylegan2-ada-pytorch `training/loss.py`):
non-saturating logistic loss, lazy R1 regularisation of D on real images, style-mixing
regularisation, an exponential moving average of G with ramp-up, Adam(0, 0.99) with the
lazy-regularisation learning-rate/beta correction. Data are rendered on the fly, so there is
no dataset and no overfitting. Resumable: a checkpoint in the run folder is written
atomically every `--checkpoint-every` steps and picked up on restart.

    python -m training.demo.train_gan --run-dir runs/demo_g --kimg 200 [--threads 2]

The demo world's generator is made in two stages on the CPU (see training.demo.distill): stage 1
`--stage distill` regresses G(z) on the renders of z's factors; stage 2 `--stage sharpen --init
<stage 1 export>` adds these adversarial losses (constant noise, the distillation loss kept on
unmixed samples). `--stage adversarial` (the default) is the pure GAN path of the GPU preset.
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F

from shared import load_generator
from shared.archs.discriminator import Discriminator
from shared.archs.stylegan2 import StyleGAN2Config, StyleGAN2Generator
from shared.images import image_grid, to_uint8_hwc
from shared.loaders.native import save_native
from shared.portraits import render, sample_factors
from shared.demo.factor_latents import Z_DIM, z_to_factors
from training.demo.distill import DistillConfig, DistillLoss, distill
from training.demo.pool import Pool, load_pool

__all__ = ["GanTrainConfig", "demo_generator_config", "export_generator", "train_gan"]


@dataclass(frozen=True)
class GanTrainConfig:
    resolution: int = 64
    w_dim: int = 128
    mapping_layers: int = 4
    channels: tuple[tuple[int, int], ...] = ((4, 256), (8, 192), (16, 128), (32, 96), (64, 48))
    batch: int = 64
    lr: float = 0.0025
    r1_gamma: float = 0.1
    r1_every: int = 16
    mixing_prob: float = 0.9
    ema_kimg: float = 5.0
    ema_rampup: float = 0.05
    seed: int = 0
    init: str = ""        # start G and G_ema from this native generator file (a continuation)
    d_warmup: int = 0     # with init: train a fresh D alone for this many steps first
    distill: float = 0.0  # stage 2 ("sharpen"): weight of the distillation loss (training.demo.distill)
                          # on unmixed samples; needs a factor-coordinate generator as init
    noise_mode: str = "random"   # noise inputs while training ("const" for a distilled generator)


def demo_generator_config(cfg: GanTrainConfig) -> StyleGAN2Config:
    return StyleGAN2Config(z_dim=cfg.w_dim, w_dim=cfg.w_dim, img_resolution=cfg.resolution,
                           mapping_layers=cfg.mapping_layers, channels=cfg.channels)


class _RealImages:
    """Real batches: rendered on the fly (CPU) or drawn from a pre-rendered `Pool` on the device."""

    def __init__(self, cfg: GanTrainConfig, pool: Pool | None, device: torch.device) -> None:
        self.cfg, self.device = cfg, device
        self.pool = None if pool is None else pool.to(device)

    def __call__(self, g: torch.Generator) -> torch.Tensor:
        if self.pool is None:
            real = render(sample_factors(self.cfg.batch, g), size=self.cfg.resolution).img.clone()
            return real.to(self.device)  # clone: out of inference mode
        index = torch.randint(len(self.pool), [self.cfg.batch], generator=g).to(self.device)
        return self.pool.batch(index)[0]


def _mixed_ws(G: StyleGAN2Generator, n: int, prob: float, g: torch.Generator,
              g_dev: torch.Generator) -> torch.Tensor:
    dev = g_dev.device
    ws = G.mapping(torch.randn([n, G.z_dim], generator=g_dev, device=dev))
    if prob > 0 and torch.rand([], generator=g) < prob:
        cut = int(torch.randint(1, G.num_ws, [], generator=g))
        ws2 = G.mapping(torch.randn([n, G.z_dim], generator=g_dev, device=dev))
        ws = torch.cat([ws[:, :cut], ws2[:, cut:]], dim=1)
    return ws


def _save_atomic(obj, path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _sidecars(path: Path) -> tuple[Path, Path]:
    """Where `export_generator(raw=...)` puts the raw G and the D beside a G_ema file."""
    return path.with_name(path.stem + "_G.safetensors"), path.with_name(path.stem + "_D.safetensors")


def export_generator(G_ema: StyleGAN2Generator, path: Path, *, dtype: torch.dtype = torch.float32,
                     source: str = "StyleGAN Hub demo world (training/demo/train_gan.py)",
                     raw: tuple[torch.nn.Module, torch.nn.Module] | None = None) -> Path:
    """Write G_ema in the hub's native safetensors format (atomically). With raw=(G, D), their
    state dicts also go beside it (`<stem>_G.safetensors`, `<stem>_D.safetensors`), so another
    machine can continue the run from the files alone (`--init`; optimiser state restarts)."""
    from safetensors.torch import save_file
    tmp = path.with_name(path.name + ".tmp")
    save_native(G_ema, tmp, source=source, dtype=dtype)
    os.replace(tmp, path)
    if raw is not None:
        for module, dest in zip(raw, _sidecars(path)):
            tmp = dest.with_name(dest.name + ".tmp")
            save_file({k: v.detach().cpu().contiguous() for k, v in module.state_dict().items()}, str(tmp))
            os.replace(tmp, dest)
    return path


def train_gan(cfg: GanTrainConfig, run_dir: Path, *, kimg: float, seconds: float | None = None,
              device: str | torch.device = "cpu", pool: Pool | None = None,
              export: Path | None = None, export_every_s: float = 60.0, checkpoint_every: int = 50,
              log_every: int = 50,
              progress: Callable[[str], None] = print) -> StyleGAN2Generator:
    """Train (or resume) until `kimg` thousand real images have been shown, or for `seconds` of
    this call's wall-clock time; returns G_ema. With `export`, G_ema is also written there in the
    native format every `export_every_s` seconds and at the end."""
    device = torch.device(device)
    run_dir.mkdir(parents=True, exist_ok=True)
    ckpt_path = run_dir / "checkpoint.pt"
    start = load_generator(cfg.init) if cfg.init else None
    g_config = start.config if start is not None else demo_generator_config(cfg)
    if cfg.distill and g_config.z_dim != Z_DIM:
        raise ValueError(f"distill needs a factor-coordinate generator (z_dim {Z_DIM}) as --init")
    G = StyleGAN2Generator(g_config).init_random_(torch.Generator().manual_seed(cfg.seed))
    D = Discriminator(cfg.resolution, dict(cfg.channels))
    with torch.no_grad():
        gd = torch.Generator().manual_seed(cfg.seed + 1)
        for p in D.parameters():
            if p.ndim > 1:
                p.copy_(torch.randn(p.shape, generator=gd))
    fresh_d = True
    if start is not None:
        from safetensors.torch import load_file

        G.load_state_dict(start.state_dict())
        G.w_avg.copy_(start.w_avg)
        g_raw, d_file = _sidecars(Path(cfg.init))
        if g_raw.is_file() and d_file.is_file():  # the raw G and the D of that run: continue both
            G.load_state_dict(load_file(str(g_raw)))
            D.load_state_dict(load_file(str(d_file)))
            fresh_d = False
            progress(f"continuing G and D from {g_raw.name}, {d_file.name}")
    G, D = G.to(device), D.to(device)
    G_ema = copy.deepcopy(G).eval().requires_grad_(False)
    if start is not None:
        G_ema.load_state_dict(start.state_dict())
    c = cfg.r1_every / (cfg.r1_every + 1)
    opt_g = torch.optim.Adam(G.parameters(), lr=cfg.lr, betas=(0.0, 0.99))
    opt_d = torch.optim.Adam(D.parameters(), lr=cfg.lr * c, betas=(0.0, 0.99 ** c))
    gen = torch.Generator().manual_seed(cfg.seed + 2)                   # decisions, real data
    gen_dev = torch.Generator(device).manual_seed(cfg.seed + 3)         # latents and noise
    step, nimg, log = 0, 0, []
    if ckpt_path.exists():
        st = torch.load(ckpt_path, weights_only=False, map_location=device)  # our own file
        if st["config"] != asdict(cfg):
            raise ValueError(f"{ckpt_path} was trained with another config; use a new --run-dir")
        G.load_state_dict(st["G"]); D.load_state_dict(st["D"]); G_ema.load_state_dict(st["G_ema"])
        G_ema.w_avg.copy_(st["w_avg"]); G.w_avg.copy_(st["w_avg"])
        opt_g.load_state_dict(st["opt_g"]); opt_d.load_state_dict(st["opt_d"])
        gen.set_state(st["rng"].cpu())
        if st.get("rng_dev_type") == device.type:
            gen_dev.set_state(st["rng_dev"].cpu())
        step, nimg, log = st["step"], st["nimg"], st["log"]
        progress(f"resumed at step {step} ({nimg / 1000:.1f} kimg)")
    real_images = _RealImages(cfg, pool, device)
    dcfg = DistillConfig()
    distill_loss = (DistillLoss(part_weight=dcfg.part_weight, perceptual=dcfg.perceptual,
                                perceptual_share=dcfg.perceptual_share, device=device) if cfg.distill else None)
    params_g, params_e = list(G.parameters()), list(G_ema.parameters())

    def checkpoint() -> None:
        _save_atomic({"config": asdict(cfg), "g_config": G.config.to_dict(), "G": G.state_dict(), "D": D.state_dict(),
                      "G_ema": G_ema.state_dict(), "w_avg": G_ema.w_avg.clone(), "opt_g": opt_g.state_dict(),
                      "opt_d": opt_d.state_dict(), "rng": gen.get_state(), "rng_dev": gen_dev.get_state(),
                      "rng_dev_type": device.type, "step": step, "nimg": nimg, "log": log}, ckpt_path)
        (run_dir / "log.json").write_text(json.dumps(log[-200:], indent=0))

    G.train(); D.train()
    t_start = t0 = t_export = time.time()
    done = lambda: nimg >= kimg * 1000 or (seconds is not None and time.time() - t_start >= seconds)  # noqa: E731
    while not done():
        real = real_images(gen)
        # --- G step (none while a fresh D warms up against a given G)
        loss_g = torch.zeros([], device=device)
        if step >= (cfg.d_warmup if fresh_d else 0):
            G.requires_grad_(True); D.requires_grad_(False)
            fake = G.synthesis(_mixed_ws(G, cfg.batch, cfg.mixing_prob, gen, gen_dev), noise_mode=cfg.noise_mode,
                               generator=gen_dev)
            loss_g = F.softplus(-D(fake)).mean()
            if distill_loss is not None:   # unmixed samples stay on the renderer
                z = torch.randn([cfg.batch, G.z_dim], generator=gen)
                target = render(z_to_factors(z), cfg.resolution)
                loss_dist, _, _ = distill_loss(G(z.to(device), noise_mode="const"), target)
                loss_g = loss_g + cfg.distill * loss_dist
            opt_g.zero_grad(set_to_none=True)
            loss_g.backward()
            opt_g.step()
        # --- D step
        G.requires_grad_(False); D.requires_grad_(True)
        with torch.no_grad():
            fake = G.synthesis(_mixed_ws(G, cfg.batch, cfg.mixing_prob, gen, gen_dev), noise_mode=cfg.noise_mode,
                               generator=gen_dev)
        loss_d = F.softplus(D(fake)).mean() + F.softplus(-D(real)).mean()
        r1 = torch.zeros([], device=device)
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
            torch._foreach_lerp_(params_e, params_g, 1 - beta)
            w = G.mapping(torch.randn([256, G.z_dim], generator=gen_dev, device=device))[:, 0].mean(0)
            G.w_avg.lerp_(w, 0.05)  # tracked on G, then copied with the other buffers
            for be, b in zip(G_ema.buffers(), G.buffers()):
                be.copy_(b)
        step += 1
        if step % log_every == 0:
            rate = (time.time() - t0) / log_every
            t0 = time.time()
            log.append({"step": step, "kimg": nimg / 1000, "loss_g": loss_g.item(), "loss_d": loss_d.item(),
                        "r1": r1.item(), "s_per_step": rate})
            progress(f"step {step:6d}  kimg {nimg / 1000:7.2f}/{kimg:g}  G {loss_g.item():.3f}  "
                     f"D {loss_d.item():.3f}  R1 {r1.item():.4f}  {rate:.3f} s/step")
        if step % checkpoint_every == 0:
            checkpoint()
        if export is not None and time.time() - t_export >= export_every_s:
            export_generator(G_ema, export, raw=(G, D))
            t_export = time.time()
    checkpoint()
    if export is not None:
        export_generator(G_ema, export, raw=(G, D))
    progress(f"stopped at step {step} ({nimg / 1000:.1f} kimg)")
    return G_ema


def load_checkpoint_generator(run_dir: Path) -> StyleGAN2Generator:
    """G_ema (with its w_avg) from a run folder's checkpoint."""
    st = torch.load(run_dir / "checkpoint.pt", weights_only=False, map_location="cpu")  # our own file
    cfg = GanTrainConfig(**{**st["config"], "channels": tuple(map(tuple, st["config"]["channels"]))})
    G = StyleGAN2Generator(StyleGAN2Config.from_dict(st["g_config"]) if "g_config" in st else demo_generator_config(cfg))
    G.load_state_dict(st["G_ema"])
    G.w_avg.copy_(st["w_avg"])
    return G.eval().requires_grad_(False)


@torch.no_grad()
def save_sample_grid(G: StyleGAN2Generator, path: Path, *, n: int = 64, psi: float = 1.0, seed: int = 0) -> Path:
    """A grid of n samples (seeded) as PNG."""
    from PIL import Image

    z = torch.randn([n, G.z_dim], generator=torch.Generator().manual_seed(seed))
    imgs = G(z, truncation_psi=psi)
    Image.fromarray(image_grid(to_uint8_hwc(imgs), pad=2)).save(path)
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description="Train the demo world's StyleGAN2 (resumable).")
    ap.add_argument("--run-dir", type=Path, default=Path("runs/demo_g"))
    ap.add_argument("--kimg", type=float, default=200)
    ap.add_argument("--seconds", type=float, default=None, help="stop after this much wall-clock time")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--pool", type=Path, help="draw real images from this pre-rendered pool (training.demo.pool)")
    ap.add_argument("--export", type=Path, help="also write G_ema here (native safetensors), every minute")
    ap.add_argument("--threads", type=int, default=max(1, (os.cpu_count() or 2)))
    ap.add_argument("--batch", type=int, default=GanTrainConfig.batch)
    ap.add_argument("--checkpoint-every", type=int, default=500)
    ap.add_argument("--grid", type=Path, help="only write a sample grid of the run's G_ema to this PNG")
    ap.add_argument("--init", default="", help="continue from this native generator file, with a fresh D")
    ap.add_argument("--d-warmup", type=int, default=0, help="with --init and no saved D: D-only steps first")
    ap.add_argument("--export-every", type=float, default=60.0, help="seconds between exports")
    ap.add_argument("--stage", choices=["distill", "sharpen", "adversarial"], default="adversarial",
                    help="distill: stage 1, regression on renders (training.demo.distill); sharpen: stage 2, "
                         "the StyleGAN2 losses with the distillation loss kept, from --init = stage 1's export; "
                         "adversarial: the StyleGAN2 losses alone (the GPU preset)")
    ap.add_argument("--distill-weight", type=float, default=1.0, help="sharpen: weight of the distillation loss")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.grid:
        save_sample_grid(load_checkpoint_generator(args.run_dir), args.grid)
        return
    if args.stage == "distill":
        distill(DistillConfig(), args.run_dir, kimg=args.kimg, seconds=args.seconds, export=args.export,
                progress=lambda s: print(s, flush=True))
        return
    if args.stage == "sharpen":
        if not args.init:
            ap.error("--stage sharpen starts from stage 1's generator: pass --init FILE")
        cfg = GanTrainConfig(batch=args.batch, init=args.init, d_warmup=args.d_warmup, lr=0.001,
                             distill=args.distill_weight, noise_mode="const")
    else:
        cfg = GanTrainConfig(batch=args.batch, init=args.init, d_warmup=args.d_warmup)
    torch.backends.cudnn.benchmark = args.device.startswith("cuda")  # fixed shapes: pick the fastest kernels
    pool = load_pool(args.pool) if args.pool else None
    train_gan(cfg, args.run_dir, kimg=args.kimg, seconds=args.seconds, device=args.device, pool=pool,
              export=args.export, export_every_s=args.export_every, checkpoint_every=args.checkpoint_every, progress=lambda s: print(s, flush=True))


if __name__ == "__main__":
    main()
