"""The common frame of an application-family tab (Inversion, Mixing, ...): purpose, methods, models.

Until a family's methods land, its tab says what it is for, lists the methods it will offer
(marked as planned, nothing pretends to run), offers the registry's models for its task, and
shows which latents this session has sent to it from other tabs (the session's latent store).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any

import gradio as gr

from shared.latent_store import LatentStore
from spaces.model_picker import card_summary, default_model, model_choices, picker_info

__all__ = ["FamilySpec", "build_family_tab", "inbox_markdown"]


@dataclass(frozen=True)
class FamilySpec:
    """What a family tab is about."""
    key: str                                  # tab id, registry task tag and latent-store key
    title: str                                # tab label
    purpose: str                              # one paragraph, Markdown
    methods: tuple[tuple[str, str], ...]      # (method, what it does) the tab will offer
    receives_latents: bool = False            # Generate can send latents here


def inbox_markdown(key: str, title: str, store: LatentStore | None) -> str:
    """Which latents the session holds, and which one was last sent to this tab."""
    store = store or LatentStore()
    if not len(store):
        return f"No latent sent to {title} in this session yet: use **Send to {title}** in the Generate tab."
    latest = store.latest_for(key)
    head = (f"Latest sent here: **{latest[0]}** (W+ {latest[1].num_ws}×{latest[1].w_dim}, {latest[1].source})."
            if latest else f"Nothing was sent to {title} yet.")
    others = ", ".join(f"`{name}`" for name in store.list())
    return f"{head}\n\nLatents in this session: {others}"


def build_family_tab(ctx: Any, spec: FamilySpec) -> None:
    """Build one family tab from its spec (layout only; no method runs here yet)."""
    choices = model_choices(ctx, spec.key)
    first = default_model(ctx, choices)
    with gr.Tab(spec.title, id=spec.key):
        gr.Markdown(spec.purpose)
        methods = "\n".join(f"- **{name}**: {what}" for name, what in spec.methods)
        gr.Markdown(f"#### Methods this tab will offer\nPlanned; none of them runs yet.\n\n{methods}")
        with gr.Row():
            with gr.Column():
                picker = gr.Dropdown(choices, value=first, label="Model",
                                     info=picker_info(ctx, choices) if choices
                                     else f"no registry model is tagged '{spec.key}' yet",
                                     elem_id=f"{spec.key}-model")
                about = gr.Markdown(card_summary(ctx.registry.get(first) if first else None))
            if spec.receives_latents and ctx.latents is not None:
                with gr.Column():
                    inbox = gr.Markdown(inbox_markdown(spec.key, spec.title, None), elem_id=f"{spec.key}-inbox")
        picker.change(lambda model_id: card_summary(ctx.registry.get(model_id) if model_id else None),
                      picker, about, api_visibility="private", queue=False)
        if spec.receives_latents and ctx.latents is not None:
            ctx.latents.change(partial(inbox_markdown, spec.key, spec.title), ctx.latents, inbox,
                               api_visibility="private", queue=False)
