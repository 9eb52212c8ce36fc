"""One request of Editing in Style (Collins et al., CVPR 2020; IVRL/GANLocalEditing) or Retrieve in
Style (Chong et al., ICCV 2021; mchong6/RetrieveInStyle) end to end, as the app runs them: a part
catalogue with its preview, cluster names, a part transfer with its locality, and retrieval over a
bank of latents. The methods themselves are `shared.editing.local_style` and
`shared.editing.retrieve_style`; these functions add the renders and measures a report shows.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch
from torch import nn

from shared.editing.local_style import PartCatalog, cluster_overlay, locality, part_maps, transfer_part
from shared.editing.retrieve_style import part_contributions, part_query, retrieve_part
from shared.editing.retrieve_style import transfer as ris_transfer
from shared.errors import InputError
from shared.latents import ws_from_seeds

__all__ = ["PartTransfer", "Retrieval", "catalogue_preview", "rename_clusters", "retrieve_similar_part",
           "transfer_catalogue_part", "transfer_retrieved_part"]


@dataclass(frozen=True)
class PartTransfer:
    """A part taken from a reference: renders and what moved."""
    images: torch.Tensor        # [3, 3, H, W] target, reference, result; float32 in [-1, 1], CPU
    channels: int               # style channels that carry the part
    share: float | None         # share of the pixel change inside the part (None: not measured)


@dataclass(frozen=True)
class Retrieval:
    """The bank ranked by the similarity of one part to the query's."""
    images: torch.Tensor        # [1 + top, 3, H, W] query then the best faces; float32 in [-1, 1], CPU
    order: torch.Tensor         # [top] bank indices, best first
    similarity: torch.Tensor    # [top] cosine similarity of each shown face
    channels: int               # style channels that carry the part


def _render(G: nn.Module, ws: torch.Tensor) -> torch.Tensor:
    return G.synthesis(ws, noise_mode="const").float().cpu().clamp(-1, 1)


@torch.no_grad()
def catalogue_preview(G: nn.Module, catalog: PartCatalog, seeds: Sequence[int] = range(8)) -> np.ndarray:
    """The catalogue's part map drawn over the images of `seeds`: uint8 [N, H, W, 3]."""
    ws = ws_from_seeds(G, list(seeds))
    return cluster_overlay(G.synthesis(ws, noise_mode="const").float().cpu(), part_maps(G, catalog, ws))


def rename_clusters(catalog: PartCatalog, text: str | None) -> PartCatalog:
    """The catalogue with clusters named from text such as '2=hair, 5=eyes' (names cut to 40 characters)."""
    names = dict(catalog.names)
    for item in filter(None, (part.strip() for part in str(text or "").split(","))):
        key, sep, value = item.partition("=")
        if not sep or not key.strip().isdigit() or not value.strip():
            raise InputError(f"Write names as 'cluster=name' pairs separated by commas, e.g. '2=hair, 5=eyes' "
                             f"(could not read {item!r}).")
        if not 0 <= int(key) < catalog.k:
            raise InputError(f"Cluster {int(key)} does not exist; this catalogue has clusters 0 to {catalog.k - 1}.")
        names[int(key)] = value.strip()[:40]
    return replace(catalog, names=names)


@torch.no_grad()
def transfer_catalogue_part(G: nn.Module, catalog: PartCatalog, ws: torch.Tensor, ws_ref: torch.Tensor,
                            clusters: Sequence[int], *, rho: float, epsilon: float) -> PartTransfer:
    """Editing in Style: take the clusters' appearance from `ws_ref` into `ws` (both [1, num_ws, w_dim]),
    with the share of the pixel change that lies inside the clusters on the target."""
    if not clusters:
        raise InputError("Choose the part (one or more clusters) to take from the reference.")
    img, moved = transfer_part(G, catalog, ws, ws_ref, list(clusters), rho=rho, epsilon=epsilon)
    base, ref = _render(G, ws), _render(G, ws_ref)
    region = sum(part_maps(G, catalog, ws)[0] == k for k in clusters)
    return PartTransfer(torch.cat([base, ref, img]), int(moved), locality(base, img, region))


@torch.no_grad()
def transfer_retrieved_part(G: nn.Module, ws: torch.Tensor, ws_ref: torch.Tensor, masks: Mapping[str, torch.Tensor],
                            part: str, *, amount: float) -> PartTransfer:
    """Retrieve in Style: take `part` from `ws_ref` into `ws`; `masks` are the part masks of the pair
    [ws, ws_ref]. Pose acts on the whole face, so its locality is not measured."""
    pair = torch.cat([ws, ws_ref])
    q = part_query(G, part_contributions(G, pair, masks), part)
    img = ris_transfer(G, ws, ws_ref, q, amount=amount)
    base = _render(G, pair)
    share = None if part == "pose" else locality(base[:1], img, masks[part][0] | masks[part][1])
    return PartTransfer(torch.cat([base, img]), int((q > 0).sum()), share)


@torch.no_grad()
def retrieve_similar_part(G: nn.Module, ws: torch.Tensor, bank_ws: torch.Tensor, masks: Mapping[str, torch.Tensor],
                          part: str, *, top: int = 8) -> Retrieval:
    """Rank `bank_ws` [N, num_ws, w_dim] by the similarity of `part` to the query `ws`'s (`masks`: its part
    masks); renders the query and the best `top`."""
    q = part_query(G, part_contributions(G, ws, masks), part)
    order, sim = retrieve_part(G, ws, bank_ws, q)
    best = order[:top]
    return Retrieval(_render(G, torch.cat([ws, bank_ws[best]])), best, sim[:len(best)], int((q > 0).sum()))
