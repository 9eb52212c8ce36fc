"""Generate tab: seeds -> images with any registry generator, and latents handed to other tabs.

Layout and wiring only (the hysts `app.py` pattern); the numeric work is
`shared.generation.generate_images`, after NVlabs/stylegan3 `gen_images.py`.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any

import gradio as gr
import numpy as np

from shared.generation import NOISE_MODES, generate_images
from shared.latents import parse_seeds
from shared.images import to_uint8_hwc
from shared.latent_store import LatentEntry, LatentStore
from spaces.examples import run_after_fill
from spaces.handlers import gpu, model_card, progress_callback, user_errors
from spaces.latents import send_targets
from spaces.model_picker import card_summary, default_model, model_choices, picker_info

TASK = "generation"
ARCHS = ("stylegan1", "stylegan2", "stylegan3")  # what generate_images drives; 3D-aware generators have their own tab
# (tab key, label) of the tabs a latent can be sent to; the key is also the latent store's.
SEND_TARGETS = send_targets("mixing", "local-editing", "text-editing", "inversion")

API_GENERATE = ("Generate one PNG per seed with a registry generator. Seeds: '0', '0-7', '1,5,9', 'random' or "
                "'random:N'. Cutoff 0 truncates every layer; the class label applies to conditional models, "
                "translate/rotate to StyleGAN3. Returns the images with 'seed N' captions, a timing line and "
                "the first seed. The session keeps the latents for the send_to_* endpoints.")
API_SEND = ("Put the W+ latent of one image from this session's last generate call (by seed) into the "
            "session's latent store for the {} tab. Returns a confirmation line.")

INTRO = """Pick a generator and some seeds. Each seed always gives the same image for the same
settings. Use **random** for a fresh seed (it is shown under the images), **0-7** for a range,
**1,5,9** for a list. Click an image to choose it, then send its latent to another tab."""


@dataclass(frozen=True, eq=False)
class GeneratedBatch:
    """What a session keeps of its last Generate call (small, CPU): enough to send a latent on."""
    model_id: str
    seeds: tuple[int, ...]
    ws: np.ndarray          # [N, num_ws, w_dim] float32
    settings: str           # e.g. "ψ 0.7, all layers, noise const"


# ---- adapters ----------------------------------------------------------------------------------
def _model_traits(ctx: Any, model_id: str) -> tuple[int, str]:
    """(c_dim, arch) of a model: from the loaded generator when cached, else from its card."""
    card = ctx.registry.get(model_id)
    if model_id in ctx.models.loaded_ids():
        G = ctx.models.generator(model_id)
        return int(G.c_dim), str(G.arch)
    return int((card.arch_config or {}).get("c_dim", 0) or 0), card.arch


def _on_model(ctx: Any, model_id: str | None):
    """A new model was picked: its summary, and the controls that apply to it, reset."""
    if not model_id:
        return (card_summary(None), gr.update(visible=False, value=None), gr.update(visible=False),
                0, 0, 0, gr.update(visible=True))
    c_dim, arch = _model_traits(ctx, model_id)
    sg3 = arch == "stylegan3"
    return (card_summary(ctx.registry.get(model_id)), _class_update(c_dim, 0 if c_dim else None),
            gr.update(visible=sg3), 0, 0, 0, gr.update(visible=not sg3))


def _on_model_loaded(ctx: Any, model_id: str | None, class_value: float | None):
    """After a Generate call: show the controls the loaded model needs (its card may not say)."""
    if not model_id or model_id not in ctx.models.loaded_ids():
        return gr.update(), gr.update(), gr.update()
    c_dim, arch = _model_traits(ctx, model_id)
    value = (0 if class_value is None else class_value) if c_dim else None
    return _class_update(c_dim, value), gr.update(visible=arch == "stylegan3"), gr.update(visible=arch != "stylegan3")


def _class_update(c_dim: int, value: float | None):
    return gr.update(visible=bool(c_dim), value=value,
                     label=f"Class label (0 to {c_dim - 1})" if c_dim else "Class label")


@gpu(duration=60)
def _on_generate(ctx: Any, model_id: str, seeds_text: str, psi: float, cutoff: float | None,
                 class_idx: float | None, translate_x: float, translate_y: float, rotate: float,
                 noise_mode: str, progress: gr.Progress = gr.Progress()):
    """UI values -> generate_images -> gallery items, a timing line, the session's batch."""
    card = model_card(ctx, model_id)
    if card.arch not in ARCHS:
        raise gr.Error(f"{card.id} is a {card.arch} model; Generate runs StyleGAN2 and StyleGAN3, "
                       f"use the 3D rendering tab for it.")
    with user_errors():
        seeds = parse_seeds(seeds_text, max_count=ctx.settings.max_images)
        G = ctx.models.generator(card.id, progress=progress_callback(progress))
        result = generate_images(
            G, seeds, truncation_psi=float(psi), truncation_cutoff=int(cutoff) if cutoff else None,
            class_idx=_class_label(G, class_idx), translate=(translate_x, translate_y),
            rotate=rotate, noise_mode=noise_mode, progress=progress_callback(progress))
    images = to_uint8_hwc(result.images)
    gallery = [(img, f"seed {seed}") for img, seed in zip(images, result.seeds)]
    layers = f"first {int(cutoff)} layers" if cutoff else "all layers"
    settings = f"ψ {float(psi):g} on {layers}, noise {noise_mode}"
    batch = GeneratedBatch(card.id, result.seeds, result.ws.numpy(), settings)
    device = "GPU" if ctx.device.type != "cpu" else "CPU"
    info = (f"**{len(seeds)} image(s)** from `{card.id}` in **{result.seconds:.2f} s** on {device} "
            f"({result.seconds / len(seeds):.2f} s per image) · seeds {', '.join(map(str, result.seeds))} · {settings}")
    if card.untrained:
        info += "\n\nThis model is **untrained** (random weights): the images are patterns, not faces."
    return gallery, info, batch, result.seeds[0]


def _class_label(G: Any, value: float | None) -> int | None:
    """The class field as generate_images wants it.

    A Gradio number field cannot be empty (it shows and sends 0), and it is hidden for
    unconditional models, so there 0 means "no label"; any other label still gets the library's
    error for an unconditional model.
    """
    if value is None or (not G.c_dim and int(value) == 0):
        return None
    return int(value)


def _on_select(batch: GeneratedBatch | None, evt: gr.SelectData):
    """Clicking an image in the gallery chooses its seed for sending."""
    if batch is None or evt.index is None:
        return gr.update()
    index = evt.index if isinstance(evt.index, int) else evt.index[0]
    return batch.seeds[index] if 0 <= index < len(batch.seeds) else gr.update()


def _on_send(target: str, target_label: str, batch: GeneratedBatch | None, seed: float | None,
             store: LatentStore | None):
    """Put the chosen image's W+ latent into the session's latent store for tab `target`."""
    if batch is None:
        raise gr.Error("Generate some images first, then choose one to send.")
    if seed is None:
        raise gr.Error("Choose the image to send: click it in the gallery or type its seed.")
    if int(seed) not in batch.seeds:
        shown = ", ".join(map(str, batch.seeds))
        raise gr.Error(f"Seed {int(seed)} is not among the images on screen ({shown}); pick one of those.")
    i = batch.seeds.index(int(seed))
    name = f"seed {batch.seeds[i]} · {batch.model_id} · {batch.settings.split(',')[0]}"
    entry = LatentEntry(model_id=batch.model_id, ws=batch.ws[i:i + 1],
                        source=f"Generate: {batch.model_id}, seed {batch.seeds[i]}, {batch.settings}")
    store = (store or LatentStore()).put(name, entry, for_tab=target)
    return store, f"Sent **{name}** to **{target_label}** ({len(store)} latent(s) in this session)."


# ---- layout ------------------------------------------------------------------------------------
def build_tab(ctx: Any) -> None:
    """The Generate tab; reads and writes the session's latent store `ctx.latents`."""
    latents = ctx.latents if ctx.latents is not None else gr.State(LatentStore())
    choices = [(label, i) for label, i in model_choices(ctx, TASK) if ctx.registry.get(i).arch in ARCHS]
    first = default_model(ctx, choices, getattr(ctx.registry, "DEFAULT_GENERATOR_ID", None))
    c_dim, arch = _model_traits(ctx, first) if first else (0, "stylegan2")
    first_card = ctx.registry.get(first) if first else None
    with gr.Tab("Generate", id="generate"):
        gr.Markdown(INTRO)
        with gr.Row():
            with gr.Column(scale=2, min_width=300):
                model = gr.Dropdown(choices, value=first, label="Model", info=picker_info(ctx, choices),
                                    elem_id="generate-model")
                about = gr.Markdown(card_summary(first_card))
                seeds = gr.Textbox("0-3", label="Seeds", info="0 · 0-7 · 1,5,9 · random · random:4",
                                   max_lines=1, elem_id="generate-seeds")
                psi = gr.Slider(-1.0, 2.0, value=0.7, step=0.05, label="Truncation ψ",
                                info="1 = none, 0 = the average image")
                cutoff = gr.Number(0, precision=0, label="Truncation cutoff",
                                   info="truncate only the first N ws layers; 0 = all layers")
                class_idx = gr.Number(0 if c_dim else None, precision=0, visible=bool(c_dim),
                                      label=f"Class label (0 to {c_dim - 1})" if c_dim else "Class label")
                with gr.Group(visible=arch == "stylegan3") as sg3_box:
                    translate_x = gr.Slider(-1.0, 1.0, value=0.0, step=0.01, label="Translate x (StyleGAN3)")
                    translate_y = gr.Slider(-1.0, 1.0, value=0.0, step=0.01, label="Translate y (StyleGAN3)")
                    rotate = gr.Slider(-180.0, 180.0, value=0.0, step=1.0, label="Rotate, degrees (StyleGAN3)")
                noise = gr.Radio(list(NOISE_MODES), value="const", label="Noise", visible=arch != "stylegan3",
                                 info="const = stored noise, random = drawn from the seed, none = off")
                run = gr.Button("Generate", variant="primary", elem_id="generate-run")
                demo_id = getattr(ctx.registry, "DEFAULT_GENERATOR_ID", None)
                examples = None
                if demo_id in [i for _, i in choices]:
                    examples = gr.Examples([[demo_id, "0-7", 0.7], [demo_id, "random:8", 1.0], [demo_id, "100-103", 0.5]],
                                inputs=[model, seeds, psi], label="Demo-world portraits",
                                example_labels=["8 faces, ψ 0.7", "8 random faces, no truncation",
                                                "4 faces near the average (ψ 0.5)"],
                                api_visibility="private", elem_id="generate-examples")
            with gr.Column(scale=3, min_width=320):
                gallery = gr.Gallery(label="Images", format="png", columns=4, object_fit="contain",
                                     elem_id="generate-gallery")
                info = gr.Markdown(elem_id="generate-info")
                with gr.Row():
                    pick = gr.Number(None, precision=0, label="Seed to send", min_width=120,
                                     info="click an image to choose it")
                    send_buttons = [gr.Button(f"Send to {label}", size="sm", min_width=100)
                                    for _, label in SEND_TARGETS]
                sent = gr.Markdown(elem_id="generate-sent")
        batch = gr.State(None)

        model.change(partial(_on_model, ctx), model,
                     [about, class_idx, sg3_box, translate_x, translate_y, rotate, noise],
                     api_visibility="private", queue=False)
        generate_inputs = [model, seeds, psi, cutoff, class_idx, translate_x, translate_y, rotate, noise]
        if examples is not None:
            run_after_fill(examples, partial(_on_generate, ctx), generate_inputs, [gallery, info, batch, pick],
                           concurrency_id="gpu", concurrency_limit=ctx.settings.gpu_concurrency)
        run.click(partial(_on_generate, ctx), generate_inputs,
                  [gallery, info, batch, pick], api_name="generate", api_description=API_GENERATE,
                  concurrency_id="gpu",
                  concurrency_limit=ctx.settings.gpu_concurrency,
                  ).then(partial(_on_model_loaded, ctx), [model, class_idx], [class_idx, sg3_box, noise],
                         api_visibility="private", queue=False)
        gallery.select(_on_select, batch, pick, api_visibility="private", queue=False)
        for button, (key, label) in zip(send_buttons, SEND_TARGETS):
            button.click(partial(_on_send, key, label), [batch, pick, latents], [latents, sent],
                         api_name=f"send_to_{key.replace('-', '_')}", api_description=API_SEND.format(label))
