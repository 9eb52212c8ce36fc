"""Mixing figures of the demo world and timings (issue 6, item 5). Not a test.

    python -m benchmarks.mixing [--pairs 200] [--crossovers 6] [--steps 200] [--noise-steps 100]
                                [--threads 2] [--json benchmarks/results/mixing.json]

1. The style-mixing split (`training.demo.evaluate.mixing_split`): over `--pairs` random pairs,
   which demo-world factors follow the expected source when B's coarse rows, B's finer rows or
   B's fine rows go into A; share of decisions that follow the expected source (target >= 80 %).
2. Crossover (`shared.crossover.crossover`, the tab's defaults) on `--crossovers` pairs of the
   demo generator's samples, each with the left/right and upper/lower masks: PSNR inside each
   source's region, gradient energy along the seam vs the naive paste.
3. CPU timings: a 6 x 6 style-mixing grid and a 60-frame interpolation (frames + MP4) on the
   demo generator (64 px) and on a randomly initialised StyleGAN2 config-f at 256 px.
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch

from shared import load_generator
from shared.archs.stylegan2 import StyleGAN2Config, StyleGAN2Generator
from shared.crossover import crossover, preset_mask
from shared.demo.bundle import bundle_file
from shared.demo.predictor import load_predictor
from shared.inversion.compare import default_perceptual
from shared.latents import ws_from_seeds
from shared.mixing import interpolate, style_mix_images, style_mixing_grid, write_video
from training.demo.evaluate import mixing_split

SEED0 = 7_300_000


def split_table(G, pairs: int) -> dict:
    return mixing_split(G, load_predictor(), pairs=pairs)


def crossover_rows(G, n: int, steps: int, noise_steps: int) -> list[dict]:
    perceptual = default_perceptual("cpu")
    rows = []
    for i in range(n):
        ws = ws_from_seeds(G, [SEED0 + 2 * i, SEED0 + 2 * i + 1])
        imgs = style_mix_images(G, ws, ws, list(range(G.num_ws)))
        for mask in ("left", "upper"):
            r = crossover(G, imgs[:1], imgs[1:], preset_mask(mask, G.img_resolution), steps=steps,
                          noise_steps=noise_steps, perceptual=perceptual, ws_a=ws[:1], ws_b=ws[1:], seed=i)
            rows.append({"pair": i, "mask": mask, **r.scores, "seconds": r.seconds})
            print(f"crossover {i + 1}/{n} {mask}: {r.scores} ({r.seconds:.1f} s)", flush=True)
    return rows


def timings(G, label: str) -> dict:
    ws = ws_from_seeds(G, list(range(12)))
    style_mixing_grid(G, ws[:1], ws[1:2], "coarse")  # warm-up
    t0 = time.perf_counter()
    style_mixing_grid(G, ws[:6], ws[6:], "coarse")
    grid = time.perf_counter() - t0
    t0 = time.perf_counter()
    frames = interpolate(G, ws[:3], space="w+", frames_per_segment=30)[:60]
    render = time.perf_counter() - t0
    with tempfile.TemporaryDirectory() as d:
        t0 = time.perf_counter()
        write_video(frames, Path(d) / "walk.mp4", fps=30)
        encode = time.perf_counter() - t0
    return {"model": label, "resolution": int(G.img_resolution), "grid_6x6_s": grid, "video_60_frames_s": render + encode,
            "video_render_s": render, "video_encode_s": encode}


def main(argv: list[str] | None = None) -> None:

    ap = argparse.ArgumentParser(prog="python -m benchmarks.mixing", description=__doc__.split("\n")[0])
    ap.add_argument("--pairs", type=int, default=200)
    ap.add_argument("--crossovers", type=int, default=6)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--noise-steps", type=int, default=100)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", type=Path, default=Path("benchmarks/results/mixing.json"))
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    G = load_generator(bundle_file("generator.safetensors")).eval()
    out: dict = {"threads": args.threads, "machine": platform.processor() or platform.machine(),
                 "torch": torch.__version__}

    split = split_table(G, args.pairs)
    out["split"] = split
    print(f"\nStyle-mixing split over {split['pairs']} pairs (factor follows B / A: pairs where the mix reads closer)")
    for name in ("coarse", "finer", "fine"):
        part = split[name]
        cells = ", ".join(f"{f} {'ok' if v['ok'] else 'MISS'} ({v['to_b']}/{v['to_a']})" for f, v in part["factors"].items())
        print(f"  B's {name:6s} rows {part['rows']}: {part['share']:.0%} as expected; {cells}")
    print(f"  share (coarse + finer) {split['share']:.1%} (target >= {split['target']:.0%})")

    rows = crossover_rows(G, args.crossovers, args.steps, args.noise_steps)
    mean = lambda k: statistics.fmean(r[k] for r in rows)  # noqa: E731
    out["crossover"] = {"rows": rows, "steps": args.steps, "noise_steps": args.noise_steps,
                        "mean": {k: mean(k) for k in ("psnr_a", "psnr_b", "seam_energy", "seam_energy_naive",
                                                       "seconds")},
                        "smoother_than_paste": sum(r["seam_energy"] < r["seam_energy_naive"] for r in rows) / len(rows)}
    m = out["crossover"]["mean"]
    print(f"\nCrossover ({len(rows)} runs, {args.steps} W+ + {args.noise_steps} noise steps): PSNR A {m['psnr_a']:.1f} dB, "
          f"B {m['psnr_b']:.1f} dB; seam energy {m['seam_energy']:.3f} vs naive {m['seam_energy_naive']:.3f} "
          f"(smoother in {out['crossover']['smoother_than_paste']:.0%}); {m['seconds']:.1f} s each")

    big = StyleGAN2Generator(StyleGAN2Config.rosinality(256)).init_random_(torch.Generator().manual_seed(0)).eval()
    out["timings"] = [timings(G, "demo-portraits-stylegan2-64"), timings(big, "StyleGAN2 config-f 256 px, random weights")]
    print(f"\n{'model':45s} {'px':>4s} {'6x6 grid s':>10s} {'60-frame video s':>16s}")
    for t in out["timings"]:
        print(f"{t['model']:45s} {t['resolution']:4d} {t['grid_6x6_s']:10.2f} {t['video_60_frames_s']:16.2f}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(out, indent=1))
    print(f"\nwritten {args.json}")


if __name__ == "__main__":
    main()
