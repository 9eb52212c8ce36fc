"""Inversion quality and speed on held-out demo-world renders (issue 5, item 5). Not a test.

    python -m benchmarks.inversion [--n 20] [--steps 500] [--methods w w+ e4e hybrid]
                                   [--json benchmarks/results/inversion.json]

Each method of `shared.inversion.compare` runs on the same n renders (seeds disjoint from every
training and evaluation seed) with the offline default generator (the demo world's StyleGAN2) and
its paired e4e; the perceptual score is whatever `default_perceptual` picks (offline: the demo
predictor's features). Prints mean PSNR, perceptual distance and seconds per image per method,
against the demo world v2 targets (issue 16: W+ >= 30 dB within 500 steps; e4e >= 25 dB in < 0.1 s per
image on this CPU).
"""
from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

from shared import hub, registry
from shared.inversion.compare import CompareOptions, default_perceptual, encoder_records_for, run_methods
from shared.loaders.encoders import load_encoder_checkpoint
from shared.model_cache import ModelCache
from shared.portraits import render_seeds

SEED0 = 7_200_000   # renders 7_200_000 + i
TARGETS = {"w+": ("psnr >= 30 dB", lambda r: r["psnr_db"] >= 30),
           "e4e": ("psnr >= 25 dB and < 0.1 s", lambda r: r["psnr_db"] >= 25 and r["seconds"] < 0.1)}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.inversion", description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=20)
    ap.add_argument("--steps", type=int, default=500)
    ap.add_argument("--methods", nargs="+", default=["w", "w+", "e4e", "hybrid"])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", type=Path, default=Path("benchmarks/results/inversion.json"))
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    model_id = registry.DEFAULT_GENERATOR_ID
    G = ModelCache("cpu", 1 << 30).generator(model_id)
    encoders = {k: load_encoder_checkpoint(hub.cached_path(registry.get(r)))
                for k, r in encoder_records_for(model_id).items()}
    perceptual = default_perceptual("cpu")
    options = CompareOptions(steps=args.steps, noise_steps=args.steps // 2, pti_steps=args.steps // 2)
    targets = render_seeds([SEED0 + i for i in range(args.n)], 64).img
    per: dict[str, list[tuple[float, float, float]]] = {m: [] for m in args.methods}
    t0 = time.time()
    for i in range(args.n):
        for run in run_methods(G, targets[i:i + 1], args.methods, options, perceptual=perceptual, encoders=encoders):
            per[run.key].append((run.psnr, run.perceptual, run.seconds))
        print(f"image {i + 1}/{args.n} done ({time.time() - t0:.0f} s)", flush=True)
    rows = {}
    print(f"\n{model_id}, {args.n} held-out renders, {args.steps} steps, perceptual {perceptual.name}, "
          f"{args.threads} CPU threads")
    print(f"{'method':8s} {'PSNR dB':>8s} {'perceptual':>10s} {'s/image':>8s}  target")
    for m, vals in per.items():
        t = torch.tensor(vals, dtype=torch.float64)
        r = {"psnr_db": float(t[:, 0].mean()), "psnr_min_db": float(t[:, 0].min()),
             "perceptual": float(t[:, 1].mean()), "seconds": float(t[:, 2].mean())}
        if m in TARGETS:
            r["target"], r["met"] = TARGETS[m][0], bool(TARGETS[m][1](r))
        rows[m] = r
        print(f"{m:8s} {r['psnr_db']:8.2f} {r['perceptual']:10.4f} {r['seconds']:8.3f}  "
              f"{r.get('target', '')} {'' if 'met' not in r else ('met' if r['met'] else 'MISSED')}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"model": model_id, "n": args.n, "steps": args.steps, "seed0": SEED0,
                                     "perceptual": perceptual.name, "threads": args.threads,
                                     "machine": platform.processor() or platform.machine(),
                                     "torch": torch.__version__, "methods": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
