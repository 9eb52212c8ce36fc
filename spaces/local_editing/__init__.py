"""Local editing tab: linear latent directions (InterFaceGAN, GANSpace, SeFa, direction files),
StyleSpace channel edits, Editing in Style, Retrieve in Style and StyleFlow, on seeds or on latents
the session sent here (inverted photos, mixes).

Layout and wiring only: the source picker (`source`) and one section per method module; the work
is `shared.editing`. Retrieve in Style takes its part masks from the Editing in Style catalogue's
named clusters or, on the demo model, the demo predictor; StyleFlow uses the demo world's own flow
on the demo model and the official `modellarge10k.pt` (record `styleflow-ffhq`) on StyleGAN2 FFHQ 1024.
"""
from __future__ import annotations

from functools import partial
from typing import Any

import gradio as gr

from shared.latent_store import LatentStore
from spaces.family import inbox_markdown
from spaces.latents import Pick, latent_update, send_pick, send_targets
from spaces.local_editing import directions, editing_in_style, retrieve_in_style, styleflow, stylespace
from spaces.local_editing.source import TASK, TITLE, build_source
from spaces.model_picker import card_summary

__all__ = ["build_tab"]

SEND_TARGETS = send_targets("text-editing", "mixing", "inversion", "local-editing")

INTRO = """### Local editing
Change one thing about a face and leave the rest alone. Pick a source (a seed, or a latent this
session sent here from Generate, Inversion or Mixing), then move it along a **linear direction**
(InterFaceGAN boundaries, GANSpace components, SeFa factors or a direction file), change
**StyleSpace** channels, take one part from a reference face (**Editing in Style**, **Retrieve in
Style**, which also finds faces with a similar part) or set attributes with **StyleFlow**."""

NOTES = """#### Notes
StyleFlow runs the demo world's own flow (trained by this project, `training/demo/train_flow.py`) on
the demo model and StyleFlow's official `modellarge10k.pt` on StyleGAN2 FFHQ 1024; other generators
have no flow. Retrieve in Style finds each part's channels on the two faces at hand; its part masks come
from the demo predictor on the demo model, and from the clusters you name in the Editing in Style catalogue
on any StyleGAN2."""


def _on_send(pick: Pick | None, target: str, store: LatentStore | None):
    return send_pick(pick, SEND_TARGETS, target, store, prefix="edit", tab=TITLE,
                     missing="Make a direction or StyleFlow edit first (StyleSpace edits live in S and cannot be "
                             "sent as W+).")


def build_tab(ctx: Any) -> None:
    with gr.Tab(TITLE, id=TASK):
        gr.Markdown(INTRO)
        source = build_source(ctx)
        with gr.Tabs():
            directions.build_section(ctx, source)
            stylespace.build_section(ctx, source)
            catalogue = editing_in_style.build_section(ctx, source)
            retrieve_in_style.build_section(ctx, source, catalogue)
            styleflow.build_section(ctx, source)
        gr.Markdown(NOTES)
        with gr.Row():
            target = gr.Radio([(label, key) for key, label in SEND_TARGETS], value="text-editing",
                              label="Send the last W+ edit (direction or StyleFlow) to")
            send = gr.Button("Send latent", elem_id="edit-send")
        sent = gr.Markdown()

    model, latents = source.model, source.latents
    model.change(lambda m: card_summary(ctx.registry.get(m) if m else None), model, source.about,
                 api_visibility="private", queue=False)
    for trigger in (latents.change, model.change):
        trigger(lambda s, m: latent_update(s, m, TASK), [latents, model], source.name, api_visibility="private",
                queue=False)
    latents.change(partial(inbox_markdown, TASK, TITLE), latents, source.inbox, api_visibility="private", queue=False)
    send.click(_on_send, [source.pick, target, latents], [latents, sent], api_name="send_edit_latent",
               api_description="Put the last W+ edit (direction or StyleFlow) into the session's latent store for "
                               "another tab ('text-editing', 'mixing', 'inversion', 'local-editing').")
