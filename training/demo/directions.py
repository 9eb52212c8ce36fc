"""Fitting the linear edit directions in W for the demo generator, one per factor of the portrait
world (the file format and loading: `shared.demo.directions`).

InterFaceGAN (Shen et al., "Interpreting the Latent Space of GANs for Semantic Face Editing",
2020; genforce/interfacegan) samples latents, labels the images with attribute predictors and
takes the normal of a linear boundary in latent space as the edit direction. We do the same in W
with the demo world's predictor (shared/demo/predictor.py) as the labeller: for a continuous
factor the direction is the ridge-regression gradient of the predicted value on w; for a
categorical one, one direction per class (one class against the rest, a ridge fit of the +/-1
labels, a linear-discriminant boundary normal). Each direction is stored unit-norm with `slope`:
how much the predicted factor (or class probability) moves per unit step along it, measured by
editing fresh latents and reading the results with the predictor, so an edit can be asked for in
the factor's own units. Fits are closed-form and seeded: the same generator and
predictor always give the same file.

    python -m training.demo.directions --generator G.safetensors --out directions.safetensors
"""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Callable

import torch
from safetensors.torch import save_file
from torch import Tensor

from shared import load_generator
from shared.demo.directions import FORMAT, Direction, DirectionSet
from shared.demo.predictor import DEFAULT_PATH, load_predictor
from shared.portraits import FACTORS

__all__ = ["build_direction_set", "calibrate", "fit_directions", "label_samples", "save_directions"]


@torch.no_grad()
def label_samples(G, predictor, n: int, seed: int, *, batch: int = 100, psi: float = 1.0,
                  progress: Callable[[str], None] | None = None) -> tuple[Tensor, dict[str, Tensor]]:
    """n latents w [n, w_dim] (seeded) and the predictor's labels of G's images: continuous
    factors as values, categorical ones as class probabilities [n, K]."""
    g = torch.Generator().manual_seed(seed)
    ws, labels = [], {}
    for i in range(0, n, batch):
        z = torch.randn([min(batch, n - i), G.z_dim], generator=g)
        w = G.mapping(z, truncation_psi=psi)
        img = G.synthesis(w, noise_mode="const")
        p = predictor.predict(img)
        ws.append(w[:, 0])
        for s in FACTORS:
            v = p.probs[s.name] if s.kind == "categorical" else p.factors[s.name].float()
            labels.setdefault(s.name, []).append(v)
        if progress:
            progress(f"labelled {min(i + batch, n)}/{n} samples")
    return torch.cat(ws), {k: torch.cat(v) for k, v in labels.items()}


def _ridge(x: Tensor, y: Tensor, lam: float) -> tuple[Tensor, Tensor]:
    """Centred ridge regression y ~ x @ b + c (float64). Returns (b [D], c)."""
    xm, ym = x.mean(0), y.mean()
    xc = x - xm
    a = xc.T @ xc + lam * len(x) * torch.eye(x.shape[1], dtype=x.dtype)
    b = torch.linalg.solve(a, xc.T @ (y - ym))
    return b, ym - xm @ b


def fit_directions(ws: Tensor, labels: dict[str, Tensor], *, holdout: float = 0.2,
                   lam: float = 1e-3) -> dict[str, Direction]:
    """Fit one direction per continuous factor and per class of each categorical factor."""
    x = ws.double()
    n_fit = int(len(x) * (1 - holdout))
    xs = x / x.std(0).mean()            # scale-free ridge penalty
    out: dict[str, Direction] = {}

    def add(name: str, y: Tensor, kind: str) -> None:
        b, c = _ridge(xs[:n_fit], y[:n_fit], lam)
        pred = xs[n_fit:] @ b + c
        yt = y[n_fit:]
        if kind == "continuous":
            fit = float(1 - (pred - yt).square().sum() / (yt - yt.mean()).square().sum().clamp(min=1e-12))
        else:  # balanced accuracy: rare classes must not look well fitted by never being predicted
            pos, hit = yt > 0, (pred > 0) == (yt > 0)
            fit = float(0.5 * (hit[pos].double().mean().nan_to_num(0.5) + hit[~pos].double().mean().nan_to_num(0.5)))
        grad = b / x.std(0).mean()      # d y / d w
        norm = grad.norm()
        slope = float(norm) if kind == "continuous" else float(norm) / 2  # +/-1 labels: prob = (y + 1) / 2
        out[name] = Direction(name, (grad / norm).float(), slope, fit)

    for s in FACTORS:
        y = labels[s.name].double()
        if s.kind == "continuous":
            add(s.name, y, "continuous")
        else:
            for k, cat in enumerate(s.categories):
                add(f"{s.name}={cat}", 2 * y[:, k] - 1, "categorical")
    return out


def save_directions(ds: DirectionSet, path: Path) -> Path:
    names = ds.names()
    tensors = {"vectors": torch.stack([ds[n].vector for n in names]).contiguous()}
    meta = {"format": FORMAT, "names": json.dumps(names),
            "slopes": json.dumps([ds[n].slope for n in names]),
            "fits": json.dumps([ds[n].fit for n in names]), "w_std": json.dumps(ds.w_std),
            "info": json.dumps(ds.info, sort_keys=True)}
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, str(tmp), metadata=meta)
    os.replace(tmp, path)
    return path


@torch.no_grad()
def calibrate(G, predictor, directions: dict[str, Direction], *, n: int = 100, step: float = 2.0,
              seed: int = 31_338) -> dict[str, Direction]:
    """Replace each slope by the measured response: the mean change of the predicted factor (class
    probability) between w + step*v and w - step*v over n fresh latents, divided by 2*step. The
    regression slope describes how the factor varies across samples; this one is what an edit does."""
    ws = G.mapping(torch.randn([n, G.z_dim], generator=torch.Generator().manual_seed(seed)))
    out = {}
    for name, d in directions.items():
        factor, _, cls = name.partition("=")
        spec = next(s for s in FACTORS if s.name == factor)

        def read(w: Tensor) -> Tensor:
            p = predictor.predict(G.synthesis(w, noise_mode="const"))
            return p.probs[factor][:, spec.categories.index(cls)] if cls else p.factors[factor].float()

        v = d.vector.to(ws)
        response = float((read(ws + step * v) - read(ws - step * v)).mean()) / (2 * step)
        out[name] = Direction(name, d.vector, response, d.fit)
    return out


def build_direction_set(G, predictor, *, n: int = 6000, seed: int = 31_337, lam: float = 1e-2,
                        calibration_n: int = 100, calibration_step: float = 2.0,
                        progress: Callable[[str], None] | None = None) -> DirectionSet:
    ws, labels = label_samples(G, predictor, n, seed, progress=progress)
    dirs = calibrate(G, predictor, fit_directions(ws, labels, lam=lam), n=calibration_n, step=calibration_step)
    return DirectionSet(dirs, float(ws.std(0).mean()),
                        {"n": n, "seed": seed, "ridge_lambda": lam, "psi": 1.0, "holdout": 0.2,
                         "labeller": "shared.demo.predictor", "slope": "measured response per unit step in W",
                         "calibration_n": calibration_n, "calibration_step": calibration_step})


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m training.demo.directions", description=__doc__.split("\n")[0])
    ap.add_argument("--generator", type=Path, required=True)
    ap.add_argument("--predictor", type=Path, default=DEFAULT_PATH)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--n", type=int, default=6000)
    ap.add_argument("--seed", type=int, default=31_337)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    ds = build_direction_set(load_generator(args.generator), load_predictor(args.predictor), n=args.n,
                             seed=args.seed, progress=lambda s: print(s, flush=True))
    save_directions(ds, args.out)
    for name in ds.names():
        d = ds[name]
        print(f"{name:28s} fit {d.fit:.3f}  slope {d.slope:.4f} per unit of w")


if __name__ == "__main__":
    main()
