"""Retrieve in Style: part-specific style channels, facial-feature and pose transfer, and
fine-grained retrieval (Chong, Chu, Kumar, Forsyth, "Retrieve in Style: Unsupervised Facial
Feature Transfer and Retrieval", ICCV 2021; mchong6/RetrieveInStyle).

What carries over from the official code (facts, re-implemented):
- Parts are masks on the generated image (the official catalogue: spherical k-means clusters named
  by hand; here the user's named clusters of an Editing in Style catalogue, or on the demo world
  the predictor's part map). Each style channel's contribution to a part is the share of the
  energy of the feature map it scales that lies inside the part, measured on the images at hand
  (the target and the reference), so no large batch and no per-image thresholds are needed.
- The coarse style layers (4 and 8 px: the official code's first 2,048 of 9,088 entries) belong
  to hair and pose only: every other part's contributions there are zeroed.
- Pose is the complement of hair on those coarse layers (1 - M_hair there, 0 elsewhere).
- Transfer replaces the part's share of the style by the reference's, rescaled to keep the
  target's norm on those channels (`add_direction`): s' = s - a q s + a |q s| (q r) / |q r|.
- Retrieval ranks a bank by the cosine similarity of the part's weighted styles.

Our reading where the official notebook is the only source (documented, measured in
`benchmarks/editing.py --only ris`): a channel belongs to the part where its energy is densest
(share inside divided by the part's area, argmax over the parts and the rest of the image), with
the weight of its share inside, scaled so the part's strongest channel has weight 1; retrieval compares styles centred on the generator's mean style.
StyleGAN2 only (it needs the S-space API).
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from shared.archs.stylegan2 import flat_to_styles, styles_to_flat
from shared.editing.local_style import part_maps, style_activations
from shared.errors import InputError
from shared.portraits import PART_NAMES

__all__ = ["COARSE_RESOLUTION", "RIS_PARTS", "catalogue_masks", "part_contributions", "part_query",
           "predictor_masks", "retrieve_part", "transfer"]

RIS_PARTS = ("eyes", "nose", "mouth", "hair", "pose")
COARSE_RESOLUTION = 8     # style layers at this resolution or coarser: hair and pose only
REST = "rest"             # everything outside the named parts (skin, background, ...)

# The demo world's part labels (shared.portraits.PART_NAMES) behind each named part.
DEMO_PARTS: dict[str, tuple[str, ...]] = {
    "eyes": ("eyes", "brows", "glasses"),
    "nose": ("nose",),
    "mouth": ("mouth", "beard"),
    "hair": ("hair",),
}


def _check(G: nn.Module) -> None:
    if getattr(G, "arch", None) != "stylegan2":
        raise InputError("Retrieve in Style needs a StyleGAN2 generator (the StyleGAN3 code has no S-space API).")


def _device(G: nn.Module) -> torch.device:
    return next(G.parameters()).device


def predictor_masks(G: nn.Module, ws: torch.Tensor, predictor) -> dict[str, torch.Tensor]:
    """Part masks [N, R, R] (bool, image resolution) of the demo world's named parts
    (`DEMO_PARTS`), read by the demo predictor from the generated images of ws."""
    with torch.no_grad():
        img = G.synthesis(torch.as_tensor(ws, dtype=torch.float32).to(_device(G)), noise_mode="const").float().cpu()
        small = img if img.shape[-1] == 64 else F.interpolate(img, size=(64, 64), mode="area")
        parts = predictor.predict(small.clamp(-1, 1)).parts.cpu()
    size = int(G.img_resolution)
    if parts.shape[-1] != size:
        parts = F.interpolate(parts[:, None].float(), size=(size, size), mode="nearest")[:, 0].long()
    out = {}
    for name, labels in DEMO_PARTS.items():
        m = torch.zeros_like(parts, dtype=torch.bool)
        for label in labels:
            m |= parts == PART_NAMES.index(label)
        out[name] = m
    return out


def catalogue_masks(G: nn.Module, catalog, ws: torch.Tensor, parts: Mapping[str, Sequence[int]]) -> dict[str, torch.Tensor]:
    """Part masks [N, R, R] from an Editing in Style catalogue: each named part is the union of
    the clusters the user gave it, e.g. {'hair': [2, 3], 'eyes': [7]}."""
    maps = part_maps(G, catalog, ws)
    out = {}
    for name, clusters in parts.items():
        if name not in DEMO_PARTS:
            raise InputError(f"Unknown part {name!r}; name clusters as {', '.join(DEMO_PARTS)}.")
        if not all(0 <= int(c) < catalog.k for c in clusters):
            raise InputError(f"Choose the clusters of '{name}' among 0 to {catalog.k - 1}.")
        m = torch.zeros_like(maps, dtype=torch.bool)
        for c in clusters:
            m |= maps == int(c)
        out[name] = m
    return out


@torch.no_grad()
def part_contributions(G: nn.Module, ws: torch.Tensor, masks: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Per named part (and `REST`, the pixels in none of them), the flat [S] share of every style
    channel's energy that falls inside the part (the input feature map the channel scales, squared,
    masks averaged down to each layer's resolution), averaged over the images of ws. For every
    channel the shares over the parts and the rest add to 1. Also returns '_area' entries: the
    parts' mean share of the image."""
    _check(G)
    if not masks:
        raise InputError("Name at least one part.")
    names = list(masks)
    m = torch.stack([torch.as_tensor(masks[n]).bool() for n in names], dim=1).float()     # [N, P, R, R]
    if m.shape[0] != ws.shape[0]:
        raise InputError("Give one mask per latent.")
    m = torch.cat([m, (1 - m.sum(1, keepdim=True)).clamp_min(0)], dim=1)                     # + rest
    feats, _ = style_activations(G, ws)
    shares = []
    for f in feats:
        mm = F.adaptive_avg_pool2d(m, f.shape[-2:]).double()                                 # [N, P+1, h, w]
        mm = mm / mm.sum(1, keepdim=True).clamp_min(1e-12)
        energy = f.double().square()
        inside = torch.einsum("nphw,nchw->npc", mm, energy)
        total = energy.sum(dim=(2, 3)).clamp_min(1e-12)[:, None, :]
        shares.append((inside / total).mean(0))                                              # [P+1, C_l]
    flat = torch.cat(shares, dim=1).float()
    area = m.mean(dim=(0, 2, 3))
    out = {n: flat[i] for i, n in enumerate(names + [REST])}
    out.update({f"_area_{n}": area[i] for i, n in enumerate(names + [REST])})
    return out


def part_query(G: nn.Module, contributions: Mapping[str, torch.Tensor], part: str) -> torch.Tensor:
    """The flat [S] weights q of a part's style channels (in [0, 1]): for 'pose' the complement of
    hair on the coarse layers; for a named part its share inside, on the channels whose energy is
    densest in that part, zero on the coarse layers unless the part is hair, divided by the largest."""
    _check(G)
    named = [n for n in contributions if not n.startswith("_") and n != REST]
    coarse = torch.cat([torch.full((layer.channels,), layer.resolution <= COARSE_RESOLUTION)
                        for layer in G.style_layers])
    if part == "pose":
        if "hair" not in contributions:
            raise InputError("Pose is what the coarse layers do besides hair: name the hair part first.")
        return (1 - contributions["hair"]).clamp(0, 1) * coarse
    if part not in named:
        raise InputError(f"Unknown part {part!r}; choose one of {', '.join(named + ['pose'])}.")
    order = named + [REST]
    share = torch.stack([contributions[n] for n in order])                                  # [P+1, S]
    area = torch.stack([contributions[f"_area_{n}"] for n in order]).clamp_min(1e-6)[:, None]
    owner = (share / area).argmax(0) == order.index(part)
    q = contributions[part] * owner
    if part != "hair":
        q = q * ~coarse
    top = float(q.max())
    return q / top if top > 0 else q


def _flat_styles(G: nn.Module, ws: torch.Tensor) -> torch.Tensor:
    return styles_to_flat(G.synthesis.styles(torch.as_tensor(ws, dtype=torch.float32).to(_device(G)))).float().cpu()


@torch.no_grad()
def transfer(G: nn.Module, ws_target: torch.Tensor, ws_reference: torch.Tensor, q: torch.Tensor, *,
             amount: float = 1.0, noise_mode: str = "const") -> torch.Tensor:
    """Take the part weighted by q from the reference: image [N, 3, R, R] in [-1, 1] (CPU).
    amount 0 keeps the target, 1 takes the reference's part (its direction, the target's norm)."""
    _check(G)
    if not 0 <= amount <= 2:
        raise InputError("The amount must be between 0 and 2.")
    if float(q.sum()) == 0:
        raise InputError("No style channel belongs to that part on these faces.")
    s, r = _flat_styles(G, ws_target), _flat_styles(G, ws_reference)
    qs, qr = q * s, q * r
    moved = qr / qr.norm(dim=1, keepdim=True).clamp_min(1e-8) * qs.norm(dim=1, keepdim=True)
    out = s - amount * qs + amount * moved
    styles = [x.to(_device(G)) for x in flat_to_styles(out, G.style_layers)]
    return G.synthesis.from_styles(styles, noise_mode=noise_mode).float().cpu().clamp(-1, 1)


@torch.no_grad()
def retrieve_part(G: nn.Module, query_ws: torch.Tensor, bank_ws: torch.Tensor, q: torch.Tensor,
                  mean_style: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Rank the bank by the part: cosine similarity of q * (s - mean style) between the query and
    each bank latent. mean_style [S] defaults to the styles of the generator's mean w. Returns
    (indices best first, similarities in that order)."""
    _check(G)
    if float(q.sum()) == 0:
        raise InputError("No style channel belongs to that part on this face.")
    if mean_style is None:
        w_avg = G.w_avg.detach().float().reshape(1, 1, -1).expand(1, G.num_ws, -1)
        mean_style = _flat_styles(G, w_avg)[0]
    sq = q * (_flat_styles(G, query_ws) - mean_style)
    sb = q * (_flat_styles(G, bank_ws) - mean_style)
    sim = F.cosine_similarity(sb, sq.expand_as(sb), dim=1)
    order = torch.argsort(sim, descending=True)
    return order, sim[order]
