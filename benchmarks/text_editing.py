"""Text-editing figures of the demo world (issue 8, item 6). Not a test.

    python -m benchmarks.text_editing [--sources 50] [--alpha 2] [--beta 0.3] [--opt-steps 40]
                                      [--threads 1] [--json benchmarks/results/text_editing.json]

For the six prompts of `training.demo.text_eval.TEXT_TARGETS` (smile, glasses, red hair, blonde
hair, beard, turned left) and each StyleCLIP method, over `--sources` latents (seed 7,500,000+,
truncation 0.7): the share of sources whose named factor moves the requested way (the demo
predictor judges), the mean change of that factor and of the other continuous factors, and
the CPU time per edit. Global directions use the demo generator's relevance matrix (built and
cached first if missing; its build time is reported); the mapper runs where the demo bundle
ships one for the prompt; latent optimisation runs in W+ on all sources at once (its time per
edit is measured on single sources).
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch

from shared import hub, load_generator, registry
from shared.demo.predictor import load_predictor
from shared.styleclip import methods
from shared.styleclip.clip import clip_for
from shared.styleclip.mapper import demo_mappers, load_mapper
from shared.styleclip.prompts import templates_for
from training.demo.text_eval import TEXT_TARGETS, sources, text_edit_report

DEMO = "demo-portraits-stylegan2-64"
DEMO_CLIP = "demo-portraits-clip"
NEUTRAL = "a person"


def _timed(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _global_row(G, clip, assets, ws, base, target, args, templates, predictor) -> dict:
    res = methods.run_global(G, clip, assets, ws, NEUTRAL, target.prompt, alpha=args.alpha, beta=args.beta,
                             templates=templates)
    per_edit = _timed(lambda: methods.run_global(G, clip, assets, ws[:1], NEUTRAL, target.prompt, alpha=args.alpha,
                                                 beta=args.beta, templates=templates), 10)
    return {"prompt": target.prompt, "method": "global directions", "alpha": args.alpha, "beta": args.beta,
            "channels": res.facts["channels"], "ms_per_edit": per_edit * 1000,
            **text_edit_report(predictor, base, res.images, target)}


def _mapper_row(G, ws, base, target, mappers, predictor) -> dict:
    if target.prompt not in mappers:
        return {"prompt": target.prompt, "method": "latent mapper", "note": "no demo mapper for this prompt"}
    mapper, _ = load_mapper(mappers[target.prompt])
    res = methods.run_mapper(G, mapper, ws)
    per_edit = _timed(lambda: methods.run_mapper(G, mapper, ws[:1]), 10)
    return {"prompt": target.prompt, "method": "latent mapper", "strength": 0.1, "ms_per_edit": per_edit * 1000,
            **text_edit_report(predictor, base, res.images, target)}


def _optimize_row(G, clip, ws, base, target, args, templates, predictor) -> dict:
    """Latent optimisation: all sources at once for the figures, single sources for the time."""
    kw = dict(templates=templates, space="w+", steps=args.opt_steps, lr=args.opt_lr, l2_weight=args.opt_l2)
    res = methods.run_optimize(G, clip, ws, target.prompt, **kw)
    per_edit = _timed(lambda: methods.run_optimize(G, clip, ws[:1], target.prompt, **kw), 2)
    return {"prompt": target.prompt, "method": "latent optimisation", "space": "w+", "steps": args.opt_steps,
            "lr": args.opt_lr, "l2_weight": args.opt_l2, "ms_per_edit": per_edit * 1000,
            **text_edit_report(predictor, base, res.images, target)}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sources", type=int, default=50)
    # chosen on a separate tuning set (24 latents from seed 1,000; .notes sweep over beta 0.1-0.4, alpha 2-8)
    ap.add_argument("--alpha", type=float, default=2.0)
    ap.add_argument("--beta", type=float, default=0.3)
    ap.add_argument("--opt-steps", type=int, default=40)
    ap.add_argument("--opt-lr", type=float, default=0.05)
    ap.add_argument("--opt-l2", type=float, default=0.008)
    ap.add_argument("--methods", default="global,mapper,optimize",
                    help="comma-separated subset; rows of the other methods already in --json are kept")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--json", type=Path, default=Path("benchmarks/results/text_editing.json"))
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)

    G = load_generator(hub.fetch(registry.get(DEMO))).eval().requires_grad_(False)
    clip = clip_for(DEMO_CLIP)
    templates = templates_for(registry.get(DEMO_CLIP))
    predictor = load_predictor()
    ws = sources(G, args.sources)
    with torch.no_grad():
        base = G.synthesis(ws, noise_mode="const").float().clamp(-1, 1)

    t0 = time.perf_counter()
    assets = methods.global_assets(DEMO, G, clip, progress=lambda f, d: print(d, flush=True)
                                   if int(f * 1000) % 100 == 0 else None)
    relevance = {"seconds": assets.relevance.seconds, "source": assets.relevance.source,
                 "wall_s_this_run": time.perf_counter() - t0, "channels": int(assets.relevance.matrix.shape[0])}
    print(f"relevance matrix: {relevance}", flush=True)

    mappers = demo_mappers()
    wanted = set(args.methods.split(","))
    rows = []
    for target in TEXT_TARGETS:
        if "global" in wanted:
            rows.append(_global_row(G, clip, assets, ws, base, target, args, templates, predictor))
            print(rows[-1], flush=True)
        if "mapper" in wanted:
            rows.append(_mapper_row(G, ws, base, target, mappers, predictor))
            print(rows[-1], flush=True)
        if "optimize" in wanted:
            rows.append(_optimize_row(G, clip, ws, base, target, args, templates, predictor))
            print(rows[-1], flush=True)
    if args.json.is_file():                      # keep the other methods' rows from an earlier run
        done = {(r["prompt"], r["method"]) for r in rows}
        rows = [r for r in json.loads(args.json.read_text())["rows"] if (r["prompt"], r["method"]) not in done] + rows
    out = {"command": "python -m benchmarks.text_editing " + " ".join(argv or []),
           "machine": {"cpu": platform.processor() or platform.machine(), "threads": args.threads,
                       "torch": torch.__version__},
           "sources": args.sources, "neutral": NEUTRAL, "relevance": relevance, "rows": rows}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(out, indent=1) + "\n")
    print(f"\n{'prompt':28s} {'method':22s} {'success':>8s} {'target':>7s} {'other':>7s} {'ms/edit':>9s}")
    for r in rows:
        if "success" in r:
            print(f"{r['prompt']:28s} {r['method']:22s} {r['success']:8.2f} {r['target_change']:7.3f} "
                  f"{r['other_change']:7.3f} {r['ms_per_edit']:9.1f}")
        else:
            print(f"{r['prompt']:28s} {r['method']:22s} {r['note']}")


if __name__ == "__main__":
    main()
