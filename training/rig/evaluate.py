"""Measuring a StyleRig RigNet (Tewari et al., CVPR 2020; run time: `shared.rig`): for each control,
requested vs achieved value on n sources, how much everything else moved, and the time per edit.

For control j, each source (w = G.mapping(z), z ~ N(0, I), seeded) gets a target for j drawn
uniformly over j's range while the other controls are asked to keep the source's reading (clamped to
their ranges, as the sliders are filled by `shared.rig.default_controls`); `shared.rig.rig_edit`
edits it and the estimator reads the edited image (constant noise). Reported per control:
- `correlation`: Pearson correlation of requested and achieved values of j; `mae`: their mean
  absolute difference in j's units;
- `other_controls`: mean over sources of the largest change of another control, as a share of its
  range; `other_factors`: the same over the estimator's other factors (a continuous factor's change
  of u, a categorical factor's largest change of a class probability; both shares of the range);
  `other_factors_mean`: the change averaged over the other factors instead of their largest;
- `cycle`: mean squared standardised distance (by the rig's W statistics) between w and the rig's
  edit back to the source's controls, rig(rig(w, t), s); `offset`: that of the edit itself, the
  scale it compares with (a back-edit that did nothing would have cycle = offset);
- `ms_rig`: milliseconds per `rig_edit` of one latent; `ms_edit`: the same plus rendering.
Targets the issue sets: correlation >= 0.95, other factors <= 0.05 of range, < 100 ms per edit.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from torch import Tensor, nn

from shared import load_generator
from shared.demo.predictor import DEFAULT_PATH, load_predictor
from shared.rig import RigNet, load_rig, rig_edit
from training.rig.estimator import Estimator, Reading, predictor_estimator

__all__ = ["EVAL_SEED", "evaluate_rig", "main"]

EVAL_SEED = 18_002


def _factor_changes(a: Reading, b: Reading) -> Tensor:
    """[N, K]: per other factor, the largest change of its columns between two readings (share of range)."""
    if not a.others:
        return torch.zeros(a.controls.shape[0], 1)
    return torch.stack([(a.others[k] - b.others[k]).abs().amax(1) for k in a.others], 1).cpu()


def _pearson(x: Tensor, y: Tensor) -> float:
    x, y = x - x.mean(), y - y.mean()
    return float((x * y).sum() / (x.norm() * y.norm()).clamp_min(1e-12))


@torch.no_grad()
def _time_edits(G: nn.Module, rig: RigNet, ws: Tensor, units: Tensor, reps: int) -> tuple[float, float]:
    rig_edit(rig, ws[:1], units[:1])                                  # warm-up
    t0 = time.perf_counter()
    for i in range(reps):
        rig_edit(rig, ws[i % len(ws):][:1], units[i % len(ws):][:1])
    t1 = time.perf_counter()
    for i in range(reps):
        G.synthesis(rig_edit(rig, ws[i % len(ws):][:1], units[i % len(ws):][:1]), noise_mode="const")
    t2 = time.perf_counter()
    return 1000 * (t1 - t0) / reps, 1000 * (t2 - t1) / reps


@torch.no_grad()
def evaluate_rig(G: nn.Module, rig: RigNet, estimator: Estimator, *, n: int = 100, seed: int = EVAL_SEED,
                 batch: int = 50, time_reps: int = 20) -> dict:
    """The figures above on n sources (seeded; G, rig and estimator on one device, eval mode).
    Returns {"controls": {name: {correlation, mae, mae_share, other_controls, other_factors,
    other_factors_mean, cycle, offset, unit}}, "ms_rig", "ms_edit", "worst": {correlation (min),
    other_factors (max), other_controls (max)}, "n", "seed"}."""
    cfg = rig.config
    dev = next(rig.parameters()).device
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(n, G.z_dim, generator=g)
    ws = torch.cat([G.mapping(z[i:i + batch].to(dev)) for i in range(0, n, batch)])
    src = [estimator(G.synthesis(ws[i:i + batch], noise_mode="const")) for i in range(0, n, batch)]
    src_u = torch.cat([r.controls for r in src]).clamp(-1, 1).cpu()    # [n, C] normalised
    span = torch.tensor([c.high - c.low for c in cfg.controls])
    src_units = torch.stack([c.denormalise(src_u[:, k]) for k, c in enumerate(cfg.controls)], 1)
    per = {}
    for j, c in enumerate(cfg.controls):
        want_u = src_u.clone()
        want_u[:, j] = torch.rand(n, generator=g) * 2 - 1
        units = torch.stack([cc.denormalise(want_u[:, k]) for k, cc in enumerate(cfg.controls)], 1)
        got_u, other_c, other_f, cycle, offset = [], [], [], [], []
        for i, r in zip(range(0, n, batch), src):
            edited = rig_edit(rig, ws[i:i + batch], units[i:i + batch])
            back = rig_edit(rig, edited, src_units[i:i + batch])
            cycle.append(((back - ws[i:i + batch]) / rig.w_std).square().mean((1, 2)).cpu())
            offset.append(((edited - ws[i:i + batch]) / rig.w_std).square().mean((1, 2)).cpu())
            read = estimator(G.synthesis(edited, noise_mode="const"))
            got_u.append(read.controls.cpu())
            other_f.append(_factor_changes(read, r))
        got_u = torch.cat(got_u)
        got = torch.stack([cc.denormalise(got_u[:, k]) for k, cc in enumerate(cfg.controls)], 1)
        delta = (got_u - src_u).abs() / 2                               # share of each control's range
        delta[:, j] = 0
        other_c.append(delta.amax(1))
        per[c.name] = {"correlation": _pearson(units[:, j], got[:, j]),
                       "mae": float((units[:, j] - got[:, j]).abs().mean()),
                       "mae_share": float((units[:, j] - got[:, j]).abs().mean() / span[j]),
                       "other_controls": float(torch.cat(other_c).mean()) if len(cfg.controls) > 1 else 0.0,
                       "other_factors": float(torch.cat(other_f).amax(1).mean()),
                       "other_factors_mean": float(torch.cat(other_f).mean()),
                       "cycle": float(torch.cat(cycle).mean()), "offset": float(torch.cat(offset).mean()),
                       "unit": c.unit}
    ms_rig, ms_edit = _time_edits(G, rig, ws, src_units, time_reps)
    worst = {"correlation": min(v["correlation"] for v in per.values()),
             "other_factors": max(v["other_factors"] for v in per.values()),
             "other_controls": max(v["other_controls"] for v in per.values())}
    return {"controls": per, "ms_rig": ms_rig, "ms_edit": ms_edit, "worst": worst, "n": n, "seed": seed}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m training.rig.evaluate", description=__doc__.split("\n")[0])
    ap.add_argument("--generator", type=Path, required=True)
    ap.add_argument("--rig", type=Path, required=True)
    ap.add_argument("--predictor", type=Path, default=DEFAULT_PATH)
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--seed", type=int, default=EVAL_SEED)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    G = load_generator(args.generator)
    rig = load_rig(args.rig)
    res = evaluate_rig(G, rig, predictor_estimator(load_predictor(args.predictor), rig.config), n=args.n,
                       seed=args.seed)
    print(json.dumps(res, indent=1), flush=True)


if __name__ == "__main__":
    main()
