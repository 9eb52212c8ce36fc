"""Mixing › Crossover / inpainting (Abdal et al., Image2StyleGAN++, CVPR 2020): A's masked region
joined to B, or A's masked hole filled, by a masked W+ (+ noise) embedding.

Layout and wiring only; the work is `shared.crossover` (masked embedding, scores) with region
masks from `shared.masks`. Each side is a rendered seed or session latent (whose W+ code starts
the optimisation) or an uploaded picture.
"""
from __future__ import annotations

import hashlib
from typing import Any

import gradio as gr
import numpy as np
import torch

from shared.crossover import MASK_PRESETS, PART_PRESETS, crossover, inpaint
from shared.images import image_to_tensor, to_uint8_hwc
from shared.inversion import InversionCancelled
from shared.inversion.compare import default_perceptual, prepare_target
from shared.latent_store import LatentStore
from shared.masks import region_mask, shade_outside
from shared.mixing import style_mix_images
from spaces.handlers import StopFlags, checked_image_upload, gpu, progress_callback, user_errors
from spaces.latents import Pick
from spaces.mixing.source import Source, generator, keys, latent_names
from spaces.painter import painter_value, region_painter

MASK_CHOICES = ([(f"{name.capitalize()} half of A" if name != "centre" else "Centre square of A", name)
                 for name in MASK_PRESETS]
                + [(f"Part of A: {name}", f"part:{name}") for name in PART_PRESETS]
                + [("Drawn (paint on A below)", "drawn")])
API_CROSSOVER = ("Crossover ('crossover': A's masked region joined to B) or inpainting ('inpaint': fill A's masked "
                 "hole) by masked W+ (+ noise) optimisation. Images: PNG/JPEG files (centre-cropped to the model's "
                 "size); B is ignored for inpainting. Mask: 'left', 'right', 'upper', 'lower', 'centre' or 'part:hair|face|eyes|mouth|"
                 "background'. Returns [A, B, naive paste, result] and the scores.")
_STOPS = StopFlags()


def _render_key(ctx: Any, model_id: str, seed: float | None, name: str | None, store: LatentStore | None,
                psi: float = 1.0):
    """Image and W+ code of a seed or a session latent, for one side of the crossover."""
    card, G = generator(ctx, model_id)
    if name:
        ws, labels = keys(G, card.id, None, [name], store, psi, "latent", most=1)
    else:
        if seed is None:
            raise gr.Error("Type a seed (or choose a session latent) first.")
        ws, labels = keys(G, card.id, str(int(seed)), None, store, psi, "seed", most=1)
    with user_errors():
        img = style_mix_images(G, ws, ws, list(range(G.num_ws)))  # every row from itself: the image of ws
    return to_uint8_hwc(img)[0], ws.numpy(), labels[0]


def _digest(image: Any) -> str:
    return hashlib.sha256(np.ascontiguousarray(np.asarray(image)[..., :3]).tobytes()).hexdigest()


def _on_side_seed(ctx: Any, model_id: str, seed: float | None):
    img, ws, label = _render_key(ctx, model_id, seed, None, None)
    return img, (ws, _digest(img)), f"{label} (its latent starts the optimisation)"


def _on_side_latent(ctx: Any, model_id: str, name: str | None, store: LatentStore | None):
    if not name:
        raise gr.Error("Choose one of this session's latents first.")
    img, ws, label = _render_key(ctx, model_id, None, name, store)
    return img, (ws, _digest(img)), f"{label} (its latent starts the optimisation)"


def _on_example_sides(ctx: Any, model_id: str, seed_a: float | None, seed_b: float | None):
    """An example sets two seeds: render both sides (their latents start the optimisation)."""
    return (*_on_side_seed(ctx, model_id, seed_a), *_on_side_seed(ctx, model_id, seed_b))


def _side_ws(G: Any, image: Any, side: tuple[np.ndarray, str] | None) -> torch.Tensor | None:
    """The W+ code rendered into this side, if the image on screen is still that rendering (an
    upload or example replaces it, and the optimisation then starts from the mean latent)."""
    if side is None or image is None or _digest(image) != side[1]:
        return None
    ws = np.asarray(side[0], dtype=np.float32)
    if tuple(ws.shape[1:]) != (G.num_ws, G.w_dim):
        return None  # rendered with another model
    return torch.from_numpy(ws.copy())


def _editor_background(image: np.ndarray | None):
    """Show image A in the mask painter, enlarged so it is easy to paint on."""
    return gr.update(value=None if image is None else painter_value(image))


def _side_tensor(G: Any, image: Any, what: str) -> torch.Tensor:
    if image is None:
        raise gr.Error(f"Give image {what}: render a seed, use a session latent or upload a picture.")
    arr = np.asarray(image)
    with user_errors():
        if arr.ndim == 3 and arr.shape[2] == 4:
            arr = arr[..., :3]
        face = prepare_target(np.ascontiguousarray(arr), "center", int(G.img_resolution))
    return image_to_tensor(face.image)


def _mask(G: Any, choice: str, a: torch.Tensor, editor: Any) -> torch.Tensor:
    layers = (editor or {}).get("layers") if isinstance(editor, dict) else None
    if choice == "drawn" and not layers:
        raise gr.Error("Paint the region on image A in the mask painter first (or pick a preset).")
    with user_errors():
        return region_mask(choice, int(G.img_resolution), a, layers)


def _crossover(ctx: Any, model_id: str, mode: str, image_a: Any, side_a: tuple | None, image_b: Any,
               side_b: tuple | None, mask_choice: str, editor: Any, steps: float, noise_steps: float,
               seam: float, request: Any, progress: gr.Progress | None):
    if mode not in ("crossover", "inpaint"):
        raise gr.Error(f"Mode must be 'crossover' or 'inpaint', not {mode!r}.")
    card, G = generator(ctx, model_id, progress)
    a = _side_tensor(G, image_a, "A")
    b = _side_tensor(G, image_b, "B") if mode == "crossover" else None
    m = _mask(G, mask_choice or "left", a, editor)
    ws_a, ws_b = _side_ws(G, image_a, side_a), _side_ws(G, image_b, side_b)
    stop = _STOPS.start(request)
    common = dict(steps=int(steps), noise_steps=int(noise_steps), seam_px=int(seam),
                  perceptual=default_perceptual(ctx.device), progress=progress_callback(progress),
                  should_stop=stop.is_set)
    try:
        with user_errors():
            if mode == "crossover":
                res = crossover(G, a, b, m, ws_a=ws_a, ws_b=ws_b, **common)
            else:
                res = inpaint(G, a, m, ws=ws_a, **common)
    except InversionCancelled as e:
        raise gr.Error("Stopped before the end; the previous result is still on screen.") from e
    finally:
        _STOPS.finish(request, stop)
    u8 = lambda t: to_uint8_hwc(t)[0]  # noqa: E731
    mask_view = u8(shade_outside(a, m))
    sc = res.scores
    if mode == "crossover":
        gallery = [(u8(a), "A"), (u8(b), "B"), (mask_view, "mask on A"), (u8(res.naive), "naive paste"),
                   (u8(res.image), "crossover")]
        info = (f"Crossover in {res.seconds:.1f} s ({int(steps)} W+ steps"
                f"{f' + {int(noise_steps)} noise steps' if getattr(G, 'noises', None) is not None else ''}). "
                f"PSNR to A inside the mask **{sc['psnr_a']:.1f} dB**, to B outside **{sc['psnr_b']:.1f} dB** "
                f"(seam band of {int(seam)} px left out); gradient energy along the seam **{sc['seam_energy']:.3f}** "
                f"vs **{sc['seam_energy_naive']:.3f}** for the naive paste (lower is smoother).")
        label = f"crossover of {int(m.sum())} px of A into B"
    else:
        gallery = [(u8(a), "image"), (mask_view, "hole (dark)"), (u8(res.naive), "with the hole"),
                   (u8(res.image), "inpainted")]
        info = (f"Inpainting in {res.seconds:.1f} s. PSNR outside the hole **{sc['psnr_known']:.1f} dB**; "
                f"the hole is the generator's own fill.")
        label = "inpainting"
    return gallery, (u8(res.naive), u8(res.image)), info, Pick(card.id, res.ws.numpy().astype(np.float32), label)


def _on_stop(request: gr.Request):
    _STOPS.stop(request)


def _side_inputs(letter: str, seed: int):
    """One side of the crossover: image (upload), seed + render button, session latent + button, info."""
    low = letter.lower()
    image = checked_image_upload(gr.Image(label=f"Image {letter}", type="numpy", image_mode="RGB", format="png",
                                          sources=["upload", "clipboard"], height=200, elem_id=f"mixing-{low}",
                                          elem_classes=["pixel-view"]))
    with gr.Row():
        seed_box = gr.Number(seed, precision=0, label=f"Seed {letter}", min_width=80)
        seed_btn = gr.Button(f"Render seed {letter}", size="sm", elem_id=f"mixing-{low}-seed")
    with gr.Row():
        name = gr.Dropdown([], label="or a session latent", min_width=120, allow_custom_value=True)
        name_btn = gr.Button(f"Use latent as {letter}", size="sm")
    info = gr.Markdown(elem_id=f"mixing-{low}-info")
    return image, seed_box, seed_btn, name, name_btn, info


def build_section(ctx: Any, source: Source) -> None:
    """The "Crossover / inpainting" sub-tab; its result becomes the tab's pick."""
    model, first = source.model, source.first
    with gr.Tab("Crossover / inpainting", id="mixing-crossover"):
        ws_a, ws_b = gr.State(None), gr.State(None)   # (W+ code, digest of the image it rendered)
        with gr.Row():
            with gr.Column(min_width=260):
                mode = gr.Radio([("Crossover (A's region + B)", "crossover"),
                                 ("Inpainting (fill A's masked hole)", "inpaint")], value="crossover",
                                label="Operation")
                image_a, seed_a, seed_a_btn, name_a, name_a_btn, info_a = _side_inputs("A", 1)
            with gr.Column(min_width=260) as side_b:
                gr.Markdown("&nbsp;")
                image_b, seed_b, seed_b_btn, name_b, name_b_btn, info_b = _side_inputs("B", 2)
            with gr.Column(min_width=260):
                mask_choice = gr.Dropdown(MASK_CHOICES, value="left", label="Mask (what comes from A / "
                                          "the hole)", elem_id="mixing-mask")
                editor = region_painter("Mask painter (paint over A; used with 'Drawn')")
                with gr.Accordion("Options", open=False):
                    steps = gr.Slider(10, 1000, value=200, step=10, label="W+ steps")
                    noise_steps = gr.Slider(0, 500, value=100, step=10, label="Noise-map steps (StyleGAN2)")
                    seam = gr.Slider(0, 16, value=3, step=1, label="Seam band (px each side, unconstrained)")
                gr.Examples(
                    [[first, "crossover", 1, 2, "left"], [first, "crossover", 3, 4, "upper"],
                     [first, "crossover", 5, 6, "part:hair"], [first, "inpaint", 7, 7, "part:mouth"]],
                    inputs=[model, mode, seed_a, seed_b, mask_choice], label="Demo-world faces (seeds)",
                    example_labels=["left half of one + right of another", "upper + lower halves",
                                    "hair of one on another", "inpaint the mouth"], api_visibility="private",
                    fn=lambda mdl, _op, a, b, _mask: _on_example_sides(ctx, mdl, a, b), run_on_click=True,
                    outputs=[image_a, ws_a, info_a, image_b, ws_b, info_b], cache_examples=False)
                with gr.Row():
                    run = gr.Button("Run", variant="primary", elem_id="mixing-crossover-run")
                    stop = gr.Button("Stop", variant="stop")
        gallery = gr.Gallery(label="Result", format="png", columns=5, object_fit="contain",
                             elem_id="mixing-crossover-gallery")
        slider = gr.ImageSlider(label="Naive paste / result", type="numpy", format="png", height=300)
        info = gr.Markdown(elem_id="mixing-crossover-info")

    for trigger in (source.latents.change, model.change):
        trigger(lambda s, m: (gr.update(choices=latent_names(s, m), value=None),) * 2, [source.latents, model],
                [name_a, name_b], api_visibility="private", queue=False)
    side_a, side_b_out = [image_a, ws_a, info_a], [image_b, ws_b, info_b]
    for seed_box, btn, out in ((seed_a, seed_a_btn, side_a), (seed_b, seed_b_btn, side_b_out)):
        btn.click(lambda m, s: _on_side_seed(ctx, m, s), [model, seed_box], out, api_visibility="private")
    for name, btn, out in ((name_a, name_a_btn, side_a), (name_b, name_b_btn, side_b_out)):
        btn.click(lambda m, n, st: _on_side_latent(ctx, m, n, st), [model, name, source.latents], out,
                  api_visibility="private")
    uploaded = "uploaded (centre-cropped; the optimisation starts from the mean latent)"
    image_a.upload(lambda: uploaded, None, info_a, api_visibility="private", queue=False)
    image_b.upload(lambda: uploaded, None, info_b, api_visibility="private", queue=False)
    image_a.change(_editor_background, image_a, editor, api_visibility="private", queue=False)
    mode.change(lambda m: gr.update(visible=m == "crossover"), mode, side_b, api_visibility="private", queue=False)

    @gpu(duration=180)
    def run_crossover(mdl, op, a, wa, b, wb, mask, ed, n_steps, n_noise, band, request: gr.Request,
                      progress: gr.Progress = gr.Progress()):
        return _crossover(ctx, mdl, op, a, wa, b, wb, mask, ed, n_steps, n_noise, band, request, progress)

    run.click(run_crossover, [model, mode, image_a, ws_a, image_b, ws_b, mask_choice, editor, steps, noise_steps, seam],
              [gallery, slider, info, source.pick], api_name="crossover", api_description=API_CROSSOVER,
              concurrency_id="gpu")
    stop.click(_on_stop, None, None, api_visibility="private", queue=False)
