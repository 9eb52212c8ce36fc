"""Reposing › Directions: yaw and pitch along pose directions in W (InterFaceGAN boundaries, GANSpace
and SeFa components) on the coarse rows, live sliders and a strip, and StyleGAN3's input transform.

Layout, wiring and adapters; the work is `shared.reposing`.
"""
from __future__ import annotations

from functools import partial
from typing import Any

import gradio as gr
import torch

from shared import hub
from shared.editing.directions import cached_ganspace, load_direction_file, sefa
from shared.images import to_uint8_hwc
from shared.latent_store import LatentStore
from shared.reposing import (POSE_ROWS, PoseBasis, calibrate_basis, component_pose_basis, demo_pose_basis,
                             file_pose_basis, label_pose_components, pose_strip, predictor_pose_reader, repose_image,
                             transform_image)
from spaces.handlers import gpu, progress_callback, stylegan_generator, user_errors
from spaces.latents import latent_update, source_latent
from spaces.model_picker import card_summary, default_model, generator_choices, picker_info

TASK = "reposing"
METHODS = [("Fitted pose directions (demo world)", "fitted"), ("InterFaceGAN pose file (FFHQ)", "file"),
           ("GANSpace components", "ganspace"), ("SeFa components", "sefa")]
ROWS = [("Coarse rows (identity kept)", "coarse"), ("All rows", "all")]
POSE_FILE_ID = "interfacegan-ffhq-pose"
COMPONENTS = 16
STRIP_STEPS = 7
API = ("Turn a face: (model, source seed text or session latent name, method 'fitted'|'file'|'ganspace'|'sefa', "
       "rows 'coarse'|'all', yaw, pitch, yaw component, pitch component) -> source image, reposed image, info line. "
       "Yaw and pitch are degrees where the method is calibrated (the demo world), else multiples of the direction.")


def build_section(ctx: Any) -> None:
    latents = ctx.latents if ctx.latents is not None else gr.State(LatentStore())
    choices = generator_choices(ctx, TASK)
    first = default_model(ctx, choices, getattr(ctx.registry, "DEFAULT_GENERATOR_ID", None))
    with gr.Tab("Directions", id="repose-directions"):
        with gr.Row():
            with gr.Column(min_width=280):
                model = gr.Dropdown(choices, value=first, label="Generator", elem_id="repose-model",
                                    info=picker_info(ctx, choices))
                about = gr.Markdown(card_summary(ctx.registry.get(first) if first else None))
            with gr.Column(min_width=280):
                seed = gr.Textbox("3", label="Source: seed", elem_id="repose-seed")
                name = gr.Dropdown([], label="or a latent of this session (used when chosen)",
                                   allow_custom_value=True, elem_id="repose-latent")
        with gr.Row():
            method = gr.Radio(METHODS, value=_default_method(ctx, first), label="Pose directions",
                              elem_id="repose-method")
            rows = gr.Radio(ROWS, value="coarse", label="Rows edited")
        with gr.Row():
            yaw = gr.Slider(-45, 45, value=20, step=1, label="Yaw", info="degrees on the demo world; positive turns "
                            "the face to the image right", elem_id="repose-yaw")
            pitch = gr.Slider(-30, 30, value=0, step=1, label="Pitch", info="degrees on the demo world; positive "
                              "looks up", elem_id="repose-pitch")
        with gr.Row():
            yaw_k = gr.Number(0, precision=0, label="Yaw component (GANSpace/SeFa without a pose reader)",
                              minimum=0, maximum=COMPONENTS - 1)
            pitch_k = gr.Number(1, precision=0, label="Pitch component", minimum=0, maximum=COMPONENTS - 1)
        with gr.Row():
            run = gr.Button("Repose", variant="primary", elem_id="repose-run")
            strip_btn = gr.Button("Yaw strip", elem_id="repose-strip-run")
        with gr.Row():
            before = gr.Image(label="Source", type="numpy", format="png", height=256, elem_id="repose-source",
                              min_width=240,
                              elem_classes=["pixel-view"])
            after = gr.Image(label="Reposed", type="numpy", format="png", height=256, elem_id="repose-result",
                             min_width=240,
                             elem_classes=["pixel-view"])
        strip = gr.Gallery(label="Yaw strip (± the yaw slider)", columns=STRIP_STEPS, height=200, format="png",
                           elem_id="repose-strip")
        info = gr.Markdown(elem_id="repose-info")
        with gr.Accordion("StyleGAN3 input transform (translate, rotate the canvas)", open=False):
            with gr.Row():
                tx = gr.Slider(-0.5, 0.5, value=0.1, step=0.01, label="Translate x (canvas widths)")
                ty = gr.Slider(-0.5, 0.5, value=0.0, step=0.01, label="Translate y")
                rot = gr.Slider(-180, 180, value=15, step=1, label="Rotate (°)")
            move = gr.Button("Transform", elem_id="repose-transform-run")
            moved = gr.Image(label="Transformed", type="numpy", format="png", height=256, elem_id="repose-transformed")

    @gpu(duration=120)
    def on_repose(m, s, n, me, r, y, p, yk, pk, store, progress: gr.Progress = gr.Progress()):
        return repose_action(ctx, m, s, n, me, r, y, p, yk, pk, store, progress)

    @gpu(duration=120)
    def on_strip(m, s, n, me, r, y, yk, pk, store, progress: gr.Progress = gr.Progress()):
        return strip_action(ctx, m, s, n, me, r, y, yk, pk, store, progress)

    @gpu(duration=60)
    def on_transform(m, s, n, x, yy, a, store, progress: gr.Progress = gr.Progress()):
        return transform_action(ctx, m, s, n, x, yy, a, store, progress)

    inputs = [model, seed, name, method, rows, yaw, pitch, yaw_k, pitch_k, latents]
    run.click(on_repose, inputs, [before, after, info], api_name="repose", concurrency_id="gpu",
              api_description=API)
    for slider in (yaw, pitch):
        slider.release(on_repose, inputs, [before, after, info], api_visibility="private", concurrency_id="gpu",
                       trigger_mode="always_last")
    strip_btn.click(on_strip, [model, seed, name, method, rows, yaw, yaw_k, pitch_k, latents], [strip, info],
                    api_name="repose_strip", concurrency_id="gpu",
                    api_description="A yaw strip: the same inputs as /repose without pitch; yaw sets the strip's "
                                    "half-range -> gallery captioned with each yaw, info line.")
    move.click(on_transform, [model, seed, name, tx, ty, rot, latents], [moved, info], api_name="repose_transform",
               concurrency_id="gpu",
               api_description="StyleGAN3 input transform: (model, seed text, session latent, translate x, "
                               "translate y, rotate°) -> image, info line.")
    model.change(partial(_on_model, ctx), [model, latents], [about, method, name], api_visibility="private",
                 queue=False)


def _default_method(ctx: Any, model_id: str | None) -> str:
    return "fitted" if ctx.registry.companion(model_id, "directions") else "ganspace"


def _on_model(ctx: Any, model_id: str | None, store: LatentStore | None):
    card = ctx.registry.get(model_id) if model_id else None
    return card_summary(card), _default_method(ctx, model_id), latent_update(store, model_id, TASK)


def _reader(ctx: Any, model_id: str):
    """The pose reader of the model's world (the demo predictor), or None where there is none."""
    predictor_id = ctx.registry.companion(model_id, "predictor")
    if predictor_id is None:
        return None
    with user_errors():
        return predictor_pose_reader(ctx.models.get(predictor_id, device="cpu"))


def _component_number(value: Any, what: str) -> int:
    try:
        k = int(value)
    except (TypeError, ValueError):
        raise gr.Error(f"The {what} component must be a whole number from 0 to {COMPONENTS - 1}.") from None
    if not 0 <= k < COMPONENTS:
        raise gr.Error(f"The {what} component must be from 0 to {COMPONENTS - 1}.")
    return k


def _basis(ctx: Any, card: Any, G: Any, method: str, rows: str, yaw_k: Any, pitch_k: Any,
           progress: gr.Progress | None) -> tuple[PoseBasis, str]:
    """The pose basis of the chosen method (calibrated in degrees where a pose reader exists,
    cached per model and settings) and a note for the info line."""
    if method not in dict((v, k) for k, v in METHODS):
        raise gr.Error("Pick one of the listed pose-direction methods.")
    row_choice = POSE_ROWS if rows == "coarse" else None
    reader = _reader(ctx, card.id)
    picks = (_component_number(yaw_k, "yaw"), _component_number(pitch_k, "pitch"))

    def build() -> tuple[PoseBasis, str]:
        notes = []
        if method == "fitted":
            directions_id = ctx.registry.companion(card.id, "directions")
            if directions_id is None:
                raise gr.Error("Fitted pose directions ship for the demo model only; for FFHQ pick the InterFaceGAN "
                               "pose file or GANSpace/SeFa components.")
            basis = demo_pose_basis(G, ctx.models.get(directions_id), rows=row_choice)
        elif method == "file":
            record = ctx.registry.get(POSE_FILE_ID)
            path = hub.cached_path(record)
            if path is None:
                raise gr.Error(f"The InterFaceGAN pose file is not on this machine; get it from {record.manual_url} "
                               f"and set {record.env_var} to its path (see the Models tab).")
            basis = file_pose_basis(G, load_direction_file(path, G), source=record.id, rows=row_choice)
        else:
            comps = (cached_ganspace(card.id, G, k=COMPONENTS, progress=progress_callback(progress),
                                     cache=ctx.models.derived) if method == "ganspace" else sefa(G, None, k=COMPONENTS))
            if reader is not None:
                chosen, _, _ = label_pose_components(G, comps, reader, rows=row_choice)
                notes.append(f"components {chosen['yaw']} (yaw) and {chosen['pitch']} (pitch) found by reading "
                             "the pose off edited images")
            else:
                chosen = {"yaw": picks[0], "pitch": picks[1]}
                notes.append(f"components {picks[0]} (yaw) and {picks[1]} (pitch) as picked; no pose reader for "
                             "this model, so the amounts are multiples of each component's spread")
            basis = component_pose_basis(G, comps, chosen, rows=row_choice)
        if reader is not None:
            basis, _, refused = calibrate_basis(G, basis, reader)
            notes += [f"{r} — left out" for r in refused.values()]
        return basis, "; ".join(notes)

    key = ("pose-basis", card.id, method, rows, picks if reader is None else None)
    with user_errors():
        return ctx.models.derived.get_or_build(key, build)


def _source(ctx: Any, card: Any, G: Any, seed: str | None, name: str | None, store: LatentStore | None):
    return source_latent(G, card.id, seed, name, store)


def repose_action(ctx: Any, model_id: str, seed: str | None, name: str | None, method: str, rows: str, yaw: float,
                  pitch: float, yaw_k: Any, pitch_k: Any, store: LatentStore | None,
                  progress: gr.Progress | None = None):
    """Source and reposed image, and a line with what was asked, which directions, and what the
    pose reader (demo world) reads before and after."""
    card, G = stylegan_generator(ctx, model_id, "reposing", progress)
    ws, label = _source(ctx, card, G, seed, name, store)
    basis, note = _basis(ctx, card, G, method, rows, yaw_k, pitch_k, progress)
    amounts = {k: float(v or 0) for k, v in (("yaw", yaw), ("pitch", pitch)) if k in basis.axes}
    with user_errors():
        img, _ = repose_image(G, ws, basis, amounts)
        with torch.inference_mode():
            src = G.synthesis(ws.to(next(G.parameters()).device), noise_mode="const").float().cpu()
    asked = ", ".join(f"{k} {v:+g}{basis.axes[k].unit}" for k, v in amounts.items())
    line = f"**{card.id}** · {label} · asked {asked} · {basis.describe()}"
    reader = _reader(ctx, card.id)
    if reader is not None:
        with torch.inference_mode():
            a, b = reader(src)[0], reader(img)[0]
        line += (f" · the demo predictor reads yaw {a[0]:+.0f}° → {b[0]:+.0f}°, "
                 f"pitch {a[1]:+.0f}° → {b[1]:+.0f}°")
    if note:
        line += f" · {note}"
    return to_uint8_hwc(src)[0], to_uint8_hwc(img)[0], line


def strip_action(ctx: Any, model_id: str, seed: str | None, name: str | None, method: str, rows: str, yaw: float,
                 yaw_k: Any, pitch_k: Any, store: LatentStore | None, progress: gr.Progress | None = None):
    """The source turned over yaw from -|yaw| to +|yaw| in STRIP_STEPS steps."""
    card, G = stylegan_generator(ctx, model_id, "reposing", progress)
    ws, label = _source(ctx, card, G, seed, name, store)
    basis, note = _basis(ctx, card, G, method, rows, yaw_k, pitch_k, progress)
    if "yaw" not in basis.axes:
        raise gr.Error(f"This method gives no yaw control for {card.id}" + (f" ({note})" if note else "") + ".")
    half = abs(float(yaw or 0)) or 20.0
    values = [half * (2 * i / (STRIP_STEPS - 1) - 1) for i in range(STRIP_STEPS)]
    with user_errors():
        images, _ = pose_strip(G, ws, basis, "yaw", values)
    unit = basis.axes["yaw"].unit
    gallery = [(img, f"{v:+.0f}{unit}") for img, v in zip(to_uint8_hwc(images), values)]
    return gallery, f"**{card.id}** · {label} · yaw from {-half:+g}{unit} to {half:+g}{unit} · {basis.describe()}"


def transform_action(ctx: Any, model_id: str, seed: str | None, name: str | None, tx: float, ty: float, rotate: float,
                     store: LatentStore | None, progress: gr.Progress | None = None):
    """A StyleGAN3 image with its input grid translated and rotated."""
    card, G = stylegan_generator(ctx, model_id, "reposing", progress)
    if card.arch != "stylegan3":
        raise gr.Error(f"{card.id} is a {card.arch} model; the input transform is StyleGAN3's. Pick a StyleGAN3 model.")
    ws, label = _source(ctx, card, G, seed, name, store)
    with user_errors():
        img = transform_image(G, ws, (float(tx or 0), float(ty or 0)), float(rotate or 0))
    return to_uint8_hwc(img)[0], (f"**{card.id}** · {label} · translated ({float(tx or 0):+g}, {float(ty or 0):+g}) "
                                  f"canvas widths, rotated {float(rotate or 0):+g}°")
