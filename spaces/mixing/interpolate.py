"""Mixing › Interpolation: walks through seeds and session latents in Z (slerp, as in the StyleGAN
paper's perceptual path length), W or W+ (lerp), optionally moving only some rows, as MP4 and GIF.

Layout and wiring only; the work is `shared.mixing` (paths, frames, video and GIF writers).
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import gradio as gr

from shared.images import to_uint8_hwc
from shared.latent_store import LatentStore
from shared.latents import parse_seeds, z_from_seeds
from shared.mixing import interpolate, write_gif, write_video
from spaces.examples import run_after_fill
from spaces.handlers import gpu_handler, progress_callback, user_errors
from spaces.mixing.source import RANGE_CHOICES, Source, generator, keys, latent_names, latest_name, rows, rows_text

INTERP_ROWS = [("All rows", "all")] + RANGE_CHOICES
VIDEO_MIN_SIDE = 256   # small models are upscaled (nearest) to at least this for the video
API_INTERPOLATE = ("Interpolate through seeds and/or session latents in Z (slerp, seeds only), W or W+ (lerp), "
                   "optionally only some rows. Returns the MP4, the GIF (when asked) and a Markdown line.")


def _on_interpolate(ctx: Any, model_id: str, seeds: str, names: list[str] | None, space: str, frames: float,
                    fps: float, rows_choice: str, custom: str, psi: float, want_gif: bool, store: LatentStore | None,
                    progress: gr.Progress | None = None):
    card, G = generator(ctx, model_id, progress)
    t0 = time.perf_counter()
    names = list(names or [])
    if space == "z":
        if names:
            raise gr.Error("Z interpolation works on seeds only (a session latent has no z); use W or W+, or "
                           "clear the latents.")
        with user_errors():
            seed_list = parse_seeds(seeds, max_count=32)
            latents = z_from_seeds(G, seed_list)
        count = len(seed_list)
    else:
        latents, _ = keys(G, card.id, seeds, names, store, psi, "key", most=32)
        count = latents.shape[0]
    if count < 2:
        raise gr.Error("Interpolation needs at least two keys: two seeds (e.g. 1,2) or two latents.")
    rows_ = None if rows_choice in (None, "all") else rows(G, rows_choice, custom)
    with user_errors():
        clip = interpolate(G, latents, space=space, frames_per_segment=int(frames), rows=rows_, psi=float(psi),
                           progress=progress_callback(progress))
        k = max(1, VIDEO_MIN_SIDE // int(G.img_resolution))
        u8 = to_uint8_hwc(clip)
        if k > 1:
            u8 = u8.repeat(k, axis=1).repeat(k, axis=2)
        out = Path(tempfile.mkdtemp(prefix="hub-interp-"))
        video = write_video(u8, out / "interpolation.mp4", fps=float(fps))
        gif = write_gif(u8, out / "interpolation.gif", fps=min(float(fps), 50)) if want_gif else None
    rows_note = "all rows" if rows_ is None else f"rows {rows_text(rows_)} (the others stay at the first key)"
    info = (f"{u8.shape[0]} frames through {count} keys in {space.upper()} ({rows_note}), {u8.shape[2]}×{u8.shape[1]} px "
            f"at {float(fps):g} fps · {time.perf_counter() - t0:.1f} s")
    return video, gif, info


def build_section(ctx: Any, source: Source) -> None:
    """The "Interpolation" sub-tab."""
    with gr.Tab("Interpolation", id="mixing-interpolation"):
        with gr.Row():
            with gr.Column(min_width=300):
                seeds = gr.Textbox("1,2,3", label="Keys: seeds", info="in this order, after the latents")
                names = gr.Dropdown([], multiselect=True, label="Keys: this session's latents", allow_custom_value=True)
                space = gr.Radio([("Z (slerp; seeds only)", "z"), ("W (lerp)", "w"), ("W+ (lerp)", "w+")],
                                 value="w", label="Space")
                rows_choice = gr.Radio(INTERP_ROWS, value="all", label="Rows that move")
                custom = gr.Textbox("", label="Custom rows", placeholder="e.g. 0-3")
                with gr.Row():
                    frames = gr.Slider(2, 120, value=30, step=1, label="Frames per segment")
                    fps = gr.Slider(1, 60, value=24, step=1, label="Frames per second")
                with gr.Row():
                    psi = gr.Slider(0, 1.5, value=1.0, step=0.05, label="Truncation ψ")
                    want_gif = gr.Checkbox(True, label="Also make a GIF")
                examples = gr.Examples([["1,2,3,1", "w", "all"], ["1,2", "z", "all"], ["4,5", "w+", "coarse"]],
                            inputs=[seeds, space, rows_choice], label="Demo-world walks",
                            example_labels=["loop through 3 faces in W", "slerp in Z",
                                            "only the coarse rows move (pose, shape)"],
                            api_visibility="private")
                run = gr.Button("Make video", variant="primary", elem_id="mixing-interp-run")
            with gr.Column(min_width=320, scale=2):
                video = gr.Video(label="Interpolation (MP4)", format="mp4", elem_id="mixing-video",
                                 loop=True, autoplay=True)
                gif = gr.File(label="GIF", elem_id="mixing-gif")
                info = gr.Markdown(elem_id="mixing-interp-info")

    for trigger in (source.latents.change, source.model.change):
        trigger(lambda s, m: gr.update(choices=latent_names(s, m), value=latest_name(s, m)),
                [source.latents, source.model], names, api_visibility="private", queue=False)
    walk_inputs = [source.model, seeds, names, space, frames, fps, rows_choice, custom, psi, want_gif, source.latents]
    run_after_fill(examples, gpu_handler(_on_interpolate, ctx, 180), walk_inputs, [video, gif, info],
                   concurrency_id="gpu")
    run.click(gpu_handler(_on_interpolate, ctx, 180), walk_inputs,
              [video, gif, info], api_name="interpolate", api_description=API_INTERPOLATE, concurrency_id="gpu")
