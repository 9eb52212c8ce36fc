"""Searching the StyleSpace attribute channels of the demo generator, found automatically with the demo predictor
(Wu et al., "StyleSpace Analysis", CVPR 2021, Sec. 5 find attribute-specific channels with a
classifier; here the predictor's continuous factors play that role).

Every style channel (toRGB left out) is moved by +`strength` standard deviations on n latents;
the predictor reads every continuous factor before and after. A channel is *specific* to factor f
when f's change (as a share of its range) is the largest and is at least `purity` of the sum of
all factors' changes. The top channels per factor are written to
`shared/demo/stylespace_channels.json`, which the Local editing tab shows as named sliders.

    python -m training.demo.attribute_channels [--n 8] [--strength 5] [--out shared/demo/stylespace_channels.json]
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from shared import load_generator
from shared.demo.attribute_channels import DEFAULT_PATH
from shared.demo.bundle import bundle_file
from shared.demo.predictor import DEFAULT_PATH as PREDICTOR
from shared.demo.predictor import load_predictor
from shared.editing.stylespace import style_stats
from shared.portraits import FACTORS

__all__ = ["find_attribute_channels"]

CONTINUOUS = [s for s in FACTORS if s.kind == "continuous" and s.name != "background_hue"]  # hue is circular


@torch.no_grad()
def find_attribute_channels(G, predictor, *, n: int = 8, strength: float = 5.0, seed: int = 7_500_000,
                            purity: float = 0.4, top: int = 3, batch: int = 64, progress=print) -> dict:
    """{'factors': {name: [{'layer', 'channel', 'effect', 'purity'}, ...]}, settings...}; `effect`
    is the mean change of the factor (share of its range) for +strength std, signed."""
    stats = style_stats(G, samples=2000, seed=seed + 1)
    g = torch.Generator().manual_seed(seed)
    ws = G.mapping(torch.randn([n, G.z_dim], generator=g))
    styles = G.synthesis.styles(ws)
    spans = torch.tensor([s.high - s.low for s in CONTINUOUS])

    def read(st):
        f = predictor.predict(G.synthesis.from_styles(st, noise_mode="const")).factors
        return torch.stack([f[s.name].float() for s in CONTINUOUS], dim=1) / spans  # [B, F]

    base = read(styles)                                                        # [n, F]
    jobs = [(l.index, c) for l in G.style_layers if not l.is_torgb for c in range(l.channels)]
    per = max(1, batch // n)
    effects = torch.zeros(len(jobs), len(CONTINUOUS))
    t0 = time.time()
    for start in range(0, len(jobs), per):
        chunk = jobs[start:start + per]
        edited = [s.repeat(len(chunk), 1) for s in styles]
        for i, (layer, channel) in enumerate(chunk):
            edited[layer][i * n:(i + 1) * n, channel] += strength * float(stats.std[layer][channel])
        delta = read(edited).reshape(len(chunk), n, -1) - base[None]
        effects[start:start + len(chunk)] = delta.mean(1)
        if start % (per * 40) == 0:
            progress(f"{start + len(chunk)}/{len(jobs)} channels ({time.time() - t0:.0f} s)")
    out: dict = {"n": n, "strength": strength, "seed": seed, "purity": purity, "factors": {}}
    mag = effects.abs()
    share = mag / mag.sum(1, keepdim=True).clamp_min(1e-12)
    best = mag.argmax(1)
    for j, spec in enumerate(CONTINUOUS):
        idx = [i for i in range(len(jobs)) if int(best[i]) == j and float(share[i, j]) >= purity]
        idx.sort(key=lambda i: float(mag[i, j]), reverse=True)
        out["factors"][spec.name] = [{"layer": jobs[i][0], "channel": jobs[i][1], "effect": float(effects[i, j]),
                                      "purity": float(share[i, j])} for i in idx[:top]]
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m training.demo.attribute_channels", description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=8)
    ap.add_argument("--strength", type=float, default=5.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=DEFAULT_PATH)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    G = load_generator(bundle_file("generator.safetensors")).eval()
    table = find_attribute_channels(G, load_predictor(PREDICTOR), n=args.n, strength=args.strength)
    args.out.write_text(json.dumps(table, indent=1) + "\n")
    for name, rows in table["factors"].items():
        cells = ", ".join(f"L{r['layer']} c{r['channel']} {r['effect']:+.2f} ({r['purity']:.0%})" for r in rows)
        print(f"{name:16s} {cells or 'none'}")
    print(f"written {args.out}")


if __name__ == "__main__":
    main()
