"""Inversion › latents out and in: send a result to another tab, download it as a .pt file
{'ws', 'model_id', 'method'}, or load such a file (validated against its model).

Adapters only; the work is `shared.inversion.compare` (latent files) and the session's `LatentStore`.
"""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import gradio as gr
import torch

from shared.images import to_uint8_hwc
from shared.inversion.compare import check_latent, load_latent_file, save_latent_file
from shared.latent_store import LatentEntry, LatentStore
from spaces.handlers import user_errors
from spaces.inversion.photo import generator
from spaces.inversion.runs import InversionSession
from spaces.latents import send_latent, send_targets

SEND_TARGETS = send_targets("mixing", "local-editing", "text-editing", "reposing")
API_SEND = ("Put the latent of one method of this session's last comparison into the session's latent store for "
            "a target tab ('mixing', 'local-editing', 'text-editing', 'reposing').")
API_DOWNLOAD = "Save the latent of one method of the last comparison as a .pt file {'ws', 'model_id', 'method'}."
API_UPLOAD = ("Load a .pt latent {'ws', 'model_id', 'method'} (validated against its model) into the session's "
              "latent store; returns a status line and the latent's image.")


def on_send(session: InversionSession | None, key: str | None, target: str, store: LatentStore | None):
    if target not in dict(SEND_TARGETS):
        raise gr.Error(f"Unknown target tab {target!r}; choose one of {', '.join(dict(SEND_TARGETS))}.")
    if session is None or not session.runs:
        raise gr.Error("Run an inversion first, then choose the result to send.")
    run = session.run(key)
    return send_latent(store, SEND_TARGETS, target, f"inverted · {run.label} · {session.model_id}", session.model_id,
                       run.ws, f"Inversion: {run.caption}")


def on_download(session: InversionSession | None, key: str | None) -> str:
    if session is None or not session.runs:
        raise gr.Error("Run an inversion first, then download its latent.")
    run = session.run(key)
    folder = Path(tempfile.mkdtemp(prefix="inversion-"))
    safe = run.key.replace("+", "plus")
    return str(save_latent_file(folder / f"latent-{session.model_id}-{safe}.pt", run.ws, session.model_id, run.key))


def on_upload(ctx: Any, file: Any, store: LatentStore | None):
    if file is None:
        raise gr.Error("Choose a .pt latent file to upload.")
    path = file if isinstance(file, str) else getattr(file, "name", None) or file.get("path")
    with user_errors():
        ws, model_id, method = load_latent_file(path)
        if model_id not in ctx.registry.ids():
            raise gr.Error(f"This latent belongs to {model_id!r}, which the hub does not know.")
        card, G = generator(ctx, model_id)
        check_latent(ws, G, model_id)
        with torch.no_grad():
            image = to_uint8_hwc(G.synthesis(ws.to(ctx.device), noise_mode="const"))[0]
    name = f"uploaded · {method} · {model_id}"
    store = (store or LatentStore()).put(name, LatentEntry(model_id, ws.numpy(), f"Upload: {Path(path).name}"),
                                         for_tab="inversion")
    return store, f"Loaded **{name}** ({list(ws.shape)}) into this session's latents.", image
