"""Train the demo world's encoder: e4e (Tov et al., "Designing an Encoder for StyleGAN Image
Manipulation", 2021; omertov/encoder4editing) with a reduced IR-SE backbone, inverting the demo
StyleGAN2 (image -> W+).

The encoder is our `Encoder4Editing` (shared/archs/encoders.py) built small through
`EncoderConfig(widths=..., blocks=..., input_size=64)`; its codes are added to the generator's
average latent, as e4e does. The world is synthetic, so training uses what the official recipe
has to approximate: half of each batch is the generator's own samples, whose true W+ codes are
known (a latent loss, normalised by the spread of W), the other half renders of the portrait
renderer (the demo world's "real photos"). Losses: pixel MSE on both halves, the latent loss on
the first, and e4e's delta regulariser (rows stay close to row 0, so W-space edits apply).
The generator is frozen. The file is safetensors with the official options in its header, so
`load_demo_encoder` goes through the same checks as an official checkpoint.

    python -m training.demo.train_encoder --generator G.safetensors --out encoder.safetensors
"""
from __future__ import annotations

import argparse
import json
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F

from shared import load_generator
from shared.archs.encoders import EncoderConfig, build_encoder
from shared.loaders.encoders import SAFETENSORS_META_KEY as META_KEY
from shared.loaders.encoders import EncoderCheckpoint, load_encoder_checkpoint
from shared.portraits import render, sample_factors
from training.demo.pool import Pool, load_pool

__all__ = ["EncoderTrainConfig", "encoder_psnr", "load_demo_encoder", "save_demo_encoder", "train_encoder"]


@dataclass(frozen=True)
class EncoderTrainConfig:
    widths: tuple[int, int, int, int] = (32, 64, 96, 128)
    blocks: tuple[int, int, int, int] = (1, 1, 2, 1)
    batch: int = 64                # half generator samples, half renders
    lr: float = 1e-3
    min_lr_ratio: float = 0.05     # cosine decay over the planned steps
    steps: int = 6000
    latent_weight: float = 1.0
    delta_weight: float = 2e-3
    mixing_prob: float = 0.5       # generator samples: W (rows equal) or style-mixed W+
    seed: int = 0
    init: str = ""                 # start from this saved demo encoder (a continuation)
    warmup: int = 200


def _psnr(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-image PSNR in dB of images in [-1, 1] (peak-to-peak 2)."""
    mse = (a.clamp(-1, 1) - b.clamp(-1, 1)).square().flatten(1).mean(1)
    return 10 * torch.log10(4.0 / mse.clamp(min=1e-10))


def _lr(cfg: EncoderTrainConfig, step: int) -> float:
    warm = min(1.0, (step + 1) / max(cfg.warmup, 1))
    cos = 0.5 * (1 + math.cos(math.pi * min(step, cfg.steps) / cfg.steps))
    return cfg.lr * warm * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * cos)


def _sample_ws(G, n: int, prob: float, g: torch.Generator, g_dev: torch.Generator) -> torch.Tensor:
    dev = g_dev.device
    ws = G.mapping(torch.randn([n, G.z_dim], generator=g_dev, device=dev))
    if prob > 0:
        mix = torch.rand([n], generator=g) < prob
        cut = torch.randint(1, G.num_ws, [n], generator=g)
        ws2 = G.mapping(torch.randn([n, G.z_dim], generator=g_dev, device=dev))
        take = (torch.arange(G.num_ws)[None] >= cut[:, None]) & mix[:, None]
        ws = torch.where(take.to(dev)[:, :, None], ws2, ws)
    return ws


def _renders(n: int, pool: Pool | None, g: torch.Generator, device: torch.device) -> torch.Tensor:
    if pool is None:
        return render(sample_factors(n, g), 64).img.clone().to(device)
    return pool.batch(torch.randint(len(pool), [n], generator=g).to(device))[0]


def train_encoder(G, cfg: EncoderTrainConfig, run_dir: Path, *, seconds: float | None = None,
                  device: str | torch.device = "cpu", pool: Pool | None = None, out: Path | None = None,
                  export_every_s: float = 60.0, checkpoint_every: int = 500, out_dtype: torch.dtype = torch.float32,
                  progress: Callable[[str], None] = print) -> EncoderCheckpoint:
    """Train (or resume from run_dir/checkpoint.pt) for cfg.steps steps or `seconds`; with `out`
    the encoder is saved there every `export_every_s` seconds and at the end."""
    device = torch.device(device)
    G = G.to(device).eval().requires_grad_(False)
    if G.img_resolution != 64:
        raise ValueError("the demo encoder is trained for a 64-px generator")
    config = EncoderConfig(encoder_type="Encoder4Editing", n_styles=G.num_ws, w_dim=G.w_dim, input_size=64,
                           widths=cfg.widths, blocks=cfg.blocks)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        E = build_encoder(config)
    if cfg.init:
        start = load_demo_encoder(cfg.init)
        if start.config != config:
            raise ValueError(f"{cfg.init} is another encoder architecture ({start.config}); use a new run")
        E.load_state_dict(start.encoder.state_dict())
    E = E.to(device)
    opt = torch.optim.Adam(E.parameters(), lr=cfg.lr, betas=(0.9, 0.99))
    gen = torch.Generator().manual_seed(cfg.seed + 1)
    gen_dev = torch.Generator(device).manual_seed(cfg.seed + 2)
    avg = G.w_avg.detach()[None, None].expand(1, G.num_ws, G.w_dim)
    w_var = G.mapping(torch.randn([4096, G.z_dim], generator=gen_dev, device=device)).var(0).mean()
    run_dir.mkdir(parents=True, exist_ok=True)
    ckpt_path = run_dir / "checkpoint.pt"
    step = 0
    if ckpt_path.exists():
        st = torch.load(ckpt_path, map_location=device, weights_only=False)  # our own file
        if st["config"] != asdict(cfg):
            raise ValueError(f"{ckpt_path} was written with another config; use a new run dir")
        E.load_state_dict(st["E"]); opt.load_state_dict(st["opt"]); gen.set_state(st["rng"].cpu())
        if st.get("rng_dev_type") == device.type:
            gen_dev.set_state(st["rng_dev"].cpu())
        step = st["step"]
        progress(f"resumed at step {step}")

    def checkpoint() -> None:
        tmp = ckpt_path.with_suffix(".tmp")
        torch.save({"config": asdict(cfg), "E": E.state_dict(), "opt": opt.state_dict(), "rng": gen.get_state(),
                    "rng_dev": gen_dev.get_state(), "rng_dev_type": device.type, "step": step}, tmp)
        os.replace(tmp, ckpt_path)

    def result() -> EncoderCheckpoint:
        return EncoderCheckpoint(E, config, avg[0].detach().cpu().clone(), _opts(config))

    E.train()
    half = cfg.batch // 2
    t_start = t_log = t_export = time.time()
    sums = torch.zeros(4, device=device)
    while step < cfg.steps and (seconds is None or time.time() - t_start < seconds):
        for group in opt.param_groups:
            group["lr"] = _lr(cfg, step)
        with torch.no_grad():
            ws_true = _sample_ws(G, half, cfg.mixing_prob, gen, gen_dev)
            fake = G.synthesis(ws_true, noise_mode="const")
            x = torch.cat([fake, _renders(cfg.batch - half, pool, gen, device)])
        raw = E.style_outputs(x)                     # row 0: w0, rows 1..: deltas
        codes = torch.cat([raw[:, :1], raw[:, :1] + raw[:, 1:]], dim=1) + avg
        recon = G.synthesis(codes, noise_mode="const")
        l_pix = F.mse_loss(recon, x)
        l_lat = (codes[:half] - ws_true).square().mean() / w_var
        l_delta = raw[:, 1:].square().mean() / w_var
        loss = l_pix + cfg.latent_weight * l_lat + cfg.delta_weight * l_delta
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        with torch.no_grad():
            sums += torch.stack([l_pix, l_lat, l_delta, _psnr(recon[half:], x[half:]).mean()]).detach()
        step += 1
        if step % 100 == 0:
            pix, lat, delta, psnr = (sums / 100).tolist()
            sums.zero_()
            now = time.time()
            progress(f"step {step}/{cfg.steps} pix {pix:.4f} lat {lat:.4f} delta {delta:.4f} "
                     f"render PSNR {psnr:.2f} dB | {100 / (now - t_log):.1f} steps/s")
            t_log = now
        if step % checkpoint_every == 0:
            checkpoint()
        if out is not None and time.time() - t_export >= export_every_s:
            save_demo_encoder(result(), out, dtype=out_dtype)
            t_export = time.time()
    checkpoint()
    E.eval()
    if out is not None:
        save_demo_encoder(result(), out, dtype=out_dtype)
    progress(f"stopped at step {step}")
    return result()


def _opts(config: EncoderConfig) -> dict:
    """The official e4e options that describe this encoder (what `encoder_from_checkpoint` checks)."""
    return {"encoder_type": config.encoder_type, "stylegan_size": 2 ** ((config.n_styles + 2) // 2),
            "input_nc": config.input_nc, "start_from_latent_avg": True}


def save_demo_encoder(ckpt: EncoderCheckpoint, path: Path, *, dtype: torch.dtype = torch.float32) -> Path:
    """safetensors: `encoder.*` weights (as `dtype`) and `latent_avg` [n_styles, w_dim] (float32);
    the header holds the official options under META_KEY. Written atomically."""
    from safetensors.torch import save_file
    tensors = {f"encoder.{k}": v.detach().to("cpu", dtype if v.is_floating_point() else v.dtype).contiguous()
               for k, v in ckpt.encoder.state_dict().items()}
    tensors["latent_avg"] = ckpt.latent_avg.detach().to("cpu", torch.float32).contiguous()
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, str(tmp), metadata={META_KEY: json.dumps({"opts": ckpt.opts}, sort_keys=True)})
    os.replace(tmp, path)
    return path


def load_demo_encoder(path: Path | str) -> EncoderCheckpoint:
    """Read a file written by `save_demo_encoder` (through the official checkpoint checks)."""
    return load_encoder_checkpoint(path)


@torch.no_grad()
def encoder_psnr(G, ckpt: EncoderCheckpoint, images: torch.Tensor, batch: int = 50) -> torch.Tensor:
    """Per-image PSNR (dB) of G(E(x) + latent_avg) against images [N,3,64,64] in [-1, 1]."""
    out = []
    avg = ckpt.latent_avg[None]
    for i in range(0, len(images), batch):
        x = images[i:i + batch]
        recon = G.synthesis(ckpt.encoder(x) + avg, noise_mode="const")
        out.append(_psnr(recon, x))
    return torch.cat(out)


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m training.demo.train_encoder", description=__doc__.split("\n")[0])
    ap.add_argument("--generator", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--run-dir", type=Path, default=Path("runs/demo_encoder"))
    ap.add_argument("--steps", type=int, default=EncoderTrainConfig.steps)
    ap.add_argument("--batch", type=int, default=EncoderTrainConfig.batch)
    ap.add_argument("--seconds", type=float, default=None)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--pool", type=Path)
    ap.add_argument("--threads", type=int, default=max(1, os.cpu_count() or 1))
    ap.add_argument("--fp16", action="store_true", help="store float16 weights")
    ap.add_argument("--init", default="", help="continue from this saved demo encoder")
    ap.add_argument("--lr", type=float, default=EncoderTrainConfig.lr)
    ap.add_argument("--warmup", type=int, default=EncoderTrainConfig.warmup)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cfg = EncoderTrainConfig(steps=args.steps, batch=args.batch, init=args.init, lr=args.lr, warmup=args.warmup)
    torch.backends.cudnn.benchmark = args.device.startswith("cuda")  # fixed shapes: pick the fastest kernels
    pool = load_pool(args.pool).to(args.device) if args.pool else None
    train_encoder(load_generator(args.generator), cfg, args.run_dir, seconds=args.seconds, device=args.device,
                  pool=pool, out=args.out, out_dtype=torch.float16 if args.fp16 else torch.float32,
                  progress=lambda s: print(s, flush=True))


if __name__ == "__main__":
    main()
