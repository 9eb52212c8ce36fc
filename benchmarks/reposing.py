"""Reposing figures on the demo world, the demo predictor as the judge (issue 18, item 6). Not a test.

    python -m benchmarks.reposing [--n 100] [--threads 2] [--json benchmarks/results/reposing.json]

For each Directions method of the Reposing tab (`shared.reposing`, the tab's defaults: coarse rows,
calibrated in degrees by the demo predictor on other latents than these) and n sources (seeds
9,100,000+, ψ 0.7): every source is asked for yaw -20, -10, +10, +20° and pitch -10, +10°; the
predictor reads the angles before and after. Reported per method and axis: the correlation of
requested and achieved change, their mean absolute difference (degrees), the share of edits that
turn the requested way, the mean change of the other continuous factors as a share of each
factor's range (identity and everything else should stay: target ≤ 0.05), and the time per edit.
The rig and Pose with Style join this table when they exist.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from shared import load_generator
from shared.demo.bundle import bundle_file, load_demo_directions
from shared.demo.predictor import load_predictor
from shared.editing.directions import ganspace, sefa
from shared.errors import InputError
from shared.latents import ws_from_seeds
from shared.portraits import FACTORS
from shared.reposing import (calibrate_basis, component_pose_basis, demo_pose_basis, label_pose_components,
                             predictor_pose_reader, repose_image)

SEED = 9_100_000
ASKS = {"yaw": (-20.0, -10.0, 10.0, 20.0), "pitch": (-10.0, 10.0)}
OTHERS = [f for f in FACTORS if f.kind == "continuous" and f.name not in ("yaw", "pitch")]


def _bases(G, predictor) -> dict:
    read = predictor_pose_reader(predictor)
    out = {}
    for name, build in (("fitted", lambda: demo_pose_basis(G, load_demo_directions())),
                        ("ganspace", lambda: _components(G, ganspace(G, k=16), read)),
                        ("sefa", lambda: _components(G, sefa(G, None, k=16), read))):
        try:
            basis, slopes, refused = calibrate_basis(G, build(), read)
        except InputError as e:
            out[name] = (None, str(e))
            continue
        out[name] = (basis, "; ".join(refused.values()))
    return out


def _components(G, comps, read):
    picks, _, _ = label_pose_components(G, comps, read)
    return component_pose_basis(G, comps, picks)


def _report(G, predictor, basis, n: int) -> dict:
    ws = ws_from_seeds(G, list(range(SEED, SEED + n)), 0.7)
    with torch.no_grad():
        before = predictor.predict(G.synthesis(ws, noise_mode="const")).factors
    rows = {}
    for axis, asks in ASKS.items():
        if axis not in basis.axes:
            rows[axis] = None
            continue
        req, got, others, seconds = [], [], [], []
        for ask in asks:
            t0 = time.perf_counter()
            img, _ = repose_image(G, ws, basis, {axis: ask})
            seconds.append((time.perf_counter() - t0) / n)
            with torch.no_grad():
                after = predictor.predict(img).factors
            got += (after[axis] - before[axis]).tolist()
            req += [ask] * n
            change = torch.stack([(after[f.name] - before[f.name]).abs() / (f.high - f.low) for f in OTHERS]).mean(0)
            others += change.tolist()
        r, g = torch.tensor(req), torch.tensor(got)
        corr = float(torch.corrcoef(torch.stack([r, g]))[0, 1])
        rows[axis] = {"correlation": corr, "mae_deg": float((g - r).abs().mean()),
                      "right_way": float(((g * r) > 0).float().mean()), "other_change": statistics.fmean(others),
                      "ms_per_edit": 1000 * statistics.fmean(seconds)}
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    G = load_generator(bundle_file("generator.safetensors")).eval()
    predictor = load_predictor().eval()
    results = {"n": args.n, "seed": SEED, "asks": ASKS, "methods": {}}
    print(f"Reposing on the demo world, {args.n} sources, coarse rows, calibrated in degrees")
    print(f"{'method':10s} {'axis':6s} {'corr':>6s} {'MAE °':>6s} {'right':>6s} {'others':>7s} {'ms':>6s}")
    for name, (basis, note) in _bases(G, predictor).items():
        if basis is None:
            print(f"{name:10s} not usable: {note}")
            results["methods"][name] = {"error": note}
            continue
        rows = _report(G, predictor, basis, args.n)
        results["methods"][name] = {"axes": rows, "note": note, "basis": basis.describe()}
        for axis, v in rows.items():
            if v is None:
                print(f"{name:10s} {axis:6s} left out: {note}")
                continue
            print(f"{name:10s} {axis:6s} {v['correlation']:6.3f} {v['mae_deg']:6.1f} {v['right_way']:6.2f} "
                  f"{v['other_change']:7.3f} {v['ms_per_edit']:6.1f}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
