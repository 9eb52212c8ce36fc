"""The Local editing tab's source picker (generator, seed or session latent) and what its method
sections share: the chosen generator, the demo-model test, strip outputs.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr
import torch

from shared import hub
from shared.images import to_uint8_hwc
from shared.latent_store import LatentStore
from spaces.family import inbox_markdown
from spaces.handlers import stylegan_generator, user_errors
from spaces.latents import TAB_LABELS
from spaces.model_picker import card_summary, default_model, generator_choices, picker_info

TASK = "local-editing"
TITLE = TAB_LABELS[TASK]


@dataclass(frozen=True)
class Source:
    """The components every section reads: generator, seed, session latent, the session's store,
    the last W+ edit (for "Send latent"), and the generator chosen when the page opens."""
    model: gr.Dropdown
    about: gr.Markdown
    seed: gr.Textbox
    name: gr.Dropdown
    inbox: gr.Markdown
    latents: gr.State
    pick: gr.State
    first: str | None


def build_source(ctx: Any) -> Source:
    """Generator dropdown, its summary, source seed, session latent and inbox (layout only)."""
    latents = ctx.latents if ctx.latents is not None else gr.State(LatentStore())
    choices = generator_choices(ctx, TASK)
    first = default_model(ctx, choices, getattr(ctx.registry, "DEFAULT_GENERATOR_ID", None))
    with gr.Row():
        with gr.Column(min_width=280):
            model = gr.Dropdown(choices, value=first, label="Generator", info=picker_info(ctx, choices),
                                elem_id="edit-model")
            about = gr.Markdown(card_summary(ctx.registry.get(first) if first else None))
        with gr.Column(min_width=280):
            seed = gr.Textbox("3", label="Source: seed", elem_id="edit-seed")
            name = gr.Dropdown([], label="or a latent this session sent here (used when chosen)",
                               allow_custom_value=True, elem_id="edit-latent")
            inbox = gr.Markdown(inbox_markdown(TASK, TITLE, None), elem_id="local-editing-inbox")
    return Source(model, about, seed, name, inbox, latents, gr.State(None), first)


def generator(ctx: Any, model_id: str | None, progress: gr.Progress | None = None) -> tuple[Any, Any]:
    """(card, loaded StyleGAN generator) of `model_id`, or a `gr.Error`."""
    return stylegan_generator(ctx, model_id, "editing", progress)


def local_stylegan2(ctx: Any, model_id: str | None) -> Any | None:
    """The loaded StyleGAN2 generator of `model_id` when it is here without a download, else None
    (what fills a section's choices when the model changes)."""
    if not model_id or ctx.registry.get(model_id).arch != "stylegan2":
        return None
    card = ctx.registry.get(model_id)
    if card.builtin is None and hub.cached_path(card) is None:
        return None
    return generator(ctx, model_id)[1]


def has_predictor(ctx: Any, model_id: str | None) -> bool:
    """Whether the registry pairs an attribute predictor with `model_id` (the demo world's generator)."""
    return ctx.registry.companion(model_id, "predictor") is not None


def predictor(ctx: Any, model_id: str | None) -> Any:
    """The attribute predictor made for `model_id`'s faces, from the model cache; a `gr.Error` when
    it has none (callers check `has_predictor` first and say what to do instead)."""
    predictor_id = ctx.registry.companion(model_id, "predictor")
    if predictor_id is None:
        raise gr.Error(f"{model_id} has no attribute predictor; pick the demo model.")
    with user_errors():  # on the CPU: its users read the images there
        return ctx.models.get(predictor_id, device="cpu")


def strip_outputs(images: torch.Tensor, strengths: list[float]) -> tuple[list[tuple[Any, str]], Any]:
    """A strip over strengths as gallery items captioned with the strength, and its last image."""
    u8 = to_uint8_hwc(images)
    return [(img, f"{s:+.2g}") for img, s in zip(u8, strengths)], u8[-1]
