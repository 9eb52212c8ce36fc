"""Evaluation of the demo generator against the portrait world it was trained on.

The predictor (shared/demo/predictor.py) is the judge: it reads the factors, the part map and a
feature vector off any 64-px image. We compare what it sees on fresh renders with what it sees on
the generator's samples:

- per factor, the distance between the two distributions of predicted values: total variation
  for categorical factors (glasses colour among portraits with glasses), 1-D Wasserstein for
  continuous ones (also given as a share of the factor's range);
- a Fréchet distance in the predictor's feature space (the FID recipe, Heusel et al. 2017, on the
  demo world's own perceptual space), with two baselines an honest generator must beat by far: an
  untrained generator of the same architecture, and renders whose pixels were shuffled; and the
  noise floor, renders against other renders;
- the share of images whose predicted part map is plausible (one face with skin, eyes above a
  mouth, a nose between them, enough background), on samples and on renders;
- style mixing (Karras et al. 2019, Sec. 3.1): for each layer range, which factors of a mixed
  image follow the source that gave the range and which follow the destination; and the split
  test of `mixing_split`: taking B's coarse rows into A should carry B's pose and face shape while
  A keeps its colours, taking B's finer rows the reverse.

    python -m training.demo.evaluate --generator shared/demo/bundle/generator.safetensors
"""
from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from torch import Tensor

from shared import load_generator
from shared.archs.stylegan2 import StyleGAN2Generator
from shared.demo.bundle import BUNDLE_DIR
from shared.demo.predictor import DEFAULT_PATH, load_predictor
from shared.images import image_grid, to_uint8_hwc
from shared.latents import layer_ranges, ws_from_seeds
from shared.mixing import style_mixing_grid
from shared.portraits import FACTORS, PART_NAMES, render, sample_factors

__all__ = ["Seen", "evaluate_generator", "frechet_distance", "mixing_split", "plausible_parts", "see_images",
           "COLOUR_FACTORS", "MIXING_SPLIT_TARGET", "SHAPE_FACTORS", "TV_TARGET", "W1_TARGET", "save_grids"]

TV_TARGET = 0.05     # largest per-factor total variation, generator vs renders (issue 16)
W1_TARGET = 0.05     # largest continuous Wasserstein-1 distance, as a share of the factor's range
EVAL_RENDER_SEED = 7_100_001    # renders; disjoint from training chunks (>= 1e9) and other evals
EVAL_SAMPLE_SEED = 7_100_002    # generator latents
_P = {name: k for k, name in enumerate(PART_NAMES)}
SHAPE_FACTORS = ("yaw", "pitch", "face_width", "face_length", "jaw")          # pose and face shape
COLOUR_FACTORS = ("skin_tone", "hair_color", "eye_color", "background_hue")   # colours
MIXING_SPLIT_TARGET = 0.8
MIXING_SPLIT_SEED = 7_100_004


@dataclass(frozen=True)
class Seen:
    """What the predictor reads off N images: factors [N] per name (categorical as codes),
    probs per categorical factor, parts [N,64,64], features [N,F]."""
    factors: dict[str, Tensor]
    parts: Tensor
    features: Tensor


@torch.no_grad()
def see_images(predictor, images: Callable[[int, int], Tensor], n: int, batch: int = 100) -> Seen:
    """Run the predictor over n images produced batch by batch by images(start, count)."""
    facs: dict[str, list[Tensor]] = {}
    parts, feats = [], []
    for i in range(0, n, batch):
        p = predictor.predict(images(i, min(batch, n - i)))
        for s in FACTORS:
            facs.setdefault(s.name, []).append(p.factors[s.name])
        parts.append(p.parts.to(torch.uint8))
        feats.append(p.features.double())
    return Seen({k: torch.cat(v) for k, v in facs.items()}, torch.cat(parts), torch.cat(feats))


def frechet_distance(a: Tensor, b: Tensor) -> float:
    """Fréchet distance between Gaussians fitted to feature sets a [N,F] and b [M,F] (float64)."""
    a, b = a.double(), b.double()
    mu_a, mu_b = a.mean(0), b.mean(0)
    ca, cb = torch.cov(a.T), torch.cov(b.T)
    ev, vec = torch.linalg.eigh(ca)
    root_a = vec @ torch.diag(ev.clamp(min=0).sqrt()) @ vec.T
    cross = torch.linalg.eigvalsh(root_a @ cb @ root_a).clamp(min=0).sqrt().sum()
    return float((mu_a - mu_b).square().sum() + ca.trace() + cb.trace() - 2 * cross)


def plausible_parts(parts: Tensor) -> Tensor:
    """[N] bool: a part map reads as one portrait: made of regions (at least 85 % of pixels have the
    label of their right-hand neighbour), skin covers 5-70 % of the image, background at
    least 10 %, eyes, nose and mouth are present (at least 4, 2 and 3 pixels), the eyes' mean row
    lies above the mouth's and the nose's mean row between them (within 2 px)."""
    n, h, w = parts.shape
    rows = torch.arange(h, dtype=torch.float64).view(1, h, 1).expand(n, h, w)

    def area(k: int) -> Tensor:
        return (parts == k).flatten(1).sum(1).double()

    def mean_row(k: int) -> Tensor:
        m = (parts == k).double()
        return (rows * m).flatten(1).sum(1) / m.flatten(1).sum(1).clamp(min=1)

    px = float(h * w)
    coherent = (parts[:, :, 1:] == parts[:, :, :-1]).flatten(1).double().mean(1) >= 0.85
    skin, bg = area(_P["skin"]) / px, area(_P["background"]) / px
    eyes, nose, mouth = area(_P["eyes"]), area(_P["nose"]), area(_P["mouth"])
    ey, ny, my = mean_row(_P["eyes"]), mean_row(_P["nose"]), mean_row(_P["mouth"])
    return (coherent & (skin >= 0.05) & (skin <= 0.7) & (bg >= 0.1) & (eyes >= 4) & (nose >= 2) & (mouth >= 3)
            & (ey < my) & (ny >= ey - 2) & (ny <= my + 2))


def _tv(a: Tensor, b: Tensor, k: int) -> float:
    pa = torch.bincount(a, minlength=k).double() / max(len(a), 1)
    pb = torch.bincount(b, minlength=k).double() / max(len(b), 1)
    return float(0.5 * (pa - pb).abs().sum())


def _w1(a: Tensor, b: Tensor) -> float:
    """1-D Wasserstein distance between two samples (through their quantile functions)."""
    q = torch.linspace(0, 1, 1001, dtype=torch.float64)
    return float((torch.quantile(a.double(), q) - torch.quantile(b.double(), q)).abs().mean())


def factor_distances(real: Seen, fake: Seen) -> dict[str, dict]:
    out = {}
    glasses = FACTORS[[s.name for s in FACTORS].index("glasses")]
    for s in FACTORS:
        a, b = real.factors[s.name], fake.factors[s.name]
        if s.kind == "categorical":
            if s.name == "glasses_color":   # only drawn on portraits with glasses
                a = a[real.factors[glasses.name] != 0]
                b = b[fake.factors[glasses.name] != 0]
            tv = _tv(a, b, len(s.categories))
            out[s.name] = {"kind": "categorical", "tv": tv, "target": TV_TARGET, "ok": tv <= TV_TARGET,
                           "real": (torch.bincount(a, minlength=len(s.categories)).double() / max(len(a), 1)).tolist(),
                           "fake": (torch.bincount(b, minlength=len(s.categories)).double() / max(len(b), 1)).tolist()}
        else:
            w1 = _w1(a, b)
            out[s.name] = {"kind": "continuous", "w1": w1, "w1_of_range": w1 / (s.high - s.low),
                           "real_mean": float(a.mean()), "fake_mean": float(b.mean()),
                           "real_std": float(a.std()), "fake_std": float(b.std())}
    return out


def _corr(x: Tensor, y: Tensor) -> float:
    x, y = x.double() - x.double().mean(), y.double() - y.double().mean()
    return float((x * y).sum() / (x.norm() * y.norm()).clamp(min=1e-12))


@torch.no_grad()
def mixing_report(G, predictor, *, n: int = 200, seed: int = 7_100_003) -> dict[str, dict]:
    """For each layer range: correlation of each continuous factor of the mix with the source's
    and with the destination's value, and for categorical factors how often the mix agrees with
    each (predicted by the predictor on all three images)."""
    g = torch.Generator().manual_seed(seed)
    src = G.mapping(torch.randn([n, G.z_dim], generator=g))
    dst = G.mapping(torch.randn([n, G.z_dim], generator=g))
    see = lambda ws: predictor.predict(G.synthesis(ws, noise_mode="const")).factors  # noqa: E731
    fs, fd = see(src), see(dst)
    out = {}
    for name, rng in layer_ranges(G).items():
        mixed = dst.clone()
        mixed[:, list(rng.rows)] = src[:, list(rng.rows)]
        fm = see(mixed)
        rep = {}
        for s in FACTORS:
            if s.kind == "continuous":
                rep[s.name] = {"source": _corr(fm[s.name], fs[s.name]), "destination": _corr(fm[s.name], fd[s.name])}
            else:
                rep[s.name] = {"source": float((fm[s.name] == fs[s.name]).double().mean()),
                               "destination": float((fm[s.name] == fd[s.name]).double().mean())}
        out[name] = {"rows": list(rng.rows), "resolutions": list(rng.resolutions), "factors": rep}
    return out


def _closer_to_b(spec, a: Tensor, b: Tensor, x: Tensor) -> tuple[int, int]:
    """(pairs where the mix x reads closer to b than to a, pairs where closer to a). Continuous:
    absolute distance (hue on the circle); categorical: equal class, over pairs with a != b."""
    if spec.kind == "continuous":
        a, b, x = a.double(), b.double(), x.double()
        if spec.name == "background_hue":
            span = spec.high - spec.low
            dist = lambda u, v: torch.minimum((u - v).abs() % span, span - (u - v).abs() % span)  # noqa: E731
        else:
            dist = lambda u, v: (u - v).abs()  # noqa: E731
        da, db = dist(x, a), dist(x, b)
        return int((db < da).sum()), int((da < db).sum())
    differ = a != b
    return int(((x == b) & differ).sum()), int(((x == a) & differ).sum())


@torch.no_grad()
def mixing_split(G, predictor, *, pairs: int = 200, seed: int = MIXING_SPLIT_SEED,
                 shape_factors: tuple[str, ...] = SHAPE_FACTORS,
                 colour_factors: tuple[str, ...] = COLOUR_FACTORS) -> dict:
    """Does style mixing split pose/shape from colour the way the StyleGAN paper shows (Fig. 3)?

    For `pairs` random pairs (A, B) (z from `seed`, psi 1, constant noise) and each mix, the
    predictor reads every factor of A, B and the mix; a factor *follows B* when, over the pairs,
    the mix reads closer to B than to A more often than the reverse (`_closer_to_b`). Expected:
    - 'coarse' (A with B's coarse rows): shape factors follow B, colour factors stay with A;
    - 'finer' (A with B's rows above the coarse band, i.e. middle + fine): the reverse;
    - 'fine' (A with B's fine rows only) is reported with the same expectation as 'finer'.
    Returns {mix: {'rows', 'factors': {name: {'to_b', 'to_a', 'follows', 'expected', 'ok'}},
    'share'}} and 'share' = the share of (mix, factor) decisions that follow the expected source
    over 'coarse' and 'finer', with 'target' MIXING_SPLIT_TARGET.
    """
    specs = {s.name: s for s in FACTORS}
    g = torch.Generator().manual_seed(seed)
    a_ws = G.mapping(torch.randn([pairs, G.z_dim], generator=g))
    b_ws = G.mapping(torch.randn([pairs, G.z_dim], generator=g))
    see = lambda ws: predictor.predict(G.synthesis(ws, noise_mode="const")).factors  # noqa: E731
    fa, fb = see(a_ws), see(b_ws)
    ranges = layer_ranges(G)
    coarse = list(ranges["coarse"].rows)
    finer = [r for r in range(G.num_ws) if r not in coarse]
    mixes = {"coarse": (coarse, "B"), "finer": (finer, "A"), "fine": (list(ranges["fine"].rows), "A")}
    out: dict = {}
    hits = total = 0
    for name, (rows, shape_goes_to) in mixes.items():
        mixed = a_ws.clone()
        mixed[:, rows] = b_ws[:, rows]
        fm = see(mixed)
        rep = {}
        for group, expected in ((shape_factors, shape_goes_to), (colour_factors, "A" if shape_goes_to == "B" else "B")):
            for f in group:
                to_b, to_a = _closer_to_b(specs[f], fa[f], fb[f], fm[f])
                follows = "B" if to_b > to_a else "A"
                rep[f] = {"to_b": to_b, "to_a": to_a, "follows": follows, "expected": expected,
                          "ok": follows == expected}
        ok = sum(v["ok"] for v in rep.values())
        out[name] = {"rows": rows, "factors": rep, "share": ok / len(rep)}
        if name != "fine":
            hits, total = hits + ok, total + len(rep)
    out["share"] = hits / total
    out["target"] = MIXING_SPLIT_TARGET
    out["pairs"] = pairs
    return out


def _shuffled(img: Tensor, g: torch.Generator) -> Tensor:
    n, c, h, w = img.shape
    perm = torch.argsort(torch.rand(n, h * w, generator=g), dim=1)
    flat = img.reshape(n, c, h * w)
    return torch.gather(flat, 2, perm[:, None].expand(n, c, h * w)).reshape(n, c, h, w)


@torch.no_grad()
def evaluate_generator(G, predictor, *, n: int = 2000, psi: float = 1.0, mixing_n: int = 200,
                       progress: Callable[[str], None] = lambda s: None) -> dict:
    """The full report (JSON-ready); see the module docstring."""
    t0 = time.time()
    rf = sample_factors(n, EVAL_RENDER_SEED)
    renders = lambda i, k: render(rf.select(slice(i, i + k)), 64).img.clone()  # noqa: E731
    real = see_images(predictor, renders, n)
    progress(f"renders seen ({time.time() - t0:.0f} s)")
    rf2 = sample_factors(n, EVAL_RENDER_SEED + 10)
    real2 = see_images(predictor, lambda i, k: render(rf2.select(slice(i, i + k)), 64).img.clone(), n)
    gz = torch.Generator().manual_seed(EVAL_SAMPLE_SEED)
    z = torch.randn([n, G.z_dim], generator=gz)
    fake = see_images(predictor, lambda i, k: G(z[i:i + k], truncation_psi=psi, noise_mode="const"), n)
    progress(f"samples seen ({time.time() - t0:.0f} s)")
    untrained = StyleGAN2Generator(G.config).init_random_(torch.Generator().manual_seed(0)).eval()
    base_g = see_images(predictor, lambda i, k: untrained(z[i:i + k], noise_mode="const"), n)
    gs = torch.Generator().manual_seed(EVAL_RENDER_SEED + 20)
    base_s = see_images(predictor, lambda i, k: _shuffled(renders(i, k), gs), n)
    progress(f"baselines seen ({time.time() - t0:.0f} s)")
    dist = factor_distances(real, fake)
    tvs = {k: v["tv"] for k, v in dist.items() if v["kind"] == "categorical"}
    w1s = [v["w1_of_range"] for v in dist.values() if v["kind"] == "continuous"]
    report = {
        "n": n, "psi": psi, "render_seed": EVAL_RENDER_SEED, "sample_seed": EVAL_SAMPLE_SEED,
        "factors": dist,
        "max_tv": max(tvs.values()), "tv_target": TV_TARGET, "tv_ok": all(v <= TV_TARGET for v in tvs.values()),
        "max_w1_of_range": max(w1s), "w1_target": W1_TARGET, "w1_ok": max(w1s) <= W1_TARGET,
        "frechet": {"generator": frechet_distance(real.features, fake.features),
                    "untrained_generator": frechet_distance(real.features, base_g.features),
                    "shuffled_renders": frechet_distance(real.features, base_s.features),
                    "renders_vs_renders": frechet_distance(real.features, real2.features)},
        "plausible_parts": {"generator": float(plausible_parts(fake.parts).double().mean()),
                            "renders": float(plausible_parts(real.parts).double().mean()),
                            "untrained_generator": float(plausible_parts(base_g.parts).double().mean())},
    }
    report["mixing"] = mixing_report(G, predictor, n=mixing_n)
    report["seconds"] = round(time.time() - t0, 1)
    return report


@torch.no_grad()
def save_grids(G, out_dir: Path, *, prefix: str = "demo_", psi: float = 1.0) -> list[Path]:
    """Sample grid (8 x 8, seeds 0-63), style-mixing grids for the coarse, middle and fine
    ranges (5 sources x 5 destinations), stacked with a gap; upscaled 2x for viewing."""
    import numpy as np
    from PIL import Image

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    imgs = G(torch.randn([64, G.z_dim], generator=torch.Generator().manual_seed(0)), truncation_psi=psi,
             noise_mode="const")
    sheet = image_grid(to_uint8_hwc(imgs), columns=8, pad=2)
    p = out_dir / f"{prefix}samples.png"
    Image.fromarray(sheet).resize((sheet.shape[1] * 2, sheet.shape[0] * 2), Image.NEAREST).save(p)
    paths.append(p)
    src, dst = ws_from_seeds(G, [11, 12, 13, 14, 15]), ws_from_seeds(G, [21, 22, 23, 24, 25])
    sheets = [style_mixing_grid(G, src, dst, rng).sheet for rng in layer_ranges(G).values()]
    gap = np.full((8, sheets[0].shape[1], 3), 255, dtype=np.uint8)
    stacked = np.concatenate(sum(([s, gap] for s in sheets), [])[:-1])
    p = out_dir / f"{prefix}style_mixing.png"
    Image.fromarray(stacked).resize((stacked.shape[1] * 2, stacked.shape[0] * 2), Image.NEAREST).save(p)
    paths.append(p)
    return paths


def print_report(r: dict) -> None:
    print(f"demo generator vs renders, {r['n']} each (psi {r['psi']}), judged by the predictor")
    print("  factor            distance")
    for name, d in r["factors"].items():
        if d["kind"] == "categorical":
            print(f"  {name:16s}  TV {d['tv']:.3f}  (target <= {d['target']})  {'ok' if d['ok'] else 'MISS'}")
        else:
            print(f"  {name:16s}  W1 {d['w1']:.3f}  ({100 * d['w1_of_range']:.1f} % of range)")
    f = r["frechet"]
    print(f"  Frechet (predictor features): generator {f['generator']:.2f} | untrained generator "
          f"{f['untrained_generator']:.2f} | shuffled renders {f['shuffled_renders']:.2f} | "
          f"renders vs renders {f['renders_vs_renders']:.2f}")
    p = r["plausible_parts"]
    print(f"  plausible part maps: generator {100 * p['generator']:.1f} % | renders {100 * p['renders']:.1f} % | "
          f"untrained {100 * p['untrained_generator']:.1f} %")
    for name, m in r["mixing"].items():
        follow = [k for k, v in m["factors"].items() if v["source"] > v["destination"]]
        print(f"  mixing {name:6s} rows {m['rows']}: follows the source in {', '.join(follow) or 'nothing'}")
    print(f"  max TV {r['max_tv']:.3f} -> {'all within target' if r['tv_ok'] else 'target missed'}; "
          f"{r['seconds']} s")


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m training.demo.evaluate", description=__doc__.split("\n")[0])
    ap.add_argument("--generator", type=Path, default=BUNDLE_DIR / "generator.safetensors")
    ap.add_argument("--predictor", type=Path, default=DEFAULT_PATH)
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--psi", type=float, default=1.0)
    ap.add_argument("--json", type=Path, help="also write the report here")
    ap.add_argument("--grids", type=Path, help="write the sample and style-mixing grids into this folder")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    G = load_generator(args.generator)
    report = evaluate_generator(G, load_predictor(args.predictor), n=args.n, psi=args.psi,
                                progress=lambda s: print(s, flush=True))
    print_report(report)
    if args.json:
        args.json.write_text(json.dumps(report, indent=1) + "\n")
    if args.grids:
        for p in save_grids(G, args.grids):
            print(f"wrote {p}")


if __name__ == "__main__":
    main()
