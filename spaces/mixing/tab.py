"""Mixing tab: style mixing (Karras et al., CVPR 2019), crossover and inpainting (Abdal et al.,
Image2StyleGAN++, CVPR 2020) and interpolation, on any StyleGAN2 / StyleGAN3 generator.

Layout and wiring only. The work is `shared.mixing` (ranges, mixes, the paper's grid, slerp/lerp
paths, MP4/GIF writers) and `shared.crossover` (masked embedding, masks, scores). Inputs are seeds
or latents of the session's `LatentStore` (inverted photos, generated images); per-session
results live in `gr.State` (small CPU arrays) and can be sent on to the other tabs.
"""
from __future__ import annotations

import hashlib
import tempfile
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np
import torch

from shared.crossover import MASK_PRESETS, PART_PRESETS, crossover, inpaint, mask_from_layers, predicted_part_mask, preset_mask
from shared import hub
from shared.generation import NOISE_MODES, parse_seeds
from shared.hub import HubError
from shared.images import to_uint8_hwc
from shared.inversion import InversionCancelled
from shared.inversion.compare import default_perceptual, image_to_tensor, prepare_target
from shared.latent_store import LatentStore
from shared.mixing import (MAX_GRID, interpolate, layer_ranges, resolve_rows, style_mix_images, style_mixing_grid,
                           write_gif, write_video, ws_from_seeds)
from spaces.family import inbox_markdown
from spaces.handlers import StopFlags, gpu, gpu_handler, progress_callback, send_latent, stylegan_generator, user_errors
from spaces.model_picker import card_summary, default_model, model_choices

TASK = "mixing"
ARCHS = ("stylegan2", "stylegan3")
SEND_TARGETS = (("local-editing", "Local editing"), ("text-editing", "Text editing"), ("inversion", "Inversion"),
                ("mixing", "Mixing"))
RANGE_CHOICES = [("Coarse (pose, face shape)", "coarse"), ("Middle (features, hair style)", "middle"),
                 ("Fine (colours, micro-structure)", "fine"), ("Custom rows", "custom")]
INTERP_ROWS = [("All rows", "all")] + RANGE_CHOICES
MASK_CHOICES = ([(f"{name.capitalize()} half of A" if name != "centre" else "Centre square of A", name)
                 for name in MASK_PRESETS]
                + [(f"Part of A: {name}", f"part:{name}") for name in PART_PRESETS]
                + [("Drawn (paint on A below)", "drawn")])
VIDEO_MIN_SIDE = 256   # small models are upscaled (nearest) to at least this for the video
_STOPS = StopFlags()

INTRO = """### Mixing
Combine latents: the **style-mixing grid** of the StyleGAN paper (the sources' coarse, middle or fine
styles copied into the destinations), **crossover** (A's masked region glued to B and made into one
coherent face by a masked Image2StyleGAN++ embedding) and **inpainting**, and **interpolation** videos.
Inputs are seeds, or latents this session sent here from Generate or Inversion."""

API_MIX = ("One style mix: the first destination with the chosen rows (range name or custom rows such as '0-3') "
           "taken from the first source. Sources/destinations are seeds ('1,2,3') and/or names of this "
           "session's latents. Returns [destination, source, mix] PNGs and a Markdown line.")
API_GRID = ("The paper's style-mixing grid (up to 6 x 6): sources across the top, destinations down the side, "
            "each cell the destination with the chosen rows from the source. Returns the sheet as PNG and a "
            "Markdown line.")
API_CROSSOVER = ("Crossover ('crossover': A's masked region joined to B) or inpainting ('inpaint': fill A's masked "
                 "hole) by masked W+ (+ noise) optimisation. Images: PNG/JPEG files (centre-cropped to the model's "
                 "size); B is ignored for inpainting. Mask: 'left', 'right', 'upper', 'lower', 'centre' or 'part:hair|face|eyes|mouth|"
                 "background'. Returns [A, B, naive paste, result] and the scores.")
API_INTERPOLATE = ("Interpolate through seeds and/or session latents in Z (slerp, seeds only), W or W+ (lerp), "
                   "optionally only some rows. Returns the MP4, the GIF (when asked) and a Markdown line.")


@dataclass(frozen=True, eq=False)
class MixPick:
    """A mix the user chose (single mix or a grid cell), ready to send on."""
    model_id: str
    ws: np.ndarray    # [1, num_ws, w_dim] float32
    label: str


@dataclass(frozen=True, eq=False)
class GridState:
    """What a session keeps of its last grid: the mixes' latents, to pick a cell."""
    model_id: str
    mixes_ws: np.ndarray            # [D, S, num_ws, w_dim]
    images: np.ndarray              # uint8 [D, S, H, W, 3]
    sources: tuple[str, ...]
    destinations: tuple[str, ...]
    rows: tuple[int, ...]


# ---- adapters: models, keys, rows -----------------------------------------------------------------
def _generator_choices(ctx: Any) -> list[tuple[str, str]]:
    return [(label, i) for label, i in model_choices(ctx, TASK) if ctx.registry.get(i).arch in ARCHS]


def _generator(ctx: Any, model_id: str | None, progress: gr.Progress | None = None) -> tuple[Any, Any]:
    return stylegan_generator(ctx, model_id, "mixing", progress)


def _ranges_markdown(G: Any) -> str:
    return "Layer ranges of this model: " + " · ".join(f"**{r.label}**" for r in layer_ranges(G).values()) + \
        f" (of {G.num_ws} rows)."


def _on_model(ctx: Any, model_id: str | None):
    """Model summary plus its layer ranges (when it can be loaded without a download)."""
    if not model_id:
        return card_summary(None), ""
    card = ctx.registry.get(model_id)
    try:
        local = card.builtin is not None or hub.cached_path(card) is not None
    except HubError as e:  # e.g. HUB_MODEL_PATH_<ID> names a missing file; a run reports it as an error
        return card_summary(card), f"Layer ranges appear once the model loads ({e})."
    if not local:
        return card_summary(card), "Layer ranges appear once the model is downloaded (Models tab) or first used."
    _, G = _generator(ctx, model_id)
    return card_summary(card), _ranges_markdown(G)


def _latent_names(store: LatentStore | None, model_id: str | None) -> list[str]:
    return (store or LatentStore()).list(model_id)


def _on_store(store: LatentStore | None, model_id: str | None):
    """The latent pickers list this session's latents of the chosen model."""
    names = _latent_names(store, model_id)
    latest = (store or LatentStore()).latest_for(TASK)
    value = [latest[0]] if latest and latest[0] in names else []
    return (gr.update(choices=names, value=value), gr.update(choices=names, value=[]), gr.update(choices=names, value=value),
            gr.update(choices=names, value=None), gr.update(choices=names, value=None))


def _keys(G: Any, model_id: str, seeds: str | None, names: list[str] | str | None, store: LatentStore | None,
          psi: float, what: str, *, most: int) -> tuple[torch.Tensor, list[str]]:
    """W+ codes [N, num_ws, w_dim] of the chosen session latents, then the seeds; and labels."""
    names = [names] if isinstance(names, str) else list(names or [])
    store = store or LatentStore()
    ws, labels = [], []
    for name in names:
        try:
            entry = store.get(name)
        except KeyError as e:
            raise gr.Error(str(e.args[0])) from None
        if entry.model_id != model_id:
            raise gr.Error(f"Latent {name!r} belongs to {entry.model_id}, not {model_id}; pick that model or "
                           f"another latent.")
        ws.append(torch.from_numpy(np.array(entry.ws, dtype=np.float32)))
        labels.append(name)
    if seeds is not None and str(seeds).strip():
        with user_errors():
            seed_list = parse_seeds(seeds, max_count=most)
            ws.append(ws_from_seeds(G, seed_list, psi))
        labels += [f"seed {s}" for s in seed_list]
    if not ws:
        raise gr.Error(f"Give at least one {what}: seeds such as 1,2,3 or a latent of this session.")
    out = torch.cat(ws)
    if out.shape[0] > most:
        raise gr.Error(f"At most {most} {what}s fit; you gave {out.shape[0]}.")
    return out, labels


def _rows(G: Any, choice: str | None, custom: str | None) -> tuple[int, ...]:
    with user_errors():
        if choice == "custom":
            if not custom or not str(custom).strip():
                raise gr.Error("Write the custom rows, e.g. 0-3 or 4,5,6 (row numbers start at 0).")
            return resolve_rows(G, str(custom))
        return resolve_rows(G, choice or "coarse")


def _rows_text(rows: tuple[int, ...]) -> str:
    return ", ".join(map(str, rows))


# ---- style mixing ---------------------------------------------------------------------------------
def _mix_inputs(ctx: Any, model_id: str, src_seeds: str, src_names: list[str] | None, dst_seeds: str,
                dst_names: list[str] | None, choice: str, custom: str, psi: float, store: LatentStore | None,
                progress: gr.Progress | None):
    """Model, sources, destinations (W+ codes and labels) and rows of a mix or grid request."""
    card, G = _generator(ctx, model_id, progress)
    src, src_labels = _keys(G, card.id, src_seeds, src_names, store, psi, "source", most=MAX_GRID)
    dst, dst_labels = _keys(G, card.id, dst_seeds, dst_names, store, psi, "destination", most=MAX_GRID)
    return card, G, src, src_labels, dst, dst_labels, _rows(G, choice, custom)


def _on_mix(ctx: Any, model_id: str, src_seeds: str, src_names: list[str] | None, dst_seeds: str,
            dst_names: list[str] | None, choice: str, custom: str, psi: float, noise_mode: str,
            store: LatentStore | None, progress: gr.Progress | None = None):
    t0 = time.perf_counter()
    card, G, src, src_labels, dst, dst_labels, rows = _mix_inputs(ctx, model_id, src_seeds, src_names, dst_seeds,
                                                                  dst_names, choice, custom, psi, store, progress)
    with user_errors():
        imgs = style_mix_images(G, torch.cat([dst[:1], src[:1], dst[:1]]),
                                torch.cat([dst[:1], src[:1], src[:1]]), rows, noise_mode=noise_mode)
    from shared.mixing import mix_styles
    ws = mix_styles(G, dst[:1], src[:1], rows).numpy()
    u8 = to_uint8_hwc(imgs)
    label = f"{dst_labels[0]} with rows {_rows_text(rows)} of {src_labels[0]}"
    gallery = [(u8[0], f"destination: {dst_labels[0]}"), (u8[1], f"source: {src_labels[0]}"), (u8[2], "mix")]
    info = f"Mix: **{label}** · {time.perf_counter() - t0:.2f} s"
    return gallery, info, MixPick(card.id, ws.astype(np.float32), label), u8[2]


def _on_grid(ctx: Any, model_id: str, src_seeds: str, src_names: list[str] | None, dst_seeds: str,
             dst_names: list[str] | None, choice: str, custom: str, psi: float, noise_mode: str,
             store: LatentStore | None, progress: gr.Progress | None = None):
    t0 = time.perf_counter()
    card, G, src, src_labels, dst, dst_labels, rows = _mix_inputs(ctx, model_id, src_seeds, src_names, dst_seeds,
                                                                  dst_names, choice, custom, psi, store, progress)
    with user_errors():
        grid = style_mixing_grid(G, src, dst, rows, noise_mode=noise_mode, progress=progress_callback(progress))
    state = GridState(card.id, grid.mixes_ws.numpy().astype(np.float32),
                      to_uint8_hwc(grid.mixes.reshape(-1, *grid.mixes.shape[2:])).reshape(
                          *grid.mixes.shape[:2], *grid.mixes.shape[3:], 3),
                      tuple(src_labels), tuple(dst_labels), tuple(rows))
    info = (f"{len(dst_labels)} × {len(src_labels)} grid: each cell is its row's destination with rows "
            f"**{_rows_text(rows)}** from its column's source · {time.perf_counter() - t0:.2f} s. "
            f"Click a cell to pick that mix.")
    return grid.sheet, info, state


def _on_grid_select(state: GridState | None, evt: gr.SelectData):
    """A click on the grid sheet at pixel (x, y) picks that cell's mix."""
    if state is None:
        raise gr.Error("Make a grid first.")
    x, y = (int(v) for v in evt.index)
    d, s = state.mixes_ws.shape[:2]
    h, w = state.images.shape[2:4]
    i, j = y // h - 1, x // w - 1
    if not (0 <= i < d and 0 <= j < s):
        return gr.update(), gr.update(), gr.update()
    label = f"{state.destinations[i]} with rows {_rows_text(state.rows)} of {state.sources[j]}"
    pick = MixPick(state.model_id, state.mixes_ws[i, j][None].copy(), label)
    return pick, state.images[i, j], f"Picked: **{label}**"


def _on_send(pick: MixPick | None, target: str, store: LatentStore | None):
    if pick is None and target in dict(SEND_TARGETS):
        raise gr.Error("Make a mix, a crossover or pick a grid cell first.")
    return send_latent(store, SEND_TARGETS, target, f"mix: {pick.label if pick else ''}",
                       pick.model_id if pick else "", pick.ws if pick else None, f"Mixing: {pick.label if pick else ''}")


# ---- crossover and inpainting ---------------------------------------------------------------------
def _render_key(ctx: Any, model_id: str, seed: float | None, name: str | None, store: LatentStore | None,
                psi: float = 1.0):
    """Image and W+ code of a seed or a session latent, for one side of the crossover."""
    card, G = _generator(ctx, model_id)
    if name:
        ws, labels = _keys(G, card.id, None, [name], store, psi, "latent", most=1)
    else:
        if seed is None:
            raise gr.Error("Type a seed (or choose a session latent) first.")
        ws, labels = _keys(G, card.id, str(int(seed)), None, store, psi, "seed", most=1)
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
    if image is None:
        return gr.update(value=None)
    arr = np.asarray(image)[..., :3]
    k = max(1, 256 // max(arr.shape[:2]))
    big = arr.repeat(k, 0).repeat(k, 1) if k > 1 else arr
    return gr.update(value={"background": big, "layers": [], "composite": big})


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
    r = int(G.img_resolution)
    with user_errors():
        if choice == "drawn":
            layers = (editor or {}).get("layers") if isinstance(editor, dict) else None
            if not layers:
                raise gr.Error("Paint the region on image A in the mask painter first (or pick a preset).")
            return mask_from_layers(layers, r)
        if choice.startswith("part:"):
            return predicted_part_mask(a, choice.split(":", 1)[1], r)
        return preset_mask(choice, r)


def _crossover(ctx: Any, model_id: str, mode: str, image_a: Any, side_a: tuple | None, image_b: Any,
               side_b: tuple | None, mask_choice: str, editor: Any, steps: float, noise_steps: float,
               seam: float, request: Any, progress: gr.Progress | None):
    if mode not in ("crossover", "inpaint"):
        raise gr.Error(f"Mode must be 'crossover' or 'inpaint', not {mode!r}.")
    card, G = _generator(ctx, model_id, progress)
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
    mask_view = u8(a * m + (1 - m) * torch.full_like(a, -0.6))
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
    pick = MixPick(card.id, res.ws.numpy().astype(np.float32), label)
    return gallery, (u8(res.naive), u8(res.image)), info, pick


def _on_stop(request: gr.Request):
    _STOPS.stop(request)


# ---- interpolation --------------------------------------------------------------------------------
def _on_interpolate(ctx: Any, model_id: str, seeds: str, names: list[str] | None, space: str, frames: float,
                    fps: float, rows_choice: str, custom: str, psi: float, want_gif: bool, store: LatentStore | None,
                    progress: gr.Progress | None = None):
    card, G = _generator(ctx, model_id, progress)
    t0 = time.perf_counter()
    names = list(names or [])
    if space == "z":
        if names:
            raise gr.Error("Z interpolation works on seeds only (a session latent has no z); use W or W+, or "
                           "clear the latents.")
        with user_errors():
            from shared.mixing import z_from_seeds
            seed_list = parse_seeds(seeds, max_count=32)
            keys = z_from_seeds(G, seed_list)
        count = len(seed_list)
    else:
        keys, labels = _keys(G, card.id, seeds, names, store, psi, "key", most=32)
        count = keys.shape[0]
    if count < 2:
        raise gr.Error("Interpolation needs at least two keys: two seeds (e.g. 1,2) or two latents.")
    rows = None if rows_choice in (None, "all") else _rows(G, rows_choice, custom)
    with user_errors():
        clip = interpolate(G, keys, space=space, frames_per_segment=int(frames), rows=rows, psi=float(psi),
                           progress=progress_callback(progress))
        k = max(1, VIDEO_MIN_SIDE // int(G.img_resolution))
        u8 = to_uint8_hwc(clip)
        if k > 1:
            u8 = u8.repeat(k, axis=1).repeat(k, axis=2)
        out = Path(tempfile.mkdtemp(prefix="hub-interp-"))
        video = write_video(u8, out / "interpolation.mp4", fps=float(fps))
        gif = write_gif(u8, out / "interpolation.gif", fps=min(float(fps), 50)) if want_gif else None
    rows_note = "all rows" if rows is None else f"rows {_rows_text(rows)} (the others stay at the first key)"
    info = (f"{u8.shape[0]} frames through {count} keys in {space.upper()} ({rows_note}), {u8.shape[2]}×{u8.shape[1]} px "
            f"at {float(fps):g} fps · {time.perf_counter() - t0:.1f} s")
    return video, gif, info


# ---- layout ---------------------------------------------------------------------------------------
def _side_inputs(letter: str, seed: int):
    """One side of the crossover: image (upload), seed + render button, session latent + button, info."""
    low = letter.lower()
    image = gr.Image(label=f"Image {letter}", type="numpy", image_mode="RGB", format="png",
                     sources=["upload", "clipboard"], height=200, elem_id=f"mixing-{low}", elem_classes=["pixel-view"])
    with gr.Row():
        seed_box = gr.Number(seed, precision=0, label=f"Seed {letter}", min_width=80)
        seed_btn = gr.Button(f"Render seed {letter}", size="sm", elem_id=f"mixing-{low}-seed")
    with gr.Row():
        name = gr.Dropdown([], label="or a session latent", min_width=120, allow_custom_value=True)
        name_btn = gr.Button(f"Use latent as {letter}", size="sm")
    info = gr.Markdown(elem_id=f"mixing-{low}-info")
    return image, seed_box, seed_btn, name, name_btn, info


def build_tab(ctx: Any) -> None:
    latents = ctx.latents if ctx.latents is not None else gr.State(LatentStore())
    choices = _generator_choices(ctx)
    first = default_model(ctx, choices, getattr(ctx.registry, "DEFAULT_GENERATOR_ID", None))
    about0, ranges0 = _on_model(ctx, first) if first else (card_summary(None), "")
    with gr.Tab("Mixing", id="mixing"):
        gr.Markdown(INTRO)
        with gr.Row():
            model = gr.Dropdown(choices, value=first, label="Generator", elem_id="mixing-model", scale=1)
            with gr.Column(scale=2):
                about = gr.Markdown(about0)
                ranges = gr.Markdown(ranges0, elem_id="mixing-ranges")
                inbox = gr.Markdown(inbox_markdown(TASK, "Mixing", None), elem_id="mixing-inbox")
        pick = gr.State(None)
        with gr.Tabs():
            with gr.Tab("Style mixing", id="mixing-style"):
                with gr.Row():
                    with gr.Column(min_width=300):
                        src_seeds = gr.Textbox("1,2,3", label="Sources (across the top): seeds",
                                               info="give the chosen rows; e.g. 1,2,3 or 10-15 (at most 6)")
                        src_names = gr.Dropdown([], multiselect=True, label="Sources: this session's latents", allow_custom_value=True)
                        dst_seeds = gr.Textbox("4,5,6", label="Destinations (down the side): seeds",
                                               info="keep all other rows")
                        dst_names = gr.Dropdown([], multiselect=True, label="Destinations: this session's latents", allow_custom_value=True)
                        rng = gr.Radio(RANGE_CHOICES, value="coarse", label="Rows taken from the sources")
                        custom = gr.Textbox("", label="Custom rows", placeholder="e.g. 0-3 or 4,5,6")
                        with gr.Row():
                            psi = gr.Slider(0, 1.5, value=1.0, step=0.05, label="Truncation ψ (seeds)")
                            noise = gr.Radio(list(NOISE_MODES), value="const", label="Noise")
                        gr.Examples([["1,2,3", "4,5,6", "coarse"], ["1,2,3", "4,5,6", "middle"],
                                     ["10-15", "20-25", "coarse"], ["7,8", "30,31", "fine"]],
                                    inputs=[src_seeds, dst_seeds, rng], label="Demo-world grids",
                                    example_labels=["3 × 3, coarse rows", "3 × 3, middle rows", "6 × 6, coarse rows",
                                                    "2 × 2, fine rows"], api_visibility="private")
                        with gr.Row():
                            grid_btn = gr.Button("Make grid", variant="primary", elem_id="mixing-grid-run")
                            mix_btn = gr.Button("Mix first pair", elem_id="mixing-mix-run")
                    with gr.Column(min_width=320, scale=2):
                        sheet = gr.Image(label="Style-mixing grid (click a cell to pick it)", format="png",
                                         interactive=False, elem_id="mixing-grid", height=440)
                        grid_info = gr.Markdown(elem_id="mixing-grid-info")
                        mix_gallery = gr.Gallery(label="Mix", format="png", columns=3, height=220,
                                                 object_fit="contain", elem_id="mixing-mix")
                        with gr.Row():
                            picked = gr.Image(label="Picked mix", format="png", interactive=False, height=180, elem_classes=["pixel-view"])
                            picked_info = gr.Markdown()
                grid_state = gr.State(None)
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
                        editor = gr.ImageEditor(label="Mask painter (paint over A; used with 'Drawn')", type="numpy",
                                                image_mode="RGBA", sources=[], transforms=[], layers=False,
                                                brush=gr.Brush(colors=["#ff3366"], default_size=16,
                                                               color_mode="fixed"),
                                                canvas_size=(256, 256), height=300, format="png")
                        with gr.Accordion("Options", open=False):
                            xo_steps = gr.Slider(10, 1000, value=200, step=10, label="W+ steps")
                            xo_noise = gr.Slider(0, 500, value=100, step=10, label="Noise-map steps (StyleGAN2)")
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
                            xo_btn = gr.Button("Run", variant="primary", elem_id="mixing-crossover-run")
                            xo_stop = gr.Button("Stop", variant="stop")
                xo_gallery = gr.Gallery(label="Result", format="png", columns=5, height=240, object_fit="contain",
                                        elem_id="mixing-crossover-gallery")
                xo_slider = gr.ImageSlider(label="Naive paste / result", type="numpy", format="png", height=300)
                xo_info = gr.Markdown(elem_id="mixing-crossover-info")
            with gr.Tab("Interpolation", id="mixing-interpolation"):
                with gr.Row():
                    with gr.Column(min_width=300):
                        it_seeds = gr.Textbox("1,2,3", label="Keys: seeds", info="in this order, after the latents")
                        it_names = gr.Dropdown([], multiselect=True, label="Keys: this session's latents", allow_custom_value=True)
                        space = gr.Radio([("Z (slerp; seeds only)", "z"), ("W (lerp)", "w"), ("W+ (lerp)", "w+")],
                                         value="w", label="Space")
                        it_rows = gr.Radio(INTERP_ROWS, value="all", label="Rows that move")
                        it_custom = gr.Textbox("", label="Custom rows", placeholder="e.g. 0-3")
                        with gr.Row():
                            frames = gr.Slider(2, 120, value=30, step=1, label="Frames per segment")
                            fps = gr.Slider(1, 60, value=24, step=1, label="Frames per second")
                        with gr.Row():
                            it_psi = gr.Slider(0, 1.5, value=1.0, step=0.05, label="Truncation ψ")
                            want_gif = gr.Checkbox(True, label="Also make a GIF")
                        gr.Examples([["1,2,3,1", "w", "all"], ["1,2", "z", "all"], ["4,5", "w+", "coarse"]],
                                    inputs=[it_seeds, space, it_rows], label="Demo-world walks",
                                    example_labels=["loop through 3 faces in W", "slerp in Z",
                                                    "only the coarse rows move (pose, shape)"],
                                    api_visibility="private")
                        it_btn = gr.Button("Make video", variant="primary", elem_id="mixing-interp-run")
                    with gr.Column(min_width=320, scale=2):
                        video = gr.Video(label="Interpolation (MP4)", format="mp4", elem_id="mixing-video",
                                         loop=True, autoplay=True)
                        gif = gr.File(label="GIF", elem_id="mixing-gif")
                        it_info = gr.Markdown(elem_id="mixing-interp-info")
        with gr.Row():
            target = gr.Radio([(label, key) for key, label in SEND_TARGETS], value="local-editing", label="Send the "
                              "picked mix / crossover result to")
            send = gr.Button("Send latent", elem_id="mixing-send")
        sent = gr.Markdown(elem_id="mixing-sent")

        # ---- wiring ----
        model.change(partial(_on_model, ctx), model, [about, ranges], api_visibility="private")
        store_outputs = [src_names, dst_names, it_names, name_a, name_b]
        latents.change(_on_store, [latents, model], store_outputs, api_visibility="private", queue=False)
        latents.change(partial(inbox_markdown, TASK, "Mixing"), latents, inbox, api_visibility="private", queue=False)
        model.change(_on_store, [latents, model], store_outputs, api_visibility="private", queue=False)

        mix_inputs = [model, src_seeds, src_names, dst_seeds, dst_names, rng, custom, psi, noise, latents]

        mix = gpu_handler(_on_mix, ctx, 60)

        grid = gpu_handler(_on_grid, ctx, 120)

        mix_btn.click(mix, mix_inputs, [mix_gallery, grid_info, pick, picked], api_name="mix",
                      api_description=API_MIX, concurrency_id="gpu")
        grid_btn.click(grid, mix_inputs, [sheet, grid_info, grid_state], api_name="mixing_grid",
                       api_description=API_GRID, concurrency_id="gpu")
        sheet.select(_on_grid_select, grid_state, [pick, picked, picked_info], api_visibility="private")

        seed_a_btn.click(partial(_on_side_seed, ctx), [model, seed_a], [image_a, ws_a, info_a],
                         api_visibility="private")
        seed_b_btn.click(partial(_on_side_seed, ctx), [model, seed_b], [image_b, ws_b, info_b],
                         api_visibility="private")
        name_a_btn.click(partial(_on_side_latent, ctx), [model, name_a, latents], [image_a, ws_a, info_a],
                         api_visibility="private")
        name_b_btn.click(partial(_on_side_latent, ctx), [model, name_b, latents], [image_b, ws_b, info_b],
                         api_visibility="private")
        uploaded = "uploaded (centre-cropped; the optimisation starts from the mean latent)"
        image_a.upload(lambda: uploaded, None, info_a, api_visibility="private", queue=False)
        image_b.upload(lambda: uploaded, None, info_b, api_visibility="private", queue=False)
        image_a.change(_editor_background, image_a, editor, api_visibility="private", queue=False)
        mode.change(lambda m: gr.update(visible=m == "crossover"), mode, side_b, api_visibility="private",
                    queue=False)

        @gpu(duration=180)
        def run_crossover(mdl, op, a, wa, b, wb, mask, ed, n_steps, n_noise, band, request: gr.Request,
                          progress: gr.Progress = gr.Progress()):
            return _crossover(ctx, mdl, op, a, wa, b, wb, mask, ed, n_steps, n_noise, band, request, progress)

        xo_btn.click(run_crossover, [model, mode, image_a, ws_a, image_b, ws_b, mask_choice, editor, xo_steps,
                                     xo_noise, seam], [xo_gallery, xo_slider, xo_info, pick],
                     api_name="crossover", api_description=API_CROSSOVER, concurrency_id="gpu")
        xo_stop.click(_on_stop, None, None, api_visibility="private", queue=False)

        run_interpolation = gpu_handler(_on_interpolate, ctx, 180)

        it_btn.click(run_interpolation, [model, it_seeds, it_names, space, frames, fps, it_rows, it_custom, it_psi,
                                         want_gif, latents], [video, gif, it_info], api_name="interpolate",
                     api_description=API_INTERPOLATE, concurrency_id="gpu")
        send.click(_on_send, [pick, target, latents], [latents, sent], api_name="send_mixing_latent",
                   api_description="Put the picked mix or crossover result into the session's latent store for "
                                   "another tab ('local-editing', 'text-editing', 'inversion', 'mixing').")
