"""Train a small Pose with Style (AlBahar et al., SIGGRAPH Asia 2021; BadourAlBahar/pose-with-style@f344f3b)
on the demo world: a 64 px generator of the official architecture and a small coordinate-completion model.

Data. Pairs are one person (all factors but the view) rendered at two views, yaw and pitch drawn from the
factor table's ranges (`shared.portraits`); expression and light stay, since an IUV map does not carry
them. The inputs are the official ones (`shared.posewithstyle.repose`): source image, its IUV map
(`shared.portraits_iuv.render_iuv`), its silhouette joined with the body, and the target's IUV map; the
target is the render at the target view. The source's partial UV-space coordinates are computed by the
official path (`shared.densepose.partial_coordinates`, Delaunay interpolation plus left/right symmetry),
which costs ~0.1 s a view on this CPU, so pairs come from a pool of people x views that is refreshed by
one person every `refresh_every` steps.

The CCM is kept. The official pipeline feeds the generator complete coordinates: what the source shows
(and its mirror image) is known, the rest of the atlas (the far side of a turned head, what the nose or
the hair hide) must be filled in, and `repose` always runs the CCM. Here it is trained jointly with the
generator: an L1 term holds its output to the known coordinates, and the image loss reaches the filled-in
ones through the generator's `grid_sample` warp. It stays in eval mode (batch norm as a fixed affine map),
so training and inference run the same function.

Losses: L1 at 64/32/16 px on the result composited over the source's background
(`shared.portraits_iuv.composite_background`), a perceptual term in the demo predictor's feature space
(channel-normalised squared differences per stage, as training/demo/distill.py does) and the CCM term.
EMA copies of both networks are evaluated and exported (native safetensors, `shared.loaders.native`),
with the demo UV lookup table as `.npy` (`shared.loaders.posewithstyle.load_uv_lookup`).

    python -m training.posewithstyle.train_demo --run-dir ~/.cache/stylegan-hub-runs/pws --seconds 7200 \
        --export-dir ~/.cache/stylegan-hub-runs/pws/export
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

import numpy as np
import torch

from shared.archs.posewithstyle import CCMConfig, CoordinateCompletion, PoseWithStyleConfig, PoseWithStyleGenerator
from shared.demo.predictor import PredictorFeatures, load_predictor
from shared.densepose import normalize_partial_coordinates, partial_coordinates, union_silhouette
from shared.loaders.native import save_native
from shared.portraits import FACTORS, sample_factors, with_view
from shared.portraits_iuv import composite_background, demo_uv_lookup, render_person
from shared.posewithstyle import appearance_input
from training.demo.distill import feature_loss, multiscale_l1
from training.posewithstyle.measure import measure_repose

__all__ = ["DEMO_FILES", "PWSDemoConfig", "ccm_config", "export", "generator_config", "train"]

#: names of the exported files (generator, CCM, UV lookup table)
DEMO_FILES = ("posewithstyle-demo-64.safetensors", "posewithstyle-demo-ccm.safetensors", "demo_uv_lookup.npy")
_VIEW = {s.name: (s.low, s.high) for s in FACTORS if s.name in ("yaw", "pitch")}


@dataclass(frozen=True)
class PWSDemoConfig:
    size: int = 64
    ngf: int = 16                                   # encoder widths 16, 32, 64
    channels: tuple[tuple[int, int], ...] = ((16, 64), (32, 48), (64, 32))
    modulation_hidden: int = 32
    ccm_ngf: int = 8
    batch: int = 16
    lr: float = 0.002
    ccm_lr: float = 0.001
    pool_people: int = 512
    views: int = 3                                  # views per person in the pool
    refresh_every: int = 2                          # steps between replacing one person of the pool
    perceptual: float = 0.3
    ccm_known: float = 1.0                          # weight of the CCM's L1 on the known coordinates
    ema_beta: float = 0.995
    seed: int = 0


def generator_config(cfg: PWSDemoConfig) -> PoseWithStyleConfig:
    return PoseWithStyleConfig(size=cfg.size, ngf=cfg.ngf, channels=cfg.channels,
                               modulation_hidden=cfg.modulation_hidden)


def ccm_config(cfg: PWSDemoConfig) -> CCMConfig:
    return CCMConfig(ngf=cfg.ccm_ngf)


# ---- the pool of views ---------------------------------------------------------------------------

def _render_views(people: int, cfg: PWSDemoConfig, gen: torch.Generator, table: np.ndarray) -> dict[str, torch.Tensor]:
    """`people` new people at `cfg.views` random views each (rows person * views + view)."""
    base = sample_factors(people, gen).select(torch.arange(people).repeat_interleave(cfg.views))
    view = {k: (lo + (hi - lo) * torch.rand(len(base), generator=gen, dtype=torch.float64)).float()
            for k, (lo, hi) in _VIEW.items()}
    p = render_person(with_view(base, yaw=view["yaw"], pitch=view["pitch"]), cfg.size)
    iuv = p.iuv.to(torch.uint8)
    coor, mask = [], []
    for k in range(len(iuv)):
        c, m = partial_coordinates(iuv[k].permute(1, 2, 0).numpy(), table, cfg.size)
        c, m = normalize_partial_coordinates(c, m, cfg.size, cfg.size)
        coor.append(c.half())
        mask.append(m.to(torch.uint8))
    return {"img": ((p.img + 1) * 127.5).round().to(torch.uint8), "iuv": iuv,
            "sil": (p.silhouette * 255).round().to(torch.uint8), "coor": torch.cat(coor), "mask": torch.cat(mask)}


def _pair_batch(pool: dict[str, torch.Tensor], cfg: PWSDemoConfig, gen: torch.Generator) -> dict[str, torch.Tensor]:
    """A batch of (source view, other view of the same person) as float tensors."""
    people = len(pool["img"]) // cfg.views
    who = torch.randint(people, [cfg.batch], generator=gen)
    a = torch.randint(cfg.views, [cfg.batch], generator=gen)
    b = (a + torch.randint(1, cfg.views, [cfg.batch], generator=gen)) % cfg.views
    s, t = who * cfg.views + a, who * cfg.views + b
    return {"img": pool["img"][s].float() / 127.5 - 1, "sil": pool["sil"][s].float() / 255,
            "iuv": pool["iuv"][s].float(), "coor": pool["coor"][s].float(), "mask": pool["mask"][s].float(),
            "target_iuv": pool["iuv"][t].float(), "target": pool["img"][t].float() / 127.5 - 1}


# ---- losses --------------------------------------------------------------------------------------

def _repose_batch(G: PoseWithStyleGenerator, ccm: CoordinateCompletion, batch: dict[str, torch.Tensor],
                  lookup: torch.Tensor, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """(result composited over the source background [B, 3, S, S], complete coordinates [B, 2, S, S])."""
    coor = ccm(batch["coor"], batch["mask"])
    app = appearance_input(batch["img"], union_silhouette(batch["sil"], batch["iuv"]), coor)
    out = G(app, batch["target_iuv"], lookup, generator=gen)
    return composite_background(out, batch["target_iuv"], batch["img"], batch["sil"]), coor


# ---- training ------------------------------------------------------------------------------------

def export(G: PoseWithStyleGenerator, ccm: CoordinateCompletion, folder: Path) -> list[Path]:
    """Write the generator and CCM (native safetensors) and the UV lookup table (.npy) into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    src = "StyleGAN Hub demo world (training/posewithstyle/train_demo.py)"
    paths = [folder / name for name in DEMO_FILES]
    for net, path in zip((G, ccm), paths):
        tmp = path.with_name(path.name + ".tmp")
        save_native(net, tmp, source=src)
        os.replace(tmp, path)
    np.save(paths[2], demo_uv_lookup().numpy())
    return paths


def _save_atomic(obj, path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _networks(cfg: PWSDemoConfig) -> tuple[PoseWithStyleGenerator, CoordinateCompletion]:
    with torch.random.fork_rng(devices=[]):  # the initial weights, without touching the caller's global RNG
        torch.manual_seed(cfg.seed)
        return PoseWithStyleGenerator(generator_config(cfg)), CoordinateCompletion(ccm_config(cfg)).eval()


def train(cfg: PWSDemoConfig, run_dir: Path, *, steps: int | None = None, seconds: float | None = None,
          export_dir: Path | None = None, eval_every: int = 500, eval_pairs: int = 24, checkpoint_every: int = 100,
          log_every: int = 20, progress: Callable[[str], None] = print
          ) -> tuple[PoseWithStyleGenerator, CoordinateCompletion]:
    """Train (or resume from run_dir) until `steps` steps in all or `seconds` more seconds; returns the EMA
    generator and CCM (eval mode). Progress lines go to `progress`; run_dir/log.json holds the evaluations."""
    run_dir.mkdir(parents=True, exist_ok=True)
    ckpt_path, pool_path = run_dir / "checkpoint.pt", run_dir / "pool.pt"
    G, ccm = _networks(cfg)
    G_ema, ccm_ema = copy.deepcopy(G).eval(), copy.deepcopy(ccm)
    opt = torch.optim.Adam([{"params": G.parameters(), "lr": cfg.lr}, {"params": ccm.parameters(), "lr": cfg.ccm_lr}],
                           betas=(0.9, 0.99))
    gen = torch.Generator().manual_seed(cfg.seed + 1)
    step, log, seconds_done = 0, [], 0.0
    table = demo_uv_lookup()
    if ckpt_path.exists():
        st = torch.load(ckpt_path, weights_only=False)  # our own file
        if st["config"] != json.loads(json.dumps(asdict(cfg))):
            raise ValueError(f"{ckpt_path} was trained with another config; use a new --run-dir")
        for net, key in ((G, "G"), (ccm, "ccm"), (G_ema, "G_ema"), (ccm_ema, "ccm_ema")):
            net.load_state_dict(st[key])
        opt.load_state_dict(st["opt"])
        gen.set_state(st["rng"])
        step, log, seconds_done = st["step"], st["log"], st["seconds"]
        pool = torch.load(pool_path, weights_only=True)
        progress(f"resumed at step {step} ({seconds_done / 3600:.2f} h)")
    else:
        t0 = time.time()
        pool = _render_views(cfg.pool_people, cfg, gen, table.numpy())
        progress(f"pool of {cfg.pool_people} people x {cfg.views} views built in {time.time() - t0:.0f} s")
    feats = PredictorFeatures(load_predictor()) if cfg.perceptual else None
    params = list(G.parameters()) + list(ccm.parameters())
    params_ema = list(G_ema.parameters()) + list(ccm_ema.parameters())
    t_start, t_log = time.time(), time.time()

    def checkpoint() -> None:
        _save_atomic({"config": json.loads(json.dumps(asdict(cfg))), "G": G.state_dict(), "ccm": ccm.state_dict(),
                      "G_ema": G_ema.state_dict(), "ccm_ema": ccm_ema.state_dict(), "opt": opt.state_dict(),
                      "rng": gen.get_state(), "step": step, "log": log,
                      "seconds": seconds_done + time.time() - t_start}, ckpt_path)
        _save_atomic(pool, pool_path)
        (run_dir / "log.json").write_text(json.dumps(log, indent=0))

    while (steps is None or step < steps) and (seconds is None or time.time() - t_start < seconds):
        batch = _pair_batch(pool, cfg, gen)
        fake, coor = _repose_batch(G, ccm, batch, table, gen)
        pix = multiscale_l1(fake, batch["target"])
        perc = feature_loss(feats, fake, batch["target"]) if feats is not None else fake.new_zeros([])
        known = ((coor - batch["coor"]).abs() * batch["mask"]).sum() / (2 * batch["mask"].sum()).clamp_min(1)
        loss = pix + cfg.perceptual * perc + cfg.ccm_known * known
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        with torch.no_grad():
            torch._foreach_lerp_(params_ema, params, 1 - min(cfg.ema_beta, step / (step + 10)))
        if step % cfg.refresh_every == 0:  # one new person replaces the oldest slot in turn
            slot = (step // cfg.refresh_every) % cfg.pool_people
            rows = slice(slot * cfg.views, (slot + 1) * cfg.views)
            for k, v in _render_views(1, cfg, gen, table.numpy()).items():
                pool[k][rows] = v
        if step % log_every == 0:
            rate = (time.time() - t_log) / log_every
            t_log = time.time()
            progress(f"step {step:6d}  loss {loss.item():.4f}  pix {pix.item():.4f}  perc {perc.item():.4f}  "
                     f"ccm {known.item():.4f}  {rate:.2f} s/step")
        if step % eval_every == 0:
            m = measure_repose(G_ema, ccm_ema, n=eval_pairs)
            hours = (seconds_done + time.time() - t_start) / 3600
            log.append({"step": step, "hours": round(hours, 3), "loss_pix": pix.item(),
                        "heldout_psnr": round(m.psnr_db, 2), "seconds_per_repose": round(m.seconds_per_repose, 4)})
            progress(f"  held-out PSNR {m.psnr_db:.2f} dB on {m.n} pairs, {1000 * m.seconds_per_repose:.0f} ms "
                     f"per repose (step {step}, {hours:.2f} h)")
            checkpoint()
            if export_dir is not None:
                export(G_ema, ccm_ema, export_dir)
        elif step % checkpoint_every == 0:
            checkpoint()
    checkpoint()
    if export_dir is not None:
        export(G_ema, ccm_ema, export_dir)
    progress(f"stopped at step {step}")
    return G_ema.requires_grad_(False), ccm_ema.requires_grad_(False)


def main() -> None:
    ap = argparse.ArgumentParser(description="Train Pose with Style on the demo world (resumable).")
    ap.add_argument("--run-dir", type=Path, default=Path("runs/pws_demo"))
    ap.add_argument("--steps", type=int, default=None, help="stop after this many steps in all")
    ap.add_argument("--seconds", type=float, default=None, help="stop after this many seconds of this session")
    ap.add_argument("--threads", type=int, default=max(1, os.cpu_count() or 2))
    ap.add_argument("--export-dir", type=Path, help="write the EMA networks and the UV table here at each evaluation")
    ap.add_argument("--eval-every", type=int, default=500)
    ap.add_argument("--eval-pairs", type=int, default=24)
    ap.add_argument("--measure", type=int, default=0, help="after training, measure on this many held-out pairs")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    G, ccm = train(PWSDemoConfig(), args.run_dir, steps=args.steps, seconds=args.seconds, export_dir=args.export_dir,
                   eval_every=args.eval_every, eval_pairs=args.eval_pairs, progress=lambda s: print(s, flush=True))
    if args.measure:
        m = measure_repose(G, ccm, n=args.measure)
        print(f"held-out PSNR {m.psnr_db:.2f} dB on {m.n} pairs, {1000 * m.seconds_per_repose:.1f} ms per repose",
              flush=True)


if __name__ == "__main__":
    main()
