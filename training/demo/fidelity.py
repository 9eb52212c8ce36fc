"""Held-out fidelity of a factor-coordinate demo generator: does G(z) show what the renderer
draws for the same factors? (The demo world is this project's own construction.)

For n held-out z (a seed no training run draws from), the factors f = z_to_factors(z) are
rendered and G(z) is generated (psi 1, constant noise); the demo predictor reads both:
- categorical agreement per factor: the share of images where the predictor reads the same
  category on G(z) as on the render (glasses_color only where glasses are drawn);
- continuous R^2 per factor: of the reading on G(z) against the reading on the render
  (background_hue on the circle);
- part mIoU: the predictor's part map of G(z) against the renderer's true part map, IoU per part
  accumulated over all images, averaged over the parts;
- PSNR of G(z) against the render (64 px, images in [-1, 1] -> [0, 1]);
- sharpness: the Fréchet distance between the predictor's features of G(z) and of the renders
  (0 for identical sets; blur raises it even where PSNR is high).

    python -m training.demo.fidelity --generator shared/demo/bundle/generator.safetensors
"""
from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import torch
from PIL import Image
from torch import Tensor

from shared import load_generator
from shared.demo.factor_latents import Z_DIM, z_to_factors
from shared.demo.predictor import CIRCULAR, load_predictor
from shared.images import image_grid, to_uint8_hwc
from shared.portraits import FACTORS, PART_NAMES, render
from training.demo.evaluate import frechet_distance, see_images

__all__ = ["FIDELITY_SEED", "TARGETS", "fidelity_report", "print_fidelity", "save_side_by_side"]

FIDELITY_SEED = 7_400_001
TARGETS = {"categorical_agreement": 0.95, "continuous_r2": 0.9, "parts_miou": 0.85, "psnr_db": 26.0}


def _r2(pred: Tensor, true: Tensor, circular_range: float | None) -> float:
    d = pred.double() - true.double()
    c = true.double() - true.double().mean()
    if circular_range is not None:  # wrapped differences; spread around the circular mean
        d = torch.remainder(d + circular_range / 2, circular_range) - circular_range / 2
        ang = true.double() / circular_range * 2 * math.pi
        mean = torch.atan2(torch.sin(ang).mean(), torch.cos(ang).mean()) / (2 * math.pi) * circular_range
        c = torch.remainder(true.double() - mean + circular_range / 2, circular_range) - circular_range / 2
    return float(1 - d.square().sum() / c.square().sum().clamp_min(1e-12))


@torch.no_grad()
def fidelity_report(G, predictor, *, n: int = 500, seed: int = FIDELITY_SEED, batch: int = 100) -> dict:
    """The report (JSON-ready); see the module docstring."""
    if int(G.z_dim) != Z_DIM:
        raise ValueError(f"fidelity needs a factor-coordinate generator (z_dim {Z_DIM}), got z_dim {G.z_dim}")
    z = torch.randn([n, Z_DIM], generator=torch.Generator().manual_seed(seed))
    f = z_to_factors(z)
    renders = [render(f.select(slice(i, i + batch)), 64) for i in range(0, n, batch)]
    real_img = torch.cat([r.img for r in renders])
    true_parts = torch.cat([r.parts for r in renders])
    fake_img = torch.cat([G(z[i:i + batch], truncation_psi=1, noise_mode="const").clamp(-1, 1)
                          for i in range(0, n, batch)])
    seen_r = see_images(predictor, lambda i, k: real_img[i:i + k], n)
    seen_g = see_images(predictor, lambda i, k: fake_img[i:i + k], n)
    drawn = f["glasses"] != 0
    cat, cont = {}, {}
    for s in FACTORS:
        a, b = seen_g.factors[s.name], seen_r.factors[s.name]
        if s.kind == "categorical":
            keep = drawn if s.name == "glasses_color" else torch.ones(n, dtype=torch.bool)
            cat[s.name] = float((a[keep] == b[keep]).double().mean())
        else:
            cont[s.name] = _r2(a, b, (s.high - s.low) if s.name in CIRCULAR else None)
    ious = {}
    for k, name in enumerate(PART_NAMES):
        p, t = seen_g.parts.long() == k, true_parts == k
        union = int((p | t).sum())
        if union:
            ious[name] = int((p & t).sum()) / union
    mse = ((fake_img - real_img) / 2).square().mean(dim=[1, 2, 3])
    psnr = float((10 * torch.log10(1 / mse.clamp_min(1e-10))).mean())
    out = {"n": n, "seed": seed, "categorical_agreement": cat, "continuous_r2": cont,
           "parts_iou": ious, "parts_miou": sum(ious.values()) / len(ious), "psnr_db": psnr,
           "feature_fd": frechet_distance(seen_g.features, seen_r.features), "targets": TARGETS}
    out["met"] = {
        "categorical_agreement": min(cat.values()) >= TARGETS["categorical_agreement"],
        "continuous_r2": min(cont.values()) >= TARGETS["continuous_r2"],
        "parts_miou": out["parts_miou"] >= TARGETS["parts_miou"],
        "psnr_db": psnr >= TARGETS["psnr_db"],
    }
    return out


def print_fidelity(r: dict) -> None:
    t = r["targets"]
    print(f"held-out fidelity on {r['n']} z (seed {r['seed']})")
    print(f"  PSNR {r['psnr_db']:.2f} dB (target >= {t['psnr_db']})   part mIoU {r['parts_miou']:.3f} "
          f"(target >= {t['parts_miou']})   predictor-feature FD {r['feature_fd']:.2f}")
    print("  categorical agreement: " + ", ".join(f"{k} {v:.3f}" for k, v in r["categorical_agreement"].items())
          + f" (target >= {t['categorical_agreement']})")
    print("  continuous R^2: " + ", ".join(f"{k} {v:.3f}" for k, v in r["continuous_r2"].items())
          + f" (target >= {t['continuous_r2']})")
    print("  part IoU: " + ", ".join(f"{k} {v:.2f}" for k, v in r["parts_iou"].items()))


@torch.no_grad()
def save_side_by_side(G, path: Path, *, n: int = 16, seed: int = FIDELITY_SEED + 1, size: int = 64) -> Path:
    """A grid of n columns pairs: the render of f (top row of each pair) and G(z) for the same f."""
    z = torch.randn([n, Z_DIM], generator=torch.Generator().manual_seed(seed))
    real = render(z_to_factors(z), size).img
    fake = G(z, truncation_psi=1, noise_mode="const").clamp(-1, 1)
    cols = 8
    rows = []
    for i in range(0, n, cols):
        rows += [real[i:i + cols], fake[i:i + cols]]
    grid = image_grid(to_uint8_hwc(torch.cat(rows)), pad=2, columns=cols)
    Image.fromarray(grid).resize((grid.shape[1] * 2, grid.shape[0] * 2), Image.NEAREST).save(path)
    return path


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m training.demo.fidelity", description=__doc__.split("\n")[0])
    ap.add_argument("--generator", default="shared/demo/bundle/generator.safetensors")
    ap.add_argument("--n", type=int, default=500)
    ap.add_argument("--json", type=Path, help="also write the report here")
    ap.add_argument("--grid", type=Path, help="also write the render / G(z) side-by-side grid here")
    args = ap.parse_args()
    G = load_generator(args.generator)
    r = fidelity_report(G, load_predictor(), n=args.n)
    print_fidelity(r)
    if args.json:
        args.json.write_text(json.dumps(r, indent=1))
    if args.grid:
        save_side_by_side(G, args.grid)


if __name__ == "__main__":
    main()
