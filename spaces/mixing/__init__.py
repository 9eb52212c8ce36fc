"""Mixing tab: style mixing (Karras et al., CVPR 2019), crossover and inpainting (Abdal et al.,
Image2StyleGAN++, CVPR 2020) and interpolation, on any StyleGAN2 / StyleGAN3 generator.

Layout and wiring only: the generator picker and one section per method module; the work is
`shared.mixing` and `shared.crossover`. Inputs are seeds or latents of the session's `LatentStore`
(inverted photos, generated images); per-session results live in `gr.State` (small CPU arrays)
and can be sent on to the other tabs.
"""
from __future__ import annotations

from functools import partial
from typing import Any

import gradio as gr

from shared.latent_store import LatentStore
from spaces.family import inbox_markdown
from spaces.latents import Pick, send_pick, send_targets
from spaces.mixing import crossover, interpolate, style_mixing
from spaces.mixing.source import TASK, TITLE, Source, on_model
from spaces.model_picker import card_summary, default_model, generator_choices, picker_info

__all__ = ["build_tab"]

SEND_TARGETS = send_targets("local-editing", "text-editing", "inversion", "mixing")

INTRO = """### Mixing
Combine latents: the **style-mixing grid** of the StyleGAN paper (the sources' coarse, middle or fine
styles copied into the destinations), **crossover** (A's masked region glued to B and made into one
coherent face by a masked Image2StyleGAN++ embedding) and **inpainting**, and **interpolation** videos.
Inputs are seeds, or latents this session sent here from Generate or Inversion."""


def _on_send(pick: Pick | None, target: str, store: LatentStore | None):
    return send_pick(pick, SEND_TARGETS, target, store, prefix="mix", tab=TITLE,
                     missing="Make a mix, a crossover or pick a grid cell first.")


def build_tab(ctx: Any) -> None:
    latents = ctx.latents if ctx.latents is not None else gr.State(LatentStore())
    choices = generator_choices(ctx, TASK)
    first = default_model(ctx, choices, getattr(ctx.registry, "DEFAULT_GENERATOR_ID", None))
    about0, ranges0 = on_model(ctx, first) if first else (card_summary(None), "")
    with gr.Tab(TITLE, id=TASK):
        gr.Markdown(INTRO)
        with gr.Row():
            model = gr.Dropdown(choices, value=first, label="Generator", info=picker_info(ctx, choices),
                                elem_id="mixing-model", scale=1)
            with gr.Column(scale=2):
                about = gr.Markdown(about0)
                ranges = gr.Markdown(ranges0, elem_id="mixing-ranges")
                inbox = gr.Markdown(inbox_markdown(TASK, TITLE, None), elem_id="mixing-inbox")
        source = Source(model, latents, gr.State(None), first)
        with gr.Tabs():
            style_mixing.build_section(ctx, source)
            crossover.build_section(ctx, source)
            interpolate.build_section(ctx, source)
        with gr.Row():
            target = gr.Radio([(label, key) for key, label in SEND_TARGETS], value="local-editing", label="Send the "
                              "picked mix / crossover result to")
            send = gr.Button("Send latent", elem_id="mixing-send")
        sent = gr.Markdown(elem_id="mixing-sent")

    model.change(partial(on_model, ctx), model, [about, ranges], api_visibility="private")
    latents.change(partial(inbox_markdown, TASK, TITLE), latents, inbox, api_visibility="private", queue=False)
    send.click(_on_send, [source.pick, target, latents], [latents, sent], api_name="send_mixing_latent",
               api_description="Put the picked mix or crossover result into the session's latent store for "
                               "another tab ('local-editing', 'text-editing', 'inversion', 'mixing').")
