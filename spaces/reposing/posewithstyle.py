"""Reposing › Pose with Style (AlBahar et al., SIGGRAPH Asia 2021; BadourAlBahar/pose-with-style,
`inference.py` and `garment_transfer.py`): repaint a person in a target DensePose pose, or dress them in
one part of another person's clothes, from inputs in the official format.

Layout, wiring and adapters; the work is `shared.posewithstyle` (`repose`, `transfer_garment`). Every
user mistake leaves as `gr.Error` with one sentence.
"""
from __future__ import annotations

import colorsys
import time
from typing import Any

import gradio as gr
import numpy as np
import torch

from shared import hub
from shared.densepose import GARMENT_PARTS, NUM_PARTS, iuv_from_uint8
from shared.images import to_uint8_hwc
from shared.posewithstyle import image_from_uint8, repose, silhouette_from_uint8, transfer_garment
from spaces.handlers import checked_image_upload, gpu, model_card, progress_callback, user_errors
from spaces.model_picker import card_summary, default_model, model_choices

TASK = "reposing"
ARCH = "posewithstyle"
MODES = [("Repose (target IUV)", "repose"), ("Garment transfer", "garment")]
PART_LABELS = {"upper_body": "Upper body", "lower_body": "Lower body", "full_body": "Full body", "face": "Face"}
MAX_SEED = 2 ** 31 - 1
API = ("Repose a person (the official inference.py): (model, source photo, its silhouette `_sil.png`, its DensePose "
       "IUV `_iuv.png` with channels I, U, V, target IUV, noise seed) -> image in the target pose, source IUV "
       "preview, target IUV preview, info line. Photo, silhouette and IUV maps are the model's size high "
       "(512 px for the DeepFashion model) and at most as wide.")
API_GARMENT = ("Garment transfer (the official garment_transfer.py): (model, person photo, silhouette, IUV, garment "
               "photo, its silhouette, its IUV, part 'upper_body'|'lower_body'|'full_body'|'face', noise seed) -> the "
               "person in their own pose wearing that part, person IUV preview, garment IUV preview, info line.")
HOW = ("Inputs as the official repository's test files: the photo, its silhouette (`_sil.png`, white = person) and "
       "its DensePose IUV map (`_iuv.png`, saved with the part index I in the first channel, then U, V; not OpenCV's "
       "V, U, I order), all as high as the model's output and at most as wide; the target pose is another IUV map.")


def model_ids(ctx: Any) -> list[tuple[str, str]]:
    """(label, id) of the Pose with Style generators, ready ones first."""
    return [(label, i) for label, i in model_choices(ctx, TASK) if ctx.registry.get(i).arch == ARCH]


def needed_records(ctx: Any, model_id: str, *, garment: bool = False) -> list[Any]:
    """The cards a run needs: the generator, its CCM and UV lookup table, and for garment transfer the part map."""
    kinds = ("ccm", "uv-lookup") + (("uv-parts",) if garment else ())
    ids = [model_id] + [ctx.registry.companion(model_id, k) for k in kinds]
    missing_kinds = [k for k, i in zip(kinds, ids[1:]) if i is None]
    if missing_kinds:
        raise gr.Error(f"{model_id} has no {' or '.join(missing_kinds)} record; pick another Pose with Style model.")
    return [ctx.registry.get(i) for i in ids]


def _where(card: Any) -> str:
    folder = card.local_sources[0].path if card.local_sources else "$HUB_WEIGHTS_DIR"
    return f"`{folder}` or `{card.env_var}`"


def availability_line(ctx: Any, model_id: str | None) -> str:
    """Which files the model needs and whether each is on this machine."""
    if not model_id:
        return "**Pose with Style:** no model is registered."
    cards = [ctx.registry.get(i) for i in [model_id] + [ctx.registry.companion(model_id, k)
                                                         for k in ("ccm", "uv-lookup", "uv-parts")] if i]
    parts = [f"`{c.filename}` {'✓ here' if hub.is_cached(c) else '✗ missing'}" for c in cards]
    missing = [c for c in cards if not hub.is_cached(c)]
    line = f"**Files {model_id} needs:** " + " · ".join(parts) + " (the part map only for garment transfer)."
    if missing:
        line += (" The official files are Google Drive downloads linked from the "
                 "[pose-with-style README](https://github.com/BadourAlBahar/pose-with-style): put each at "
                 + "; ".join(f"{_where(c)}" for c in missing) + ".")
    return line


def _missing_sentence(cards: list[Any]) -> str | None:
    missing = [c for c in cards if not hub.is_cached(c)]
    if not missing:
        return None
    each = "; ".join(f"{c.filename} (record {c.id}) from {c.manual_url or c.official_repo}, then save it as "
                     f"{c.local_sources[0].path if c.local_sources else '$HUB_WEIGHTS_DIR'} or set {c.env_var} to "
                     "its path" for c in missing)
    return (f"Pose with Style needs {len(missing)} file{'s' if len(missing) > 1 else ''} that "
            f"{'are' if len(missing) > 1 else 'is'} not on this machine: download {each}.")


def _load(ctx: Any, model_id: str | None, garment: bool, progress: gr.Progress | None) -> tuple[Any, list[Any]]:
    """(generator card, [generator, CCM, lookup table(, part map)]) or the sentence naming missing files."""
    card = model_card(ctx, model_id)
    if card.arch != ARCH:
        raise gr.Error(f"{card.id} is a {card.arch} model; this section needs a Pose with Style generator.")
    cards = needed_records(ctx, card.id, garment=garment)
    sentence = _missing_sentence(cards)
    if sentence:
        raise gr.Error(sentence, print_exception=False)
    with user_errors():
        return card, [ctx.models.get(c.id, progress=progress_callback(progress)) for c in cards]


def _person(photo: Any, sil: Any, iuv: Any, who: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The three uploads of one person as the library's tensors (sentences for what is missing)."""
    for value, what in ((photo, "photo"), (sil, "silhouette (`_sil.png`)"), (iuv, "IUV map (`_iuv.png`)")):
        if value is None:
            raise gr.Error(f"Upload the {who} {what} first.")
    with user_errors():
        return (image_from_uint8(np.asarray(photo)), silhouette_from_uint8(np.asarray(sil)),
                iuv_from_uint8(np.array(iuv), f"{who} IUV map"))


def _target(iuv: Any) -> torch.Tensor:
    if iuv is None:
        raise gr.Error("Upload the target IUV map (`_iuv.png` of the pose to take) first.")
    with user_errors():
        return iuv_from_uint8(np.array(iuv), "target IUV map")


def _noise(G: Any, seed: Any) -> list[torch.Tensor]:
    """The synthesis noise of `seed`, drawn on the CPU (the same on every device) and moved to G's."""
    if seed is None:
        raise gr.Error("Type a noise seed (a whole number) first.")
    if not 0 <= int(seed) <= MAX_SEED:
        raise gr.Error(f"The noise seed must be from 0 to {MAX_SEED}.")
    device = next(G.parameters()).device
    return [n.to(device) for n in G.make_noise(1, torch.Generator().manual_seed(int(seed)), "cpu")]


def iuv_preview(iuv: torch.Tensor) -> np.ndarray:
    """A raw IUV map [1, 3, H, W] drawn for people: a colour per body part, lighter with V, striped by U."""
    x = iuv[0].to("cpu", torch.int64).numpy()
    palette = np.array([(0.0, 0.0, 0.0)] + [colorsys.hsv_to_rgb((7 * p % NUM_PARTS) / NUM_PARTS, 0.75, 1.0)
                                             for p in range(1, NUM_PARTS + 1)])
    shade = (0.45 + 0.55 * x[2] / 255) * (0.85 + 0.15 * ((x[1] // 32) % 2))
    return (palette[x[0]] * shade[..., None] * 255).round().astype(np.uint8)


def _info(card: Any, what: str, image: torch.Tensor, seed: Any, seconds: float) -> str:
    h, w = image.shape[2:]
    device = str(image.device).upper() if image.device.type == "cpu" else str(image.device)
    return f"**{card.id}** · {what} · {w}×{h} px · noise seed {int(seed)} · {seconds:.2f} s on {device}"


def repose_action(ctx: Any, model_id: str | None, photo: Any, sil: Any, iuv: Any, target: Any, seed: Any,
                  progress: gr.Progress | None = None):
    """The person of the source photo in the target pose, both IUV maps drawn, and a line with the timing."""
    card, (G, ccm, lookup) = _load(ctx, model_id, False, progress)
    image, silhouette, iuv_s = _person(photo, sil, iuv, "source")
    iuv_t = _target(target)
    noise = _noise(G, seed)
    t0 = time.perf_counter()
    with user_errors():
        out = repose(G, ccm, image, silhouette, iuv_s, iuv_t, lookup, noise=noise)
    seconds = time.perf_counter() - t0
    return (to_uint8_hwc(out.image)[0], iuv_preview(iuv_s), iuv_preview(iuv_t),
            _info(card, "reposed to the target IUV", out.image, seed, seconds))


def garment_action(ctx: Any, model_id: str | None, photo: Any, sil: Any, iuv: Any, g_photo: Any, g_sil: Any,
                   g_iuv: Any, part: str | None, seed: Any, progress: gr.Progress | None = None):
    """The person in their own pose wearing one part of the garment photo's clothes."""
    if part not in GARMENT_PARTS:
        raise gr.Error(f"Choose the part to transfer: {', '.join(GARMENT_PARTS)}.")
    card, (G, ccm, lookup, parts) = _load(ctx, model_id, True, progress)
    image, silhouette, iuv_p = _person(photo, sil, iuv, "source")
    garment, garment_sil, iuv_g = _person(g_photo, g_sil, g_iuv, "garment")
    noise = _noise(G, seed)
    t0 = time.perf_counter()
    with user_errors():
        out = transfer_garment(G, ccm, image, silhouette, iuv_p, garment, garment_sil, iuv_g, lookup, parts,
                               part=part, noise=noise)
    seconds = time.perf_counter() - t0
    return (to_uint8_hwc(out.image)[0], iuv_preview(iuv_p), iuv_preview(iuv_g),
            _info(card, f"{PART_LABELS[part].lower()} from the garment photo", out.image, seed, seconds))


def _upload(label: str, elem_id: str) -> gr.Image:
    return checked_image_upload(gr.Image(label=label, type="numpy", height=240, min_width=160, elem_id=elem_id))


def build_section(ctx: Any) -> None:
    choices = model_ids(ctx)
    first = default_model(ctx, choices)
    with gr.Tab("Pose with Style", id="repose-pws"):
        available = gr.Markdown(availability_line(ctx, first), elem_id="pws-available")
        with gr.Row():
            with gr.Column(min_width=280):
                model = gr.Dropdown(choices, value=first, label="Pose with Style model", elem_id="pws-model")
                about = gr.Markdown(card_summary(ctx.registry.get(first) if first else None))
            with gr.Column(min_width=280):
                mode = gr.Radio(MODES, value="repose", label="Mode", elem_id="pws-mode")
                part = gr.Radio([(v, k) for k, v in PART_LABELS.items()], value="upper_body",
                                label="Part to transfer (from the garment photo)", visible=False, elem_id="pws-part")
                seed = gr.Number(0, precision=0, label="Noise seed", minimum=0, maximum=MAX_SEED, elem_id="pws-seed")
        gr.Markdown(HOW)
        with gr.Row():
            photo = _upload("Source photo", "pws-photo")
            sil = _upload("Source silhouette (_sil.png)", "pws-sil")
            iuv = _upload("Source IUV (_iuv.png)", "pws-iuv")
            target = _upload("Target IUV (pose)", "pws-target")
        with gr.Row(visible=False) as garment_row:
            g_photo = _upload("Garment photo", "pws-garment-photo")
            g_sil = _upload("Garment silhouette", "pws-garment-sil")
            g_iuv = _upload("Garment IUV", "pws-garment-iuv")
        with gr.Row():
            run = gr.Button("Repose", variant="primary", elem_id="pws-run")
            run_garment = gr.Button("Transfer garment", variant="primary", visible=False, elem_id="pws-garment-run")
        with gr.Row():
            result = gr.Image(label="Result", type="numpy", format="png", height=400, min_width=240,
                              elem_id="pws-result", elem_classes=["pixel-view"])
            shown_source = gr.Image(label="Source IUV (parts coloured)", type="numpy", format="png", height=400,
                                    min_width=240, elem_id="pws-source-iuv", elem_classes=["pixel-view"])
            shown_target = gr.Image(label="Target / garment IUV", type="numpy", format="png", height=400,
                                    min_width=240, elem_id="pws-target-iuv", elem_classes=["pixel-view"])
        info = gr.Markdown(elem_id="pws-info")

    @gpu(duration=120)
    def on_repose(m, p, s, i, t, sd, progress: gr.Progress = gr.Progress()):
        return repose_action(ctx, m, p, s, i, t, sd, progress)

    @gpu(duration=120)
    def on_garment(m, p, s, i, gp, gs, gi, pt, sd, progress: gr.Progress = gr.Progress()):
        return garment_action(ctx, m, p, s, i, gp, gs, gi, pt, sd, progress)

    outputs = [result, shown_source, shown_target, info]
    run.click(on_repose, [model, photo, sil, iuv, target, seed], outputs, api_name="pose_with_style",
              concurrency_id="gpu", api_description=API)
    run_garment.click(on_garment, [model, photo, sil, iuv, g_photo, g_sil, g_iuv, part, seed], outputs,
                      api_name="pose_with_style_garment", concurrency_id="gpu", api_description=API_GARMENT)
    mode.change(_on_mode, mode, [part, target, garment_row, run, run_garment], api_visibility="private", queue=False)
    model.change(lambda m: (availability_line(ctx, m), card_summary(ctx.registry.get(m) if m else None)), model,
                 [available, about], api_visibility="private", queue=False)


def _on_mode(mode: str):
    garment = mode == "garment"
    return (gr.update(visible=garment), gr.update(visible=not garment), gr.update(visible=garment),
            gr.update(visible=not garment), gr.update(visible=garment))
