"""Stage 1 of the demo generator's training: distil the portrait renderer into a StyleGAN2.

The renderer (shared/portraits.py) is a known function of its factors, and the demo
generator's z is that factor vector in Gaussian coordinates (shared/demo/factor_latents.py), so
G(z) can be fitted by regression to render(z_to_factors(z)) instead of by an adversarial game.
Losses: L1 at 64/32/16 px weighted by the renderer's part map (eyes, brows, nose, mouth, glasses
and beard are a few % of the pixels and count `part_weight` times more), plus a perceptual loss in
the demo predictor's feature space (channel-normalised squared differences per stage, as LPIPS
does without learned weights). Style mixing is distilled too: for a mix of A's rows below a cut
and B's rows from it, the target is the render whose factors come from A or B by each factor's
home row (`HOME_ROWS`: pose and face shape in the 4-8 px rows, colours in the output rows), which
is how StyleGAN's layers split the factors (Karras et al. 2019, Fig. 3). EMA of G as in StyleGAN2
(NVlabs/stylegan2-ada-pytorch `training/training_loop.py`). Stage 2 (adversarial sharpening) is
`training.demo.train_gan` started from this stage's weights.

    python -m training.demo.distill --run-dir ~/.cache/stylegan-hub-runs/distill --kimg 360
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

from shared.archs.stylegan2 import StyleGAN2Config, StyleGAN2Generator
from shared.demo.factor_latents import LAYOUT, Z_DIM, category_offsets, z_to_factors
from shared.demo.predictor import PredictorFeatures, load_predictor
from shared.loaders.native import save_native
from shared.latents import row_resolutions
from shared.portraits import FACTORS, PART_NAMES, Factors, RenderOutput, render

__all__ = ["DistillConfig", "DistillLoss", "HOME_ROWS", "distill", "distill_generator_config", "feature_loss",
           "heldout_psnr", "home_row_index", "mixed_factors", "multiscale_l1"]

#: each factor's home row, as (resolution in px, index among the rows of that resolution);
#: "out" = the output resolution. A mix takes a factor from the source of its home row.
HOME_ROWS: dict[str, tuple[int | str, int]] = {
    "yaw": (4, 0), "pitch": (4, 0),
    "face_width": (8, 0), "face_length": (8, 0), "hair_style": (8, 0),
    "jaw": (8, 1), "glasses": (8, 1), "beard": (8, 1),
    "eye_size": (16, 0), "smile": (16, 0), "mouth_open": (16, 1), "brow_thickness": (16, 1),
    "light_azimuth": (32, 0), "light_elevation": (32, 0),
    "skin_tone": ("out", 0), "hair_color": ("out", 0), "background_hue": ("out", 0),
    "eye_color": ("out", 1), "glasses_color": ("out", 1),
}
SMALL_PARTS = ("eyes", "brows", "nose", "mouth", "glasses", "beard")


@dataclass(frozen=True)
class DistillConfig:
    resolution: int = 64
    w_dim: int = 128
    mapping_layers: int = 4
    mapping_lr: float = 1.0          # StyleGAN's 0.01 learns the factor map far slower (probe: -2 dB)
    channels: tuple[tuple[int, int], ...] = ((4, 256), (8, 192), (16, 128), (32, 96), (64, 64))
    batch: int = 16
    lr: float = 0.005
    lr_final: float = 0.1            # cosine decay to this fraction of lr at schedule_kimg
    schedule_kimg: float = 180.0     # the shipped run: 180 kimg, ~2.5 h on the 2-core CPU
    part_weight: float = 6.0         # extra L1 weight on SMALL_PARTS pixels
    perceptual: float = 0.5          # weight of the predictor-feature loss
    perceptual_share: float = 0.5    # share of each batch that also gets the perceptual loss
    mix_prob: float = 0.5            # share of samples that are mixes of two latents
    mix_from_kimg: float = 65.0      # no mixes before this point (fidelity first, the mixing split last)
    onehot_z: bool = True            # categorical groups of z enter the MLP as +-1 one-hot codes (exact arg-max)
    ema_kimg: float = 2.0
    ema_rampup: float = 0.05
    seed: int = 0


def distill_generator_config(cfg: DistillConfig) -> StyleGAN2Config:
    return StyleGAN2Config(z_dim=Z_DIM, w_dim=cfg.w_dim, img_resolution=cfg.resolution,
                           mapping_layers=cfg.mapping_layers, mapping_lr=cfg.mapping_lr,
                           channels=cfg.channels, normalize_z=False,
                           z_onehot=_onehot_groups() if cfg.onehot_z else ())


def _onehot_groups() -> tuple[tuple[int, tuple[float, ...]], ...]:
    """(start, offsets) of every categorical factor of the factor-coordinate layout."""
    return tuple((e.start, category_offsets(tuple(e.spec.probs))) for e in LAYOUT if e.spec.kind != "continuous")


def home_row_index(G: StyleGAN2Generator) -> dict[str, int]:
    """Each factor's home row in this generator's ws."""
    res = row_resolutions(G)
    out = {}
    for name, (r, k) in HOME_ROWS.items():
        r = int(G.img_resolution) if r == "out" else int(r)
        rows = [i for i, v in enumerate(res) if v == r]
        out[name] = rows[min(k, len(rows) - 1)]
    return out


def mixed_factors(fa: Factors, fb: Factors, cut: torch.Tensor, homes: dict[str, int]) -> Factors:
    """Factors of the mixes ws = [A's rows < cut, B's rows >= cut] (cut [N] ints)."""
    return Factors({s.name: torch.where(homes[s.name] < cut, fa[s.name], fb[s.name]) for s in FACTORS})


def multiscale_l1(fake: torch.Tensor, real: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """L1 at full, 1/2 and 1/4 resolution (average pooling), each pixel weighted by `weight` [N, 1, H, W]
    (pooled alike) when given."""
    loss = fake.new_zeros([])
    for k in (1, 2, 4):
        a, b = (F.avg_pool2d(fake, k), F.avg_pool2d(real, k)) if k > 1 else (fake, real)
        d = (a - b).abs()
        if weight is not None:
            d = (F.avg_pool2d(weight, k) if k > 1 else weight) * d
        loss = loss + d.mean()
    return loss


def feature_loss(feats: PredictorFeatures, fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        fr = feats(real)
    loss = fake.new_zeros([])
    for a, b in zip(feats(fake), fr):
        a = a / (a.square().sum(1, keepdim=True) + 1e-8).sqrt()
        b = b / (b.square().sum(1, keepdim=True) + 1e-8).sqrt()
        loss = loss + (a - b).square().sum(1).mean()
    return loss


class DistillLoss:
    """The regression loss of generated images against renders: part-weighted multi-scale L1
    plus `perceptual` x the predictor-feature loss on the first `perceptual_share` of the batch.
    Returns (total, pixel, perceptual)."""

    def __init__(self, *, part_weight: float, perceptual: float, perceptual_share: float,
                 device: torch.device | str = "cpu") -> None:
        self.part_weight, self.perceptual, self.share = part_weight, perceptual, perceptual_share
        self.feats = PredictorFeatures(load_predictor()).to(device)
        self.small = torch.tensor([PART_NAMES.index(p) for p in SMALL_PARTS])

    def __call__(self, fake: torch.Tensor, target: RenderOutput) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        real = target.img.clone().to(fake.device)
        weight = (1 + self.part_weight * torch.isin(target.parts, self.small).float()[:, None]).to(fake.device)
        pix = multiscale_l1(fake, real, weight)
        n = max(1, round(len(fake) * self.share))
        perc = feature_loss(self.feats, fake[:n], real[:n]) if self.perceptual else fake.new_zeros([])
        return pix + self.perceptual * perc, pix, perc


def _lr_at(cfg: DistillConfig, kimg: float) -> float:
    t = min(kimg / cfg.schedule_kimg, 1.0)
    return cfg.lr * (cfg.lr_final + (1 - cfg.lr_final) * 0.5 * (1 + math.cos(math.pi * t)))


@torch.no_grad()
def heldout_psnr(G: StyleGAN2Generator, n: int = 64, seed: int = 7_300_001) -> float:
    """Mean PSNR [dB] of G(z) against render(z_to_factors(z)) on n fixed held-out z."""
    z = torch.randn([n, Z_DIM], generator=torch.Generator().manual_seed(seed))
    fake = G(z, noise_mode="const").clamp(-1, 1)
    real = render(z_to_factors(z), int(G.img_resolution)).img
    mse = ((fake - real) / 2).square().mean(dim=[1, 2, 3])
    return float((10 * torch.log10(1 / mse.clamp_min(1e-10))).mean())


def _export(G: StyleGAN2Generator, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    save_native(G, tmp, source="StyleGAN Hub demo world (training/demo/distill.py)")
    os.replace(tmp, path)


def _save_atomic(obj, path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def distill(cfg: DistillConfig, run_dir: Path, *, kimg: float, seconds: float | None = None,
            export: Path | None = None, eval_every_kimg: float = 5.0, checkpoint_every: int = 100,
            log_every: int = 50, progress: Callable[[str], None] = print) -> StyleGAN2Generator:
    """Train (or resume) until `kimg` thousand samples were shown or `seconds` passed; returns G_ema."""
    run_dir.mkdir(parents=True, exist_ok=True)
    ckpt_path = run_dir / "checkpoint.pt"
    G = StyleGAN2Generator(distill_generator_config(cfg)).init_random_(torch.Generator().manual_seed(cfg.seed))
    G_ema = copy.deepcopy(G).eval().requires_grad_(False)
    opt = torch.optim.Adam(G.parameters(), lr=cfg.lr, betas=(0.0, 0.99))
    gen = torch.Generator().manual_seed(cfg.seed + 1)
    step, nimg, log, seconds_done = 0, 0, [], 0.0
    if ckpt_path.exists():
        st = torch.load(ckpt_path, weights_only=False)  # our own file
        # keys added since the run began take their defaults, except onehot_z (runs before it had none)
        stored = {**asdict(DistillConfig()), "onehot_z": False, **st["config"]}
        schedule_free = {k: v for k, v in asdict(cfg).items() if k != "schedule_kimg"}
        if {k: v for k, v in stored.items() if k != "schedule_kimg"} != schedule_free:
            raise ValueError(f"{ckpt_path} was trained with another config; use a new --run-dir")
        if st["config"]["schedule_kimg"] != cfg.schedule_kimg:
            progress(f"learning-rate schedule changed from {st['config']['schedule_kimg']:g} "
                     f"to {cfg.schedule_kimg:g} kimg")
        G.load_state_dict(st["G"]); G_ema.load_state_dict(st["G_ema"]); opt.load_state_dict(st["opt"])
        G.w_avg.copy_(st["w_avg"]); G_ema.w_avg.copy_(st["w_avg"])
        gen.set_state(st["rng"])
        step, nimg, log, seconds_done = st["step"], st["nimg"], st["log"], st.get("seconds", 0.0)
        progress(f"resumed at step {step} ({nimg / 1000:.1f} kimg, {seconds_done / 3600:.2f} h)")
    loss_fn = DistillLoss(part_weight=cfg.part_weight, perceptual=cfg.perceptual,
                          perceptual_share=cfg.perceptual_share)
    homes = home_row_index(G)
    params_g, params_e = list(G.parameters()), list(G_ema.parameters())
    t_start, t_log = time.time(), time.time()
    next_eval = (math.floor(nimg / 1000 / eval_every_kimg) + 1) * eval_every_kimg

    def checkpoint() -> None:
        _save_atomic({"config": asdict(cfg), "G": G.state_dict(), "G_ema": G_ema.state_dict(),
                      "w_avg": G_ema.w_avg.clone(), "opt": opt.state_dict(), "rng": gen.get_state(),
                      "step": step, "nimg": nimg, "log": log,
                      "seconds": seconds_done + time.time() - t_start}, ckpt_path)
        (run_dir / "log.json").write_text(json.dumps(log, indent=0))

    G.train()
    while nimg < kimg * 1000 and (seconds is None or time.time() - t_start < seconds):
        for group in opt.param_groups:
            group["lr"] = _lr_at(cfg, nimg / 1000)
        za = torch.randn([cfg.batch, Z_DIM], generator=gen)
        zb = torch.randn([cfg.batch, Z_DIM], generator=gen)
        mix_prob = cfg.mix_prob if nimg / 1000 >= cfg.mix_from_kimg else 0.0
        mix = torch.rand([cfg.batch], generator=gen) < mix_prob
        cut = torch.where(mix, torch.randint(1, G.num_ws, [cfg.batch], generator=gen),
                          torch.full([cfg.batch], G.num_ws))
        target = render(mixed_factors(z_to_factors(za), z_to_factors(zb), cut, homes), cfg.resolution)
        ws_a, ws_b = G.mapping(za), G.mapping(zb)
        rows = torch.arange(G.num_ws)[None, :, None]
        ws = torch.where(rows < cut[:, None, None], ws_a, ws_b)
        fake = G.synthesis(ws, noise_mode="const")
        loss, loss_pix, loss_perc = loss_fn(fake, target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        nimg += cfg.batch
        step += 1
        ema_nimg = min(cfg.ema_kimg * 1000, nimg * cfg.ema_rampup)
        beta = 0.5 ** (cfg.batch / max(ema_nimg, 1e-8))
        with torch.no_grad():
            torch._foreach_lerp_(params_e, params_g, 1 - beta)
            if step % 10 == 0:
                w = G.mapping(torch.randn([512, Z_DIM], generator=gen))[:, 0].mean(0)
                G.w_avg.lerp_(w, 0.2)
                G_ema.w_avg.copy_(G.w_avg)
        if step % log_every == 0:
            rate = (time.time() - t_log) / log_every
            t_log = time.time()
            progress(f"step {step:6d}  kimg {nimg / 1000:7.2f}/{kimg:g}  pix {loss_pix.item():.4f}  "
                     f"perc {loss_perc.item():.4f}  lr {_lr_at(cfg, nimg / 1000):.5f}  {rate:.2f} s/step")
        if nimg / 1000 >= next_eval:
            next_eval += eval_every_kimg
            psnr = heldout_psnr(G_ema)
            hours = (seconds_done + time.time() - t_start) / 3600
            log.append({"kimg": round(nimg / 1000, 2), "hours": round(hours, 3), "loss_pix": loss_pix.item(),
                        "loss_perc": loss_perc.item(), "heldout_psnr": round(psnr, 2)})
            progress(f"  held-out PSNR {psnr:.2f} dB at {nimg / 1000:.1f} kimg ({hours:.2f} h)")
            checkpoint()
            if export is not None:
                _export(G_ema, export)
        elif step % checkpoint_every == 0:
            checkpoint()
    checkpoint()
    if export is not None:
        _export(G_ema, export)
    progress(f"stopped at step {step} ({nimg / 1000:.1f} kimg)")
    return G_ema


def main() -> None:
    ap = argparse.ArgumentParser(description="Distil the portrait renderer into the demo StyleGAN2 (resumable).")
    ap.add_argument("--run-dir", type=Path, default=Path("runs/demo_distill"))
    ap.add_argument("--kimg", type=float, default=DistillConfig.schedule_kimg)
    ap.add_argument("--schedule-kimg", type=float, default=DistillConfig.schedule_kimg,
                    help="length of the cosine learning-rate schedule (may be shortened when resuming)")
    ap.add_argument("--mix-from-kimg", type=float, default=DistillConfig.mix_from_kimg,
                    help="train without style mixes until this many kimg (a new run's setting)")
    ap.add_argument("--perceptual", type=float, default=DistillConfig.perceptual,
                    help="weight of the predictor-feature loss (0: pixels only; a new run's setting)")
    ap.add_argument("--seconds", type=float, default=None)
    ap.add_argument("--threads", type=int, default=max(1, (os.cpu_count() or 2)))
    ap.add_argument("--export", type=Path, help="write G_ema here (native safetensors) at every evaluation")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cfg = DistillConfig(schedule_kimg=args.schedule_kimg, mix_from_kimg=args.mix_from_kimg,
                        perceptual=args.perceptual)
    distill(cfg, args.run_dir, kimg=args.kimg, seconds=args.seconds, export=args.export,
            progress=lambda s: print(s, flush=True))


if __name__ == "__main__":
    main()
