"""Text editing tab: StyleCLIP's three methods (Patashnik et al., ICCV 2021, orpatashnik/StyleCLIP):
global directions, the latent mapper and latent optimisation, on any StyleGAN generator of the
registry and any CLIP that open_clip builds, on seeds or on latents the session sent here.

Layout and wiring only: the source picker and one section per method module; the work is
`shared.styleclip` (methods, prompts, relevance matrices, mappers). "Compare" runs the three on
the same source and prompt with their wall times.
"""
from __future__ import annotations

from functools import partial
from typing import Any

import gradio as gr

from shared.latent_store import LatentStore
from spaces.family import inbox_markdown
from spaces.latents import Pick, latent_update, send_pick, send_targets
from spaces.model_picker import card_summary, default_model, generator_choices, picker_info
from spaces.text_editing import compare, global_directions, mapper, optimize
from spaces.text_editing.source import TASK, TITLE, Source, clip_choices, default_clip, on_model

__all__ = ["build_tab"]

SEND_TARGETS = send_targets("local-editing", "mixing", "inversion", "text-editing")

INTRO = """### Text editing
Describe the change and let CLIP steer the generator, with StyleCLIP's three methods: **global
directions** (a text direction mapped onto StyleSpace channels through a relevance matrix: fast,
with live α/β sliders), the **latent mapper** (a small network trained for one prompt), and
**latent optimisation** (CLIP loss plus distance to the source, in W, W+ or S: slow, but any
prompt). **Compare** runs all three on the same source and prompt and shows their wall times.
On the demo model the demo CLIP knows the demo world's words: smiling, glasses, hair colours
(black, brown, blonde, red, grey), beard, turned left/right."""


def _on_send(pick: Pick | None, target: str, store: LatentStore | None):
    return send_pick(pick, SEND_TARGETS, target, store, prefix="text", tab=TITLE,
                     missing="Make a mapper or W/W+ optimisation edit first: global-direction and S-space edits "
                             "live in StyleSpace and cannot be sent as a W+ latent.")


def _build_source(ctx: Any) -> tuple[Source, gr.Markdown, gr.Examples]:
    latents = ctx.latents if ctx.latents is not None else gr.State(LatentStore())
    choices = generator_choices(ctx, TASK)
    first = default_model(ctx, choices, getattr(ctx.registry, "DEFAULT_GENERATOR_ID", None))
    with gr.Row():
        with gr.Column(min_width=280):
            model = gr.Dropdown(choices, value=first, label="Generator", info=picker_info(ctx, choices),
                                elem_id="text-model")
            clips = clip_choices(ctx)
            clip = gr.Dropdown(clips, value=default_clip(ctx, first), label="CLIP", info=picker_info(ctx, clips),
                               elem_id="text-clip")
            about = gr.Markdown(card_summary(ctx.registry.get(first) if first else None))
        with gr.Column(min_width=280):
            seed = gr.Textbox("3", label="Source: seed", elem_id="text-seed")
            name = gr.Dropdown([], label="or a latent this session sent here (used when chosen)",
                               allow_custom_value=True, elem_id="text-latent")
            inbox = gr.Markdown(inbox_markdown(TASK, TITLE, None), elem_id="text-editing-inbox")
    with gr.Row():
        neutral = gr.Textbox("a person", label="Neutral prompt (what the face is now)", elem_id="text-neutral")
        target = gr.Textbox("a person wearing glasses", label="Target prompt (what it should become)",
                            elem_id="text-target")
    examples = gr.Examples([["a person", "a person wearing glasses"], ["a person", "a smiling person"],
                            ["a person", "a person with red hair"], ["a person", "a person with blonde hair"],
                            ["a person", "a person with a beard"], ["a person", "a person turned left"]],
                           inputs=[neutral, target], label="Demo-world prompts (run with global directions)",
                           example_labels=["→ wearing glasses", "→ smiling", "→ red hair", "→ blonde hair",
                                           "→ a beard", "→ turned left"],
                           api_visibility="private")
    latents.change(partial(inbox_markdown, TASK, TITLE), latents, inbox, api_visibility="private", queue=False)
    source = Source(model, clip, seed, name, neutral, target, latents, gr.State(None), first)
    return source, about, examples


def build_tab(ctx: Any) -> None:
    with gr.Tab(TITLE, id=TASK):
        gr.Markdown(INTRO)
        source, about, examples = _build_source(ctx)
        with gr.Tabs():
            g = global_directions.build_section(ctx, source, examples)
            m = mapper.build_section(ctx, source)
            o = optimize.build_section(ctx, source)
            compare.build_section(ctx, source, g, m, o)
        with gr.Row():
            send_to = gr.Dropdown([(label, key) for key, label in SEND_TARGETS], value="local-editing",
                                  label="Send the last mapper / W / W+ result to")
            send = gr.Button("Send")
            sent = gr.Markdown()

    model, latents = source.model, source.latents
    model.change(partial(on_model, ctx), [model, latents, source.target],
                 [about, source.clip, source.name, m.mapper, m.match],
                 api_visibility="private", queue=False)
    latents.change(lambda s, m_: latent_update(s, m_, TASK), [latents, model], source.name, api_visibility="private",
                   queue=False)
    send.click(_on_send, [source.pick, send_to, latents], [latents, sent], api_name="send_text_latent",
               api_description="Put the last mapper or W/W+ optimisation result into the session's latent store "
                               "for another tab ('local-editing', 'mixing', 'inversion', 'text-editing').")
