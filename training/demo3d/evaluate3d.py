"""Measurements of the demo 3D generator (issue 17, item 6), against the portrait renderer it was
distilled from (training/demo3d/distill3d.py; cameras: shared/demo/camera3d.py).

- PSNR at 20 held-out cameras (a 5 x 4 yaw/pitch grid over the renderer's view prior) of G(z, c)
  against render(factors of z at that view), averaged over held-out people (target >= 25 dB, 64 px).
- Multi-view consistency over an orbit with a fixed latent (ws mapped once with the frontal
  camera, tri-planes computed once, as EG3D's gen_videos.py): the demo predictor's yaw reading
  against the camera's yaw (Pearson correlation, target >= 0.95), and how much the predictor's
  reading of each identity factor (face shape, skin, eyes, hair, glasses, beard) moves over the
  orbit: continuous ones as (max - min) / range, categorical ones as the share of frames off the
  person's majority code (target <= 0.05). The same numbers on the renderer's own orbit (the same
  rigid, lit heads) are the predictor's floor. The orbit's PSNR against those renders too.
- Seconds per frame (from cached planes), per latent (planes) and per full G(z, c), batch 1.

    python -m training.demo3d.evaluate3d demo3d.safetensors --json demo3d_eval.json
"""
from __future__ import annotations

import argparse
import json
import math
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from shared.archs.eg3d import EG3DGenerator, RayDraws
from shared.demo.camera3d import portrait_camera
from shared.demo.predictor import Predictor, load_predictor
from shared.loaders import load_generator
from shared.portraits import FACTORS, render
from training.demo3d.distill3d import latent_factors, sample_latents, static_light

__all__ = ["IDENTITY_FACTORS", "Measurement3D", "heldout_views", "main", "measure", "measure_consistency",
           "measure_psnr", "measure_speed", "orbit_angles"]

IDENTITY_FACTORS = ("face_width", "face_length", "jaw", "skin_tone", "eye_size", "hair_style", "hair_color",
                    "eye_color", "glasses", "beard")
EVAL_SEED = 7_400_001                         # held-out people (training draws from seed + 1 streams)
_SPEC = {s.name: s for s in FACTORS}


@dataclass(frozen=True)
class Measurement3D:
    psnr_mean: float                          # dB over all held-out cameras and people
    psnr_per_view: list[float]                # dB per held-out camera (mean over people)
    views: list[tuple[float, float]]          # the held-out cameras (yaw, pitch) in degrees
    yaw_correlation: float                    # predictor yaw reading vs camera yaw over the orbits
    yaw_correlation_renderer: float           # the same on the renderer's orbits
    identity_change: dict[str, float]         # factor -> mean over people of its change over the orbit
    identity_change_renderer: dict[str, float]
    identity_change_max: float                # the largest entry of identity_change
    orbit_psnr: float                         # dB of the orbit frames against the renderer's
    seconds_per_frame: float                  # render from cached planes, batch 1
    seconds_per_latent: float                 # mapping + tri-planes, batch 1
    seconds_per_image: float                  # full G(z, c), batch 1
    people: int
    orbit_frames: int


def heldout_views(count_yaw: int = 5, count_pitch: int = 4) -> list[tuple[float, float]]:
    """The held-out cameras: a yaw x pitch grid inside the renderer's prior (+-36, +-15 degrees)."""
    return [(float(y), float(p)) for y in torch.linspace(-36, 36, count_yaw)
            for p in torch.linspace(-15, 15, count_pitch)]


def orbit_angles(frames: int, yaw_range: float = 35.0, pitch_range: float = 10.0) -> tuple[torch.Tensor, torch.Tensor]:
    """A closed orbit in renderer angles [deg]: yaw = yaw_range sin(2 pi t), pitch = pitch_range cos(2 pi t)."""
    t = 2 * math.pi * torch.arange(frames, dtype=torch.float64) / frames
    return (yaw_range * torch.sin(t)).float(), (pitch_range * torch.cos(t)).float()


def _draws(G: EG3DGenerator, n: int) -> RayDraws:
    cfg = G.config
    r = cfg.neural_rendering_resolution
    return RayDraws.midpoints(n, r * r, cfg.depth_resolution, cfg.depth_resolution_importance,
                              device=G.w_avg.device)


def _psnr(fake: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    mse = ((fake.clamp(-1, 1) - real) / 2).square().mean(dim=[1, 2, 3])
    return 10 * torch.log10(1 / mse.clamp_min(1e-10))


@torch.no_grad()
def measure_psnr(G: EG3DGenerator, people: int = 8, seed: int = EVAL_SEED) -> tuple[float, list[float], list]:
    """(mean PSNR, PSNR per held-out camera, cameras) of G(z, c) against the renderer."""
    z = sample_latents(people, torch.Generator().manual_seed(seed))[0]
    dev, per_view = G.w_avg.device, []
    views = heldout_views()
    for yaw, pitch in views:
        c = portrait_camera(yaw, pitch).expand(people, 25)
        fake = G(z.to(dev), c.to(dev), draws=_draws(G, people)).image.float().cpu()
        real = render(latent_factors(z, yaw, pitch), int(G.img_resolution)).img
        per_view.append(float(_psnr(fake, real).mean()))
    return sum(per_view) / len(per_view), per_view, views


def _orbit_readings(predictor: Predictor, frames: torch.Tensor, yaw: torch.Tensor, people: int
                    ) -> tuple[float, dict[str, float]]:
    """frames [people * F, 3, 64, 64] (person-major) -> (yaw correlation, identity change per factor)."""
    f = predictor.predict(frames).factors
    read = f["yaw"].float().cpu()
    cam = yaw.repeat(people)
    corr = float(torch.corrcoef(torch.stack([read, cam]))[0, 1])
    change = {}
    for name in IDENTITY_FACTORS:
        v = f[name].cpu().reshape(people, -1)
        spec = _SPEC[name]
        if spec.kind == "continuous":
            share = (v.amax(1) - v.amin(1)).float() / (spec.high - spec.low)
        else:
            share = (v != torch.mode(v, dim=1).values[:, None]).float().mean(1)
        change[name] = float(share.mean())
    return corr, change


@torch.no_grad()
def measure_consistency(G: EG3DGenerator, predictor: Predictor, people: int = 8, frames: int = 24,
                        seed: int = EVAL_SEED) -> dict:
    """Orbit consistency of G (fixed ws from the frontal camera) and of the renderer's own orbits."""
    z = sample_latents(people, torch.Generator().manual_seed(seed))[0]
    yaw, pitch = orbit_angles(frames)
    dev = G.w_avg.device
    ws = G.mapping(z.to(dev), portrait_camera(0.0, 0.0).expand(people, 25).to(dev))
    planes = G.planes(ws)
    imgs, reals = [], []
    for i in range(people):
        c = portrait_camera(yaw, pitch).to(dev)
        out = G.render(planes[i:i + 1].expand(frames, -1, -1, -1, -1), c, ws[i:i + 1].expand(frames, -1, -1),
                       draws=_draws(G, frames))
        imgs.append(out.image.float().cpu().clamp(-1, 1))
        person = latent_factors(z[i:i + 1].expand(frames, -1), yaw, pitch)
        zeros = torch.zeros(frames)
        reals.append(render(static_light(person, zeros, zeros), int(G.img_resolution)).img)
    fake, real = torch.cat(imgs), torch.cat(reals)
    corr, change = _orbit_readings(predictor, fake, yaw, people)
    corr_r, change_r = _orbit_readings(predictor, real, yaw, people)
    return {"yaw_correlation": corr, "yaw_correlation_renderer": corr_r, "identity_change": change,
            "identity_change_renderer": change_r, "identity_change_max": max(change.values()),
            "orbit_psnr": float(_psnr(fake, real).mean())}


@torch.no_grad()
def measure_speed(G: EG3DGenerator, repeats: int = 3) -> dict[str, float]:
    """Median seconds per frame from cached planes, per latent (mapping + planes), per full image."""
    dev = G.w_avg.device
    z = sample_latents(1, torch.Generator().manual_seed(0))[0].to(dev)
    c = portrait_camera(10.0, 5.0).to(dev)

    def timed(fn) -> float:
        out = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            out.append(time.perf_counter() - t0)
        return sorted(out)[len(out) // 2]

    ws = G.mapping(z, c)
    planes = G.planes(ws)
    return {"seconds_per_frame": timed(lambda: G.render(planes, c, ws, draws=_draws(G, 1))),
            "seconds_per_latent": timed(lambda: G.planes(G.mapping(z, c))),
            "seconds_per_image": timed(lambda: G(z, c, draws=_draws(G, 1)))}


def measure(G: EG3DGenerator, *, people: int = 8, frames: int = 24, predictor: Predictor | None = None
            ) -> Measurement3D:
    """Every measurement of the module docstring on G (any device; the renderer runs on the CPU)."""
    predictor = load_predictor() if predictor is None else predictor
    psnr, per_view, views = measure_psnr(G, people)
    cons = measure_consistency(G, predictor.to(G.w_avg.device), people, frames)
    return Measurement3D(psnr_mean=psnr, psnr_per_view=per_view, views=views, **cons, **measure_speed(G),
                         people=people, orbit_frames=frames)


def format_table(m: Measurement3D) -> str:
    """The measurements as a plain-text table (targets from issue 17)."""
    rows = [("PSNR at 20 held-out cameras (64 px)", f"{m.psnr_mean:.2f} dB", ">= 25 dB"),
            ("  worst camera", f"{min(m.psnr_per_view):.2f} dB", ""),
            ("orbit PSNR vs the renderer's orbit", f"{m.orbit_psnr:.2f} dB", ""),
            ("predictor yaw vs camera yaw (corr.)", f"{m.yaw_correlation:.3f}", ">= 0.95"),
            ("  same on the renderer's orbit", f"{m.yaw_correlation_renderer:.3f}", ""),
            ("largest identity change over orbit", f"{m.identity_change_max:.3f}", "<= 0.05")]
    rows += [(f"  {k} (renderer)", f"{v:.3f} ({m.identity_change_renderer[k]:.3f})", "")
             for k, v in m.identity_change.items()]
    rows += [("seconds per frame (cached planes)", f"{m.seconds_per_frame:.3f} s", ""),
             ("seconds per latent (tri-planes)", f"{m.seconds_per_latent:.3f} s", ""),
             ("seconds per image G(z, c)", f"{m.seconds_per_image:.3f} s", "")]
    w = max(len(r[0]) for r in rows)
    return "\n".join(f"{a:<{w}}  {b:>16}  {c}" for a, b, c in rows)


def main() -> None:
    ap = argparse.ArgumentParser(description="Measure the demo 3D generator against the portrait renderer.")
    ap.add_argument("model", type=Path, help="native safetensors of the demo 3D generator")
    ap.add_argument("--json", type=Path, help="write the measurements here")
    ap.add_argument("--people", type=int, default=8)
    ap.add_argument("--frames", type=int, default=24)
    ap.add_argument("--threads", type=int, default=max(1, (os.cpu_count() or 2)))
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    G = load_generator(args.model).to(args.device)
    m = measure(G, people=args.people, frames=args.frames)
    print(format_table(m))
    if args.json:
        args.json.write_text(json.dumps(asdict(m), indent=1))


if __name__ == "__main__":
    main()
