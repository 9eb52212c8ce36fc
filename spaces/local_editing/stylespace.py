"""Local editing › StyleSpace channels (Wu et al., CVPR 2021): one channel over a strip of
strengths, the demo world's named sliders, and the search for the channels that act in a region.

Layout and wiring only; the work is `shared.editing.stylespace` (statistics, channel edits) and
`shared.editing.channel_edits` (strips, named edits with the predictor's reading, region search),
with region masks from `shared.masks`.
"""
from __future__ import annotations

import time
from functools import partial
from typing import Any

import gradio as gr
import torch

from shared.crossover import PART_PRESETS
from shared.demo.attribute_channels import load_attribute_channels
from shared.editing.channel_edits import channel_strip, edit_named_channels, search_region_channels
from shared.editing.edit_strengths import strength_ladder
from shared.editing.stylespace import channel_names, style_stats
from shared.images import to_uint8_hwc
from shared.latent_store import LatentStore
from shared.masks import region_mask
from spaces.handlers import gpu_handler, progress_callback, user_errors
from spaces.latents import source_latent
from spaces.local_editing.source import Source, generator, has_predictor, local_stylegan2, predictor, strip_outputs
from spaces.painter import painter_value, region_painter

API_STYLESPACE = ("Edit StyleSpace channels of a source (StyleGAN2): layer index, channel, strength in standard "
                  "deviations. Returns the strip over strengths, the edited image and a Markdown line.")
REGION_CHOICES = [(f"Part: {name} (demo predictor)", f"part:{name}") for name in PART_PRESETS] + \
    [("Drawn (paint on the source below)", "drawn")]


def _layer_choices(ctx: Any, model_id: str | None):
    G = local_stylegan2(ctx, model_id)
    if G is None:
        return gr.update(choices=[], value=None)
    names = [(label, str(i)) for label, i, _ in channel_names(G)]
    return gr.update(choices=names, value=names[min(3, len(names) - 1)][1] if names else None)


def _on_stylespace(ctx: Any, model_id: str, seed: str, name: str | None, layer: str | None, channel: float,
                   strength: float, store: LatentStore | None, progress: gr.Progress | None = None):
    card, G = generator(ctx, model_id, progress)
    if G.arch != "stylegan2":
        raise gr.Error("StyleSpace edits need a StyleGAN2 generator; the StyleGAN3 code has no S-space API.")
    ws, label = source_latent(G, card.id, seed, name, store)
    if layer is None or str(layer).strip() == "":
        raise gr.Error("Pick a style layer.")
    t0 = time.perf_counter()
    strengths = strength_ladder(strength)
    with user_errors():
        images = channel_strip(G, ws, int(layer), int(channel), strengths, style_stats(G, key=card.id))
    gallery, last = strip_outputs(images, strengths)
    info = (f"StyleSpace layer {int(layer)}, channel {int(channel)} on **{label}**; strengths "
            f"{strengths[0]:+.2g} to {strengths[-1]:+.2g} standard deviations · {time.perf_counter() - t0:.2f} s. "
            f"The edit lives in S (not W+), so it is not sent on as a latent.")
    return gallery, last, info


def _named_channel_choices(ctx: Any, model_id: str | None) -> list[tuple[str, str]]:
    """The demo world's attribute channels (shared/demo/stylespace_channels.json) as 'layer:channel'."""
    table = load_attribute_channels() if has_predictor(ctx, model_id) else None
    if not table:
        return []
    return [(f"{factor}: layer {r['layer']}, channel {r['channel']} ({r['effect']:+.2f} of its range per "
             f"+{table['strength']:g} σ, {r['purity']:.0%} of the change)", f"{r['layer']}:{r['channel']}")
            for factor, rows in table["factors"].items() for r in rows]


def _named_slider_spec() -> list[tuple[str, int, int, float, float]]:
    """(factor, layer, channel, effect per step, step) of the demo world's best channel per factor
    (shared/demo/stylespace_channels.json), one named slider each."""
    table = load_attribute_channels() or {"factors": {}, "strength": 1.0}
    return [(factor, rows[0]["layer"], rows[0]["channel"], rows[0]["effect"], float(table["strength"]))
            for factor, rows in table["factors"].items() if rows]


def _on_named_sliders(ctx: Any, model_id: str, seed: str, name: str | None, *rest: Any,
                      progress: gr.Progress | None = None):
    """Adapter: the named sliders (standard deviations per factor's channel) -> `edit_named_channels` ->
    original and edited, with the demo predictor's reading of each moved factor."""
    values, store = rest[:-1], rest[-1]
    spec = _named_slider_spec()
    if not has_predictor(ctx, model_id):
        raise gr.Error("The named channels were found on the demo model with its predictor: pick the demo model, "
                       "or use the single-channel edit above on another StyleGAN2.")
    if len(values) != len(spec):
        raise gr.Error(f"Give {len(spec)} slider values (one per named channel).")
    moved = [(f, layer, ch, float(v)) for (f, layer, ch, _, _), v in zip(spec, values) if float(v or 0) != 0]
    if not moved:
        raise gr.Error("Move at least one named slider away from 0.")
    card, G = generator(ctx, model_id, progress)
    ws, label = source_latent(G, card.id, seed, name, store)
    t0 = time.perf_counter()
    with user_errors():
        res = edit_named_channels(G, ws, [(layer, ch, v) for _, layer, ch, v in moved], style_stats(G, key=card.id),
                                  predictor(ctx, card.id))
    seconds = time.perf_counter() - t0
    read = res.reading
    rows = "\n".join(f"| {f} | {layer}:{ch} | {v:+.1f} σ | {float(read.factors[f][0]):.3g} | "
                     f"{float(read.factors[f][1]):.3g} |" for f, layer, ch, v in moved)
    info = (f"Named StyleSpace channels on **{label}** · {seconds:.2f} s. The demo predictor reads each moved factor "
            f"before and after:\n\n| factor | layer:channel | strength | before | after |\n|---|---|---|---|---|\n"
            f"{rows}\n\nThe edit lives in S (not W+), so it is not sent on as a latent.")
    u8 = to_uint8_hwc(res.images)
    return [(u8[0], f"original: {label}"), (u8[1], "edited")], info


def _on_named_channel(value: str | None):
    if not value:
        return gr.update(), gr.update()
    layer, channel = value.split(":")
    return gr.update(value=layer), int(channel)


def _on_painter(ctx: Any, model_id: str, seed: str, name: str | None, store: LatentStore | None):
    """Put the source image (enlarged) into the region painter."""
    card, G = generator(ctx, model_id)
    ws, _ = source_latent(G, card.id, seed, name, store)
    return painter_value(to_uint8_hwc(G.synthesis(ws, noise_mode="const").float().cpu())[0])


def _on_find_channels(ctx: Any, model_id: str, seed: str, name: str | None, region_choice: str, painter: Any,
                      strength: float, store: LatentStore | None, progress: gr.Progress | None = None):
    card, G = generator(ctx, model_id, progress)
    if G.arch != "stylegan2":
        raise gr.Error("StyleSpace needs a StyleGAN2 generator.")
    ws, label = source_latent(G, card.id, seed, name, store)
    layers = (painter or {}).get("layers") if isinstance(painter, dict) else None
    if region_choice == "drawn" and not layers:
        raise gr.Error("Click 'Load the source into the painter', paint the region, then search.")
    if region_choice != "drawn" and not (region_choice or "").startswith("part:"):
        raise gr.Error("Choose a region: a part or 'Drawn'.")
    t0 = time.perf_counter()
    with user_errors():
        res = search_region_channels(G, ws, partial(region_mask, region_choice, int(G.img_resolution), layers=layers),
                                     style_stats(G, key=card.id), strength=float(strength), top=8,
                                     progress=progress_callback(progress))
    found = res.found
    u8 = to_uint8_hwc(torch.cat([res.image, res.previews]))
    gallery = [(u8[0], f"source: {label}")] + [(u8[i + 1], f"layer {c.layer}, ch {c.channel}: {c.inside:.0%} inside")
                                               for i, c in enumerate(found)]
    rows = "\n".join(f"| {c.layer} | {c.channel} | {c.inside:.0%} | {c.energy:.3f} |" for c in found)
    info = (f"Top channels for the region on **{label}** ({float(res.region.mean()):.0%} of the image), each moved "
            f"{float(strength):+g} standard deviations · {time.perf_counter() - t0:.1f} s\n\n"
            f"| layer | channel | change inside | change energy inside |\n|---|---|---|---|\n{rows}")
    return gallery, info, gr.update(value=str(found[0].layer)), found[0].channel


def build_section(ctx: Any, source: Source) -> None:
    """The "StyleSpace channels" sub-tab: one channel, named sliders (demo model), region search."""
    layers0 = _layer_choices(ctx, source.first)
    spec = _named_slider_spec()
    with gr.Tab("StyleSpace channels", id="edit-stylespace"):
        with gr.Row():
            with gr.Column(min_width=280):
                layer = gr.Dropdown(layers0.get("choices", []), value=layers0.get("value"), label="Style layer",
                                    elem_id="edit-layer")
                channel = gr.Number(0, precision=0, label="Channel", minimum=0)
                named = gr.Dropdown(_named_channel_choices(ctx, source.first), value=None,
                                    label="Named channels (demo world, found with the predictor)",
                                    elem_id="edit-named-channel")
                strength = gr.Slider(-20, 20, value=10, step=0.5, label="Strength (standard deviations)")
                run = gr.Button("Edit channel", variant="primary", elem_id="edit-s-run")
            with gr.Column(min_width=320, scale=2):
                strip = gr.Gallery(label="Strip over strengths", format="png", columns=5,
                                   object_fit="contain", elem_id="edit-s-strip")
                edited = gr.Image(label="Edited (strongest +)", format="png", interactive=False, height=256,
                                  elem_classes=["pixel-view"])
                info = gr.Markdown(elem_id="edit-s-info")
        with gr.Group(visible=has_predictor(ctx, source.first)) as named_group:
            gr.Markdown("#### Named sliders (demo world)\nEach slider moves the channel the demo predictor "
                        "found most specific to that factor (StyleSpace, Wu et al., 2021, Sec. 5); several "
                        "can move at once.")
            with gr.Row():
                with gr.Column(min_width=280):
                    sliders = [gr.Slider(-20, 20, value=0, step=0.5, label=f"{f} (layer {layer_}, channel {ch})",
                                         info=f"{e:+.2f} of the {f} range per +{st:g} σ")
                               for f, layer_, ch, e, st in spec]
                    named_run = gr.Button("Apply named sliders", variant="primary", elem_id="edit-named-run")
                with gr.Column(min_width=320, scale=2):
                    named_gallery = gr.Gallery(label="Original and edited", format="png", columns=2,
                                               object_fit="contain", elem_id="edit-named-result")
                    named_info = gr.Markdown(elem_id="edit-named-info")
        gr.Markdown("#### Find the channels that control a region\nEvery channel is moved in turn; those "
                    "whose change falls mostly inside the region are listed with a preview (StyleSpace, "
                    "Wu et al., 2021). The best one fills the fields above.")
        with gr.Row():
            with gr.Column(min_width=280):
                region = gr.Dropdown(REGION_CHOICES, value="part:hair", label="Region", elem_id="edit-region")
                load_painter = gr.Button("Load the source into the painter", size="sm")
                painter = region_painter("Region painter (used with 'Drawn')")
                find = gr.Button("Find channels", variant="primary", elem_id="edit-find")
            with gr.Column(min_width=320, scale=2):
                found_gallery = gr.Gallery(label="Top channels (each moved alone)", format="png", columns=5,
                                           object_fit="contain", elem_id="edit-found")
                found_info = gr.Markdown(elem_id="edit-found-info")

    model, seed, name, latents = source.model, source.seed, source.name, source.latents
    model.change(partial(_layer_choices, ctx), model, layer, api_visibility="private")
    run.click(gpu_handler(_on_stylespace, ctx, 60), [model, seed, name, layer, channel, strength, latents],
              [strip, edited, info], api_name="edit_stylespace", api_description=API_STYLESPACE,
              concurrency_id="gpu")
    named.change(_on_named_channel, named, [layer, channel], api_visibility="private", queue=False)
    model.change(lambda m: gr.update(visible=has_predictor(ctx, m)), model, named_group, api_visibility="private",
                 queue=False)
    named_run.click(gpu_handler(_on_named_sliders, ctx, 60), [model, seed, name, *sliders, latents],
                    [named_gallery, named_info], api_name="edit_named_channels", concurrency_id="gpu",
                    api_description="StyleSpace named sliders (demo model): one value in standard deviations per "
                                    "named channel (shared/demo/stylespace_channels.json order). Returns "
                                    "[original, edited] and the predictor's reading of each moved factor.")
    model.change(lambda m: gr.update(choices=_named_channel_choices(ctx, m), value=None), model, named,
                 api_visibility="private", queue=False)
    load_painter.click(partial(_on_painter, ctx), [model, seed, name, latents], painter, api_visibility="private")
    find.click(gpu_handler(_on_find_channels, ctx, 120), [model, seed, name, region, painter, strength, latents],
               [found_gallery, found_info, layer, channel], api_name="find_channels", concurrency_id="gpu",
               api_description="StyleSpace: the style channels that act mostly inside a region of the source "
                               "('part:hair|face|eyes|mouth|background', from the demo predictor). Returns "
                               "previews, a table and the best channel's layer and number.")
