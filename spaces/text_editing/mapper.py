"""Text editing › Latent mapper (StyleCLIP, Patashnik et al., ICCV 2021, Sec. 5): a small network
trained for one prompt that maps a latent to its edit (demo mappers, registered StyleCLIP
mappers, or an upload).

Layout and wiring only; the work is `shared.styleclip.methods.run_mapper`.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any

import gradio as gr

from shared.latent_store import LatentStore
from shared.styleclip import methods
from spaces.handlers import gpu, user_errors
from spaces.text_editing.source import Source, mapper, mapper_choices, mapper_for_prompt, on_target, pair, pick, setup

API_MAPPER = ("StyleCLIP latent mapper: edit a source with a mapper ('demo:<prompt>' on the demo model, a registered "
              "mapper id, or an uploaded .pt/.safetensors) at a strength (0.1 = the paper's). Returns [source, "
              "edited] and a Markdown line.")


@dataclass(frozen=True)
class MapperKnobs:
    mapper: gr.Dropdown
    match: gr.Markdown       # which mapper matches the target prompt, or that none does
    file: gr.File
    strength: gr.Slider


def _on_mapper(ctx: Any, model_id: str, seed: str, name: str | None, choice: str | None, file: Any, strength: float,
               store: LatentStore | None, progress: gr.Progress | None = None):
    card, G, ws, label, *_ = setup(ctx, model_id, None, seed, name, store, progress, need_clip=False)
    net, what = mapper(ctx, choice, file, G)
    with user_errors():
        res = methods.run_mapper(G, net, ws, strength=float(strength))
    info = f"Latent mapper: {what} on **{label}**, strength {strength:g} · {res.seconds * 1000:.0f} ms"
    return (pair(G, ws, res.images, f"mapper × {strength:g} · {res.seconds * 1000:.0f} ms"), info,
            pick(card, res, label, what))


def build_section(ctx: Any, source: Source) -> MapperKnobs:
    """The "Latent mapper" sub-tab; its W+ result becomes the tab's pick."""
    first = mapper_choices(ctx, source.first)
    value, note = mapper_for_prompt(ctx, source.first, source.target.value)
    with gr.Tab("Latent mapper", id="text-mapper"):
        with gr.Row():
            with gr.Column(min_width=280):
                choice = gr.Dropdown(first, value=value, label="Mapper (trained for one prompt)",
                                     allow_custom_value=True, elem_id="text-mapper-pick")
                match = gr.Markdown(note, elem_id="text-mapper-match")
                file = gr.File(label="or upload a mapper (.pt from StyleCLIP, .safetensors from "
                                     "`python -m training.styleclip.train_mapper train`)",
                               file_types=[".pt", ".safetensors"])
                strength = gr.Slider(0, 0.5, value=0.1, step=0.01, label="Strength (0.1 = the paper's)")
                run = gr.Button("Edit with the mapper", variant="primary", elem_id="text-m-run")
            with gr.Column(min_width=320, scale=2):
                out = gr.Gallery(label="Source and edit", format="png", columns=2,
                                 object_fit="contain", elem_id="text-m-out")
                info = gr.Markdown(elem_id="text-m-info")

    @gpu(duration=60)
    def styleclip_mapper(model_id, seed_text, latent, choice_, file_, k, store, progress: gr.Progress = gr.Progress()):
        return _on_mapper(ctx, model_id, seed_text, latent, choice_, file_, k, store, progress=progress)

    source.target.change(partial(on_target, ctx), [source.model, source.target], [choice, match],
                         api_visibility="private", queue=False)
    run.click(styleclip_mapper, [source.model, source.seed, source.name, choice, file, strength, source.latents],
              [out, info, source.pick], api_name="styleclip_mapper", api_description=API_MAPPER, concurrency_id="gpu")
    return MapperKnobs(choice, match, file, strength)
