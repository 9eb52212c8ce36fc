"""Local-editing figures on the demo world, with the demo predictor as the judge (issue 7,
item 6). Not a test.

    python -m benchmarks.editing [--n 100] [--pairs 12] [--threads 2] [--json benchmarks/results/editing.json]

1. InterFaceGAN directions of the demo bundle (`shared.demo.edit_eval.direction_report`): for each
   direction, over n fresh latents edited by +-0.25 of the factor's range (or +-0.25 class
   probability), the share of edits that move the target the requested way (target >= 90 %), the
   mean target change and the mean change of the other continuous factors.
2. GANSpace and SeFa components (first 8) and the demo's named StyleSpace channels
   (`shared.demo.edit_eval.labelled_edit_report`): each labelled by the factor it moves most, with
   its success rate, target change and other-factor change.
3. Editing in Style (`shared.editing.local_style`): a catalogue of 8 parts on 64 samples; for each
   part, the share of the pixel change that lies inside the part when that part is taken from a
   reference, over `pairs` (target, reference) pairs, with the tab's defaults (rho 0.2, epsilon 3,
   layers from 16 px) (target >= 80 %).
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch


def main(argv: list[str] | None = None) -> None:
    from shared import load_generator
    from shared.demo.bundle import bundle_file, load_demo_directions
    from shared.demo.edit_eval import SUCCESS_TARGET, direction_report
    from shared.demo.predictor import DEFAULT_PATH, load_predictor
    from shared.editing.local_style import build_catalog, locality, name_clusters, part_maps, transfer_part
    from shared.mixing import ws_from_seeds

    ap = argparse.ArgumentParser(prog="python -m benchmarks.editing", description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--pairs", type=int, default=12)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", type=Path, default=Path("benchmarks/results/editing.json"))
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    G = load_generator(bundle_file("generator.safetensors")).eval()
    predictor = load_predictor(DEFAULT_PATH)
    out: dict = {"threads": args.threads}

    t0 = time.time()
    dirs = direction_report(G, predictor, load_demo_directions(), n=args.n)
    out["interfacegan"] = dirs
    met = [k for k, v in dirs.items() if v["success"] >= SUCCESS_TARGET]
    print(f"InterFaceGAN directions, {args.n} latents each ({time.time() - t0:.0f} s): "
          f"{len(met)}/{len(dirs)} meet {SUCCESS_TARGET:.0%}")
    print(f"{'direction':26s} {'success':>7s} {'target':>7s} {'others':>7s}")
    for k, v in dirs.items():
        print(f"{k:26s} {v['success']:7.2f} {v['target_change']:7.3f} {v['other_change']:7.3f}")

    from shared.demo.attribute_channels import load_attribute_channels
    from shared.demo.edit_eval import labelled_edit_report
    from shared.editing.directions import ganspace, sefa
    from shared.editing.stylespace import style_stats

    def w_edit(vec: torch.Tensor, strength: float):
        return lambda w, sign: G.synthesis(w + sign * strength * vec[None, None, :], noise_mode="const")

    gs, sf = ganspace(G, k=8), sefa(G, k=8)
    edits = {f"GANSpace {i}": w_edit(gs.vectors[i] * gs.scales[i], 2.0) for i in range(8)}
    edits.update({f"SeFa {i}": w_edit(sf.vectors[i], 5.0) for i in range(8)})
    table = load_attribute_channels()
    if table:
        stats = style_stats(G, samples=2000, seed=table["seed"] + 1)

        def s_edit(layer: int, channel: int, strength: float):
            def fn(w, sign):
                st = [x.clone() for x in G.synthesis.styles(w)]
                st[layer][:, channel] += sign * strength * float(stats.std[layer][channel])
                return G.synthesis.from_styles(st, noise_mode="const")
            return fn
        for factor, rows in table["factors"].items():
            for r in rows[:1]:
                edits[f"StyleSpace {factor} (L{r['layer']} c{r['channel']})"] = s_edit(r["layer"], r["channel"],
                                                                                      table["strength"])
    t0 = time.time()
    unsup = labelled_edit_report(G, predictor, edits, n=args.n)
    out["unsupervised"] = unsup
    print(f"\nGANSpace (±2 σ), SeFa (±5), StyleSpace named channels (±{table['strength'] if table else '-'} σ), "
          f"labelled by the factor each moves most ({time.time() - t0:.0f} s)")
    print(f"{'edit':34s} {'factor':16s} {'success':>7s} {'target':>7s} {'others':>7s}")
    for k, v in unsup.items():
        print(f"{k:34s} {v['factor']:16s} {v['success']:7.2f} {v['target_change']:7.3f} {v['other_change']:7.3f}")

    cat = build_catalog(G, k=8, samples=64)
    names = name_clusters(G, cat, predictor)
    ws = ws_from_seeds(G, list(range(2 * args.pairs)))
    maps = part_maps(G, cat, ws)
    with torch.no_grad():
        base = G.synthesis(ws, noise_mode="const").float().clamp(-1, 1)
    rows = {}
    for k in range(cat.k):
        shares = []
        for i in range(args.pairs):
            img, moved = transfer_part(G, cat, ws[i:i + 1], ws[args.pairs + i:args.pairs + i + 1], [k])
            if moved:
                shares.append(locality(base[i:i + 1], img, maps[i] == k))
        rows[k] = {"name": names[k], "locality": statistics.fmean(shares) if shares else None, "runs": len(shares)}
    out["editing_in_style"] = rows
    print("\nEditing in Style (8 parts, rho 0.2, epsilon 3, layers >= 16 px): share of the change inside the part")
    for k, r in rows.items():
        loc = "no channel selected" if r["locality"] is None else f"{r['locality']:.0%}"
        print(f"  part {k} {r['name']:18s} {loc}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(out, indent=1))
    print(f"\nwritten {args.json}")


if __name__ == "__main__":
    main()
