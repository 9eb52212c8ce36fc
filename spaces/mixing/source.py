"""The Mixing tab's generator picker and what its sections share: the chosen generator, latents
from seeds and session latents, row choices.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr
import numpy as np
import torch

from shared import hub
from shared.hub import HubError
from shared.latent_store import LatentStore
from shared.latents import layer_ranges, parse_seeds, resolve_rows, ws_from_seeds
from spaces.handlers import stylegan_generator, user_errors
from spaces.latents import TAB_LABELS
from spaces.model_picker import card_summary

TASK = "mixing"
TITLE = TAB_LABELS[TASK]
RANGE_CHOICES = [("Coarse (pose, face shape)", "coarse"), ("Middle (features, hair style)", "middle"),
                 ("Fine (colours, micro-structure)", "fine"), ("Custom rows", "custom")]
#: the grid's extra choice: each destination row its own band, as the StyleGAN paper's figure 3
PAPER_CHOICE = ("The StyleGAN paper's figure (grid rows: coarse ×3, middle ×2, fine)", "paper")


@dataclass(frozen=True)
class Source:
    """The components every section reads: generator, the session's store, the picked result
    (for "Send latent"), and the generator chosen when the page opens."""
    model: gr.Dropdown
    latents: gr.State
    pick: gr.State
    first: str | None


def generator(ctx: Any, model_id: str | None, progress: gr.Progress | None = None) -> tuple[Any, Any]:
    """(card, loaded StyleGAN generator) of `model_id`, or a `gr.Error`."""
    return stylegan_generator(ctx, model_id, "mixing", progress)


def on_model(ctx: Any, model_id: str | None) -> tuple[str, str]:
    """Model summary plus its layer ranges (when it can be loaded without a download)."""
    if not model_id:
        return card_summary(None), ""
    card = ctx.registry.get(model_id)
    try:
        local = card.builtin is not None or hub.cached_path(card) is not None
    except HubError as e:  # e.g. HUB_MODEL_PATH_<ID> names a missing file; a run reports it as an error
        return card_summary(card), f"Layer ranges appear once the model loads ({e})."
    if not local:
        return card_summary(card), "Layer ranges appear once the model is downloaded (Models tab) or first used."
    _, G = generator(ctx, model_id)
    return card_summary(card), ("Layer ranges of this model: " + " · ".join(f"**{r.label}**" for r in
                                                                           layer_ranges(G).values())
                                + f" (of {G.num_ws} rows).")


def latent_names(store: LatentStore | None, model_id: str | None) -> list[str]:
    return (store or LatentStore()).list(model_id)


def latest_name(store: LatentStore | None, model_id: str | None) -> list[str]:
    """The latent last sent to this tab, as a multiselect value (empty when it is of another model)."""
    latest = (store or LatentStore()).latest_for(TASK)
    return [latest[0]] if latest and latest[0] in latent_names(store, model_id) else []


def keys(G: Any, model_id: str, seeds: str | None, names: list[str] | str | None, store: LatentStore | None,
         psi: float, what: str, *, most: int) -> tuple[torch.Tensor, list[str]]:
    """W+ codes [N, num_ws, w_dim] of the chosen session latents, then the seeds; and labels."""
    names = [names] if isinstance(names, str) else list(names or [])
    store = store or LatentStore()
    ws, labels = [], []
    for name in names:
        try:
            entry = store.get(name)
        except KeyError as e:
            raise gr.Error(str(e.args[0])) from None
        if entry.model_id != model_id:
            raise gr.Error(f"Latent {name!r} belongs to {entry.model_id}, not {model_id}; pick that model or "
                           f"another latent.")
        ws.append(torch.from_numpy(np.array(entry.ws, dtype=np.float32)))
        labels.append(name)
    if seeds is not None and str(seeds).strip():
        with user_errors():
            seed_list = parse_seeds(seeds, max_count=most)
            ws.append(ws_from_seeds(G, seed_list, psi))
        labels += [f"seed {s}" for s in seed_list]
    if not ws:
        raise gr.Error(f"Give at least one {what}: seeds such as 1,2,3 or a latent of this session.")
    out = torch.cat(ws)
    if out.shape[0] > most:
        raise gr.Error(f"At most {most} {what}s fit; you gave {out.shape[0]}.")
    return out, labels


def rows(G: Any, choice: str | None, custom: str | None) -> tuple[int, ...]:
    if choice == "paper":
        raise gr.Error("The paper's layout gives each grid row its own band; use it with Make grid, or pick coarse, "
                       "middle, fine or custom rows for a single mix.")
    with user_errors():
        if choice == "custom":
            if not custom or not str(custom).strip():
                raise gr.Error("Write the custom rows, e.g. 0-3 or 4,5,6 (row numbers start at 0).")
            return resolve_rows(G, str(custom))
        return resolve_rows(G, choice or "coarse")


def rows_text(rows_: tuple[int, ...]) -> str:
    return ", ".join(map(str, rows_))
