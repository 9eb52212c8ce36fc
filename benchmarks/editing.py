"""Local-editing figures on the demo world, with the demo predictor as the judge (issue 7,
item 6). Not a test.

    python -m benchmarks.editing [--n 100] [--pairs 12] [--threads 2] [--json benchmarks/results/editing.json]
                                 [--only interfacegan,unsupervised,eis,styleflow,region,ris] [--region-n 10]

Sections run in this order (`--only` picks some; their results replace those keys of the JSON file
and every other key already there is kept):

1. `interfacegan`: InterFaceGAN directions of the demo bundle (`training.demo.edit_eval.direction_report`):
   for each direction, over n fresh latents edited by +-0.25 of the factor's range (or +-0.25 class
   probability), the share of edits that move the target the requested way (target >= 90 %), the
   mean target change and the mean change of the other continuous factors.
2. `unsupervised`: GANSpace and SeFa components (first 8) and the demo's named StyleSpace channels
   (`training.demo.edit_eval.labelled_edit_report`): each labelled by the factor it moves most, with
   its success rate, target change and other-factor change.
3. `eis`: Editing in Style (`shared.editing.local_style`): a catalogue of 8 parts on 64 samples; for each
   part, the share of the pixel change that lies inside the part when that part is taken from a
   reference, over `pairs` (target, reference) pairs, with the tab's defaults (rho 0.2, epsilon 3,
   layers from 16 px) (target >= 80 %). JSON key `editing_in_style`.
4. `styleflow`: the demo world's StyleFlow prior (`training.demo.train_flow.flow_edit_report`): for each
   conditioning attribute, over the same n fresh latents, continuous ones moved up and down by 0.25 of
   the factor's range, probabilities flipped to the other class; success (the predictor reads the
   attribute moving the requested way), mean target change, mean other-factor change (as in 1), with
   each attribute's own W+ rows (the tab's default) and with all rows.
5. `region`: StyleSpace region edits (the rule of `shared.editing.stylespace.region_channels`, the
   tab's "Find channels", with its defaults: strength 10 standard deviations, channels with >= 50 %
   of their change inside, ranked by the change inside): for each part preset
   (`shared.crossover.PART_PRESETS`, masks from the demo predictor) on `region_n` latents, the top
   channel's share of the squared pixel change inside the region (re-measured by editing), against
   the region's share of the image (what a change spread evenly would give), and the share of the
   top channel by change inside without the 50 % rule (where no channel passes it). The channel sweep is
   done once per latent for all parts; the first (latent, part) is checked against
   `region_channels` itself. JSON key `stylespace_region`.
6. `ris`: Retrieve in Style (`shared.editing.retrieve_style`, judged by `training.demo.ris_eval`): part
   masks from the demo predictor, contributions from each (target, reference) pair; over n pairs of
   fresh latents (seeds 7,600,000+), per part (eyes, nose, mouth, hair, pose) the share of the pixel
   change inside the part (target >= 80 %), the share of pairs whose part factors move toward the
   reference, the other factors' change; retrieval of 20 queries (seeds 7,800,000+) in a bank of
   200 (seeds 7,700,000+): the top-5's distance to the query in the part's factors over the bank's.
   JSON key `retrieve_in_style`.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from shared import load_generator
from shared.crossover import PART_PRESETS, predicted_part_mask
from shared.demo.attribute_channels import load_attribute_channels
from shared.demo.bundle import bundle_file, load_demo_directions
from shared.demo.flow import DEFAULT_PATH as FLOW_PATH
from shared.demo.flow import load_demo_flow
from shared.demo.predictor import load_predictor
from shared.editing.directions import ganspace, sefa
from shared.editing.local_style import build_catalog, locality, name_clusters, part_maps, transfer_part
from shared.editing.stylespace import edit_channels, region_channels, style_stats
from shared.errors import InputError
from shared.latents import ws_from_seeds
from shared.registry import DEFAULT_GENERATOR_ID
from training.demo.edit_eval import EDIT_EVAL_SEED, SUCCESS_TARGET, direction_report, labelled_edit_report
from training.demo.ris_eval import retrieval_report, transfer_report
from training.demo.train_flow import flow_edit_report

SECTIONS = ("interfacegan", "unsupervised", "eis", "styleflow", "region", "ris")


def _interfacegan(G, predictor, args) -> dict:
    t0 = time.time()
    dirs = direction_report(G, predictor, load_demo_directions(), n=args.n)
    met = [k for k, v in dirs.items() if v["success"] >= SUCCESS_TARGET]
    print(f"InterFaceGAN directions, {args.n} latents each ({time.time() - t0:.0f} s): "
          f"{len(met)}/{len(dirs)} meet {SUCCESS_TARGET:.0%}")
    print(f"{'direction':26s} {'success':>7s} {'target':>7s} {'others':>7s}")
    for k, v in dirs.items():
        print(f"{k:26s} {v['success']:7.2f} {v['target_change']:7.3f} {v['other_change']:7.3f}")
    return {"interfacegan": dirs}


def _unsupervised(G, predictor, args) -> dict:

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
    print(f"\nGANSpace (±2 σ), SeFa (±5), StyleSpace named channels (±{table['strength'] if table else '-'} σ), "
          f"labelled by the factor each moves most ({time.time() - t0:.0f} s)")
    print(f"{'edit':34s} {'factor':16s} {'success':>7s} {'target':>7s} {'others':>7s}")
    for k, v in unsup.items():
        print(f"{k:34s} {v['factor']:16s} {v['success']:7.2f} {v['target_change']:7.3f} {v['other_change']:7.3f}")
    return {"unsupervised": unsup}


def _eis(G, predictor, args) -> dict:
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
    print("\nEditing in Style (8 parts, rho 0.2, epsilon 3, layers >= 16 px): share of the change inside the part")
    for k, r in rows.items():
        loc = "no channel selected" if r["locality"] is None else f"{r['locality']:.0%}"
        print(f"  part {k} {r['name']:18s} {loc}")
    return {"editing_in_style": rows}


def _styleflow(G, predictor, args) -> dict:
    model = load_demo_flow()
    out = {"flow": str(FLOW_PATH.name), "n": args.n, "change": 0.25,
           "rule": "continuous: +-0.25 x the factor's range; probabilities: flipped to the other class"}
    for rows in ("attribute", "all"):
        t0 = time.time()
        rep = flow_edit_report(G, predictor, model, n=args.n, rows=rows)
        out["attribute_rows" if rows == "attribute" else "all_rows"] = rep
        out[f"seconds_{rows}"] = round(time.time() - t0, 1)
        print(f"\nStyleFlow (demo flow), {args.n} latents, rows: {rows} ({time.time() - t0:.0f} s)")
        print(f"{'attribute':16s} {'rows':10s} {'edits':>5s} {'success':>7s} {'target':>7s} {'others':>7s}")
        for k, v in rep.items():
            r = "all" if v["rows"] is None or len(v["rows"]) == G.num_ws else \
                f"{v['rows'][0]}-{v['rows'][-1]}"
            print(f"{k:16s} {r:10s} {v['edits']:5d} {v['success']:7.2f} {v['target_change']:7.3f} "
                  f"{v['other_change']:7.3f}")
    return {"styleflow": out}


@torch.no_grad()
def _channel_sweep(G, w: torch.Tensor, stats, strength: float, batch: int = 64) -> tuple[list, torch.Tensor]:
    """Every non-toRGB style channel of one latent moved by `strength` std, as `region_channels`
    does: ((layer, channel) list, squared pixel change per channel [J, R, R]). Computed once per
    latent and shared by all part masks (the library function sweeps once per region)."""
    styles = G.synthesis.styles(w)
    base = G.synthesis.from_styles(styles, noise_mode="const").float().cpu().clamp(-1, 1)
    jobs = [(lay.index, c) for lay in G.style_layers if not lay.is_torgb for c in range(lay.channels)]
    maps = []
    for start in range(0, len(jobs), batch):
        chunk = jobs[start:start + batch]
        edited = [x.repeat(len(chunk), 1) for x in styles]
        for i, (layer, channel) in enumerate(chunk):
            edited[layer][i, channel] += strength * float(stats.std[layer][channel])
        img = G.synthesis.from_styles(edited, noise_mode="const").float().cpu().clamp(-1, 1)
        maps.append((img - base).square().sum(1))
    return jobs, torch.cat(maps)


def _top_channel(jobs: list, change: torch.Tensor, mask: torch.Tensor, min_inside: float):
    """`region_channels`' rule: channels with >= min_inside of their change inside, ranked by the
    change energy inside. Returns ((layer, channel), inside share) or None."""
    inside = (change * mask).flatten(1).sum(1)
    share = inside / change.flatten(1).sum(1).clamp_min(1e-12)
    energy = torch.where(share >= min_inside, inside / mask.sum(), torch.full_like(inside, -1.0))
    j = int(energy.argmax())
    return (jobs[j], float(share[j])) if energy[j] >= 0 else None


def _region(G, predictor, args) -> dict:
    stats = style_stats(G, key=DEFAULT_GENERATOR_ID)
    ws = G.mapping(torch.randn([args.region_n, G.z_dim], generator=torch.Generator().manual_seed(EDIT_EVAL_SEED)))
    strength, min_inside = 10.0, 0.5
    out = {"n": args.region_n, "strength": strength, "min_inside": min_inside, "seed": EDIT_EVAL_SEED, "parts": {}}
    rows = {part: {"shares": [], "areas": [], "any": [], "no_part": 0, "no_channel": 0} for part in PART_PRESETS}
    t0 = time.time()
    for i in range(args.region_n):
        w = ws[i:i + 1]
        with torch.no_grad():
            img = G.synthesis(w, noise_mode="const").float().clamp(-1, 1)
        jobs, change = _channel_sweep(G, w, stats, strength)
        for part in PART_PRESETS:
            r = rows[part]
            try:
                region = predicted_part_mask(img, part, int(G.img_resolution))[0, 0]
            except InputError:  # the predictor finds no such part in this face
                r["no_part"] += 1
                continue
            r["any"].append(_top_channel(jobs, change, region, 0.0)[1])  # no threshold: top by energy inside
            top = _top_channel(jobs, change, region, min_inside)
            if top is None:
                r["no_channel"] += 1
                continue
            if i == 0 and part == "hair":  # the sweep picks what the tab's function picks
                lib = region_channels(G, w, region, stats, strength=strength, top=1, min_inside=min_inside)
                assert (lib[0].layer, lib[0].channel) == top[0], (lib[0], top)
            edited, _ = edit_channels(G, w, [(top[0][0], top[0][1], strength)], stats)
            diff = (edited - img).square().sum(1)[0]
            r["shares"].append(float((diff * region).sum() / diff.sum().clamp_min(1e-12)))
            r["areas"].append(float(region.mean()))
    print(f"\nStyleSpace region edits: top channel per part (strength {strength:g} σ), {args.region_n} latents "
          f"({time.time() - t0:.0f} s); 'any': the top channel by change inside without the 50 % rule")
    print(f"{'part':12s} {'found':>5s} {'inside':>7s} {'min':>6s} {'area':>6s} {'any':>6s}")
    for part, r in rows.items():
        sh = r["shares"]
        out["parts"][part] = {"found": len(sh), "no_part": r["no_part"], "no_channel": r["no_channel"],
                              "inside": statistics.fmean(sh) if sh else None, "inside_min": min(sh) if sh else None,
                              "area": statistics.fmean(r["areas"]) if sh else None,
                              "inside_without_threshold": statistics.fmean(r["any"]) if r["any"] else None}
        q = out["parts"][part]
        print(f"{part:12s} {q['found']:5d} " + (f"{q['inside']:7.0%} {q['inside_min']:6.0%} {q['area']:6.0%}"
                                                 if sh else "      -      -      -")
              + (f" {q['inside_without_threshold']:6.0%}" if r["any"] else "      -"))
    out["seconds"] = round(time.time() - t0, 1)
    return {"stylespace_region": out}


def _ris(G, predictor, args) -> dict:
    t0 = time.time()
    ws = ws_from_seeds(G, list(range(7_600_000, 7_600_000 + 2 * args.n)))
    transfer = transfer_report(G, predictor, ws[:args.n], ws[args.n:])
    seconds_transfer = round(time.time() - t0, 1)
    t0 = time.time()
    bank = ws_from_seeds(G, list(range(7_700_000, 7_700_200)))
    queries = ws_from_seeds(G, list(range(7_800_000, 7_800_020)))
    retrieval = retrieval_report(G, predictor, queries, bank, top=5)
    print(f"\nRetrieve in Style, {args.n} pairs ({seconds_transfer:.0f} s): part, locality, success, judged, "
          f"others, channels")
    for part, r in transfer.items():
        loc = "-" if r["locality"] is None else f"{r['locality']:.0%}"
        ok = "-" if r["success"] is None else f"{r['success']:.2f}"
        print(f"  {part:6s} {loc:>5s} {ok:>5s} {r['judged']:4d} {r['other_change'] or 0:.3f} {r['channels']:.0f}")
    print(f"retrieval, 20 queries in a bank of 200 ({time.time() - t0:.0f} s): top-5 distance / bank distance")
    for part, r in retrieval.items():
        extra = f", same hair colour {r['same_colour_top']:.0%} vs {r['same_colour_bank']:.0%}" \
            if "same_colour_top" in r else ""
        ratio = f"{r['ratio']:.2f}" if "ratio" in r else "-"
        print(f"  {part:6s} {ratio}{extra}")
    return {"retrieve_in_style": {"n": args.n, "transfer": transfer, "seconds_transfer": seconds_transfer,
                                  "retrieval": retrieval, "seconds_retrieval": round(time.time() - t0, 1)}}


RUNNERS = {"interfacegan": _interfacegan, "unsupervised": _unsupervised, "eis": _eis, "styleflow": _styleflow,
           "region": _region, "ris": _ris}


def main(argv: list[str] | None = None) -> None:

    ap = argparse.ArgumentParser(prog="python -m benchmarks.editing", description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--pairs", type=int, default=12)
    ap.add_argument("--region-n", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated sections of {', '.join(SECTIONS)}")
    ap.add_argument("--json", type=Path, default=Path("benchmarks/results/editing.json"))
    args = ap.parse_args(argv)
    only = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = sorted(set(only) - set(SECTIONS))
    if unknown or not only:
        ap.error(f"unknown section(s) {unknown}; choose from {', '.join(SECTIONS)}")
    torch.set_num_threads(args.threads)
    G = load_generator(bundle_file("generator.safetensors")).eval()
    predictor = load_predictor()
    out: dict = json.loads(args.json.read_text()) if args.json.is_file() else {}
    out["threads"] = args.threads
    for name in SECTIONS:
        if name in only:
            out.update(RUNNERS[name](G, predictor, args))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(out, indent=1))
    print(f"\nwritten {args.json} (sections run: {', '.join(only)})")


if __name__ == "__main__":
    main()
