"""Retrieve in Style judged on the demo world (issue 7, item 6): part transfer and part retrieval
(`shared.editing.retrieve_style`, Chong et al. 2021) with the demo predictor as the judge.

- Transfer: for each part, over (target, reference) pairs, the share of the squared pixel change
  inside the part (the union of its masks on target and reference), the share of pairs whose
  judged factors move toward the reference's (`JUDGE`; pairs where the two differ by at least 10 %
  of the factor's range, or, for hair, where colour or style classes differ: the reference's class
  gains probability), and the mean change of the other continuous factors (share of their range).
- Retrieval: for each part, queries ranked against a bank; the mean distance (share of range) of the
  judged factors between a query and its top k, against the mean over the whole bank (a ratio below
  1 means the part was retrieved); for hair the share of the top k with the query's hair colour
  against the bank's share.
"""
from __future__ import annotations

import statistics
from collections.abc import Callable

import torch

from shared.editing import retrieve_style as ris
from shared.editing.local_style import locality
from shared.portraits import FACTORS

__all__ = ["JUDGE", "retrieval_report", "transfer_report"]

# The demo factors each part should carry (nose has none: locality only).
JUDGE: dict[str, tuple[str, ...]] = {
    "eyes": ("eye_size", "brow_thickness"),
    "nose": (),
    "mouth": ("smile", "mouth_open"),
    "hair": ("hair_style", "hair_color"),
    "pose": ("yaw", "pitch"),
}
_SPEC = {s.name: s for s in FACTORS}
_CONTINUOUS = [s.name for s in FACTORS if s.kind == "continuous" and s.name != "background_hue"]


def _range(name: str) -> float:
    s = _SPEC[name]
    return float(s.high - s.low)


@torch.no_grad()
def transfer_report(G, predictor, ws_target: torch.Tensor, ws_reference: torch.Tensor, *,
                    parts=("eyes", "nose", "mouth", "hair", "pose"), amount: float = 1.0,
                    progress: Callable[[float, str], object] | None = None) -> dict:
    n = ws_target.shape[0]
    base = G.synthesis(torch.cat([ws_target, ws_reference]).to(next(G.parameters()).device),
                       noise_mode="const").float().cpu().clamp(-1, 1)
    read = predictor.predict(base)
    rows = {p: {"locality": [], "moved": [], "other": [], "channels": [], "skipped": 0} for p in parts}
    for i in range(n):
        pair = torch.stack([ws_target[i], ws_reference[i]])
        masks = ris.predictor_masks(G, pair, predictor)
        contrib = ris.part_contributions(G, pair, masks)
        for part in parts:
            q = ris.part_query(G, contrib, part)
            r = rows[part]
            if float(q.sum()) == 0:
                r["skipped"] += 1
                continue
            img = ris.transfer(G, pair[:1], pair[1:], q, amount=amount)
            r["channels"].append(int((q > 0).sum()))
            if part != "pose":
                r["locality"].append(locality(base[i:i + 1], img, masks[part][0] | masks[part][1]))
            got = predictor.predict(img)
            for f in JUDGE[part]:
                if _SPEC[f].kind == "continuous":
                    gap = float(read.factors[f][n + i] - read.factors[f][i])
                    if abs(gap) >= 0.1 * _range(f):
                        r["moved"].append(float(got.factors[f][0] - read.factors[f][i]) * gap > 0)
                else:
                    c = int(read.factors[f][n + i])
                    if c != int(read.factors[f][i]):
                        r["moved"].append(float(got.probs[f][0, c] - read.probs[f][i, c]) > 0)
            others = [f for f in _CONTINUOUS if f not in JUDGE[part]]
            r["other"].append(statistics.fmean(abs(float(got.factors[f][0] - read.factors[f][i])) / _range(f)
                                               for f in others))
        if progress is not None:
            progress((i + 1) / n, f"transfer pair {i + 1}/{n}")
    out = {}
    for part, r in rows.items():
        out[part] = {
            "pairs": n - r["skipped"],
            "locality": statistics.fmean(r["locality"]) if r["locality"] else None,
            "success": statistics.fmean(r["moved"]) if r["moved"] else None,
            "judged": len(r["moved"]),
            "other_change": statistics.fmean(r["other"]) if r["other"] else None,
            "channels": statistics.fmean(r["channels"]) if r["channels"] else 0,
        }
    return out


@torch.no_grad()
def retrieval_report(G, predictor, ws_queries: torch.Tensor, ws_bank: torch.Tensor, *, top: int = 5,
                     parts=("eyes", "mouth", "hair", "pose"),
                     progress: Callable[[float, str], object] | None = None) -> dict:
    dev = next(G.parameters()).device
    bank_read = predictor.predict(G.synthesis(ws_bank.to(dev), noise_mode="const").float().cpu().clamp(-1, 1))
    q_read = predictor.predict(G.synthesis(ws_queries.to(dev), noise_mode="const").float().cpu().clamp(-1, 1))
    rows = {p: {"top": [], "all": [], "same_top": [], "same_all": []} for p in parts}
    for i in range(ws_queries.shape[0]):
        query = ws_queries[i:i + 1]
        contrib = ris.part_contributions(G, query, ris.predictor_masks(G, query, predictor))
        for part in parts:
            q = ris.part_query(G, contrib, part)
            if float(q.sum()) == 0:
                continue
            order, _ = ris.retrieve_part(G, query, ws_bank, q)
            best = order[:top]
            cont = [f for f in JUDGE[part] if _SPEC[f].kind == "continuous"]
            if cont:
                dist = sum((bank_read.factors[f] - q_read.factors[f][i]).abs() / _range(f) for f in cont) / len(cont)
                rows[part]["top"].append(float(dist[best].mean()))
                rows[part]["all"].append(float(dist.mean()))
            if part == "hair":
                same = (bank_read.factors["hair_color"] == q_read.factors["hair_color"][i]).float()
                rows[part]["same_top"].append(float(same[best].mean()))
                rows[part]["same_all"].append(float(same.mean()))
        if progress is not None:
            progress((i + 1) / ws_queries.shape[0], f"query {i + 1}/{ws_queries.shape[0]}")
    out = {}
    for part, r in rows.items():
        row = {"queries": max(len(r["top"]), len(r["same_top"])), "top": top}
        if r["top"]:
            row["distance_top"] = statistics.fmean(r["top"])
            row["distance_bank"] = statistics.fmean(r["all"])
            row["ratio"] = row["distance_top"] / row["distance_bank"]
        if r["same_top"]:
            row["same_colour_top"] = statistics.fmean(r["same_top"])
            row["same_colour_bank"] = statistics.fmean(r["same_all"])
        out[part] = row
    return out
