"""Latents handed between tabs: the tab labels, each tab's send targets, the picked result and the
edit source (a seed, or a latent of the session's `LatentStore`).

One home for what every tab repeated: a tab's "Send latent" keeps its last W+ result as a
`shared.latent_store.LatentEntry` (generator id, W+ code, label in `source`) in a `gr.State`,
and puts it into the session's store for another tab with `send_pick`.
"""
from __future__ import annotations

from typing import Any

import gradio as gr
import numpy as np
import torch

from shared.latents import parse_seeds
from shared.latent_store import LatentEntry, LatentStore
from shared.latents import ws_from_seeds
from spaces.handlers import user_errors

__all__ = ["TAB_LABELS", "Pick", "latent_update", "send_latent", "send_pick", "send_targets", "source_latent"]

# tab id (for the tabs that receive latents also the latent store's key) -> the tab's label
TAB_LABELS = {"generate": "Generate", "inversion": "Inversion", "mixing": "Mixing", "local-editing": "Local editing",
              "reposing": "Reposing", "3d-rendering": "3D rendering", "text-editing": "Text editing",
              "models": "Models"}

# The result a tab can send on: generator id, W+ code [1, num_ws, w_dim] and its label (`source`).
Pick = LatentEntry


def send_targets(*keys: str) -> tuple[tuple[str, str], ...]:
    """(key, label) pairs of the tabs `keys`, in that order (a tab's "Send to" choices)."""
    return tuple((key, TAB_LABELS[key]) for key in keys)


def send_latent(store: LatentStore | None, targets: tuple[tuple[str, str], ...], target: str, name: str,
                model_id: str, ws: Any, source: str) -> tuple[LatentStore, str]:
    """Put a W+ latent into the session's `LatentStore` for tab `target` (one of `targets`:
    (key, label) pairs). Returns the new store and a confirmation line."""
    labels = dict(targets)
    if target not in labels:
        raise gr.Error(f"Unknown target tab {target!r}; choose one of {', '.join(labels)}.")
    name = name[:120]
    store = (store or LatentStore()).put(name, LatentEntry(model_id, ws, source), for_tab=target)
    return store, f"Sent **{name}** to **{labels[target]}** ({len(store)} latent(s) in this session)."


def send_pick(pick: Pick | None, targets: tuple[tuple[str, str], ...], target: str, store: LatentStore | None, *,
              prefix: str, tab: str, missing: str) -> tuple[LatentStore, str]:
    """`send_latent` for a tab's picked result: named '<prefix>: <label>', described '<tab>: <label>';
    `missing` is the sentence shown when there is nothing to send yet."""
    if pick is None and target in dict(targets):
        raise gr.Error(missing)
    if pick is None:
        return send_latent(store, targets, target, "", "", None, "")   # raises: unknown target tab
    return send_latent(store, targets, target, f"{prefix}: {pick.source}", pick.model_id, pick.ws,
                       f"{tab}: {pick.source}")


def latent_update(store: LatentStore | None, model_id: str | None, tab: str) -> Any:
    """A latent dropdown's choices: the session's latents of `model_id`, the one last sent to `tab` chosen."""
    store = store or LatentStore()
    names = store.list(model_id)
    latest = store.latest_for(tab)
    return gr.update(choices=names, value=latest[0] if latest and latest[0] in names else None)


def source_latent(G: Any, model_id: str, seed: str | None, name: str | None,
                  store: LatentStore | None) -> tuple[torch.Tensor, str]:
    """The edit source of a tab: the session latent `name` when one is chosen (it must belong to
    `model_id`), else the W+ latent of one seed. Returns (ws [1, num_ws, w_dim], a label)."""
    if name:
        try:
            entry = (store or LatentStore()).get(name)
        except KeyError as e:
            raise gr.Error(str(e.args[0])) from None
        if entry.model_id != model_id:
            raise gr.Error(f"Latent {name!r} belongs to {entry.model_id}, not {model_id}; pick that model.")
        return torch.from_numpy(np.array(entry.ws, dtype=np.float32)), name
    if seed is None or not str(seed).strip():
        raise gr.Error("Give a source: a seed such as 3, or one of this session's latents.")
    with user_errors():
        seeds = parse_seeds(str(seed), max_count=1)
        return ws_from_seeds(G, seeds), f"seed {seeds[0]}"
