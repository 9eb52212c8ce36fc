"""Mixing › Style mixing (Karras et al., "A Style-Based Generator Architecture for Generative
Adversarial Networks", CVPR 2019): the paper's grid (sources across the top, destinations down the
side) and a single mix, with a grid cell pickable for sending.

Layout and wiring only; the work is `shared.mixing` (mixes, the grid sheet).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import gradio as gr
import numpy as np
import torch

from shared.generation import NOISE_MODES
from shared.images import to_uint8_hwc
from shared.latent_store import LatentStore
from shared.mixing import MAX_GRID, PAPER_FIGURE_BANDS, mix_styles, style_mix_images, style_mixing_grid
from spaces.examples import run_after_fill
from spaces.handlers import gpu_handler, progress_callback, user_errors
from spaces.latents import Pick
from spaces.mixing.source import (PAPER_CHOICE, RANGE_CHOICES, Source, generator, keys, latent_names, latest_name,
                                  rows, rows_text)

API_MIX = ("One style mix: the first destination with the chosen rows (range name or custom rows such as '0-3') "
           "taken from the first source. Sources/destinations are seeds ('1,2,3') and/or names of this "
           "session's latents. Returns [destination, source, mix] PNGs and a Markdown line.")
API_GRID = ("The paper's style-mixing grid (up to 6 x 6): sources across the top, destinations down the side, "
            "each cell the destination with the chosen rows from the source. Returns the sheet as PNG and a "
            "Markdown line.")


@dataclass(frozen=True, eq=False)
class GridState:
    """What a session keeps of its last grid: the mixes' latents, to pick a cell."""
    model_id: str
    mixes_ws: np.ndarray            # [D, S, num_ws, w_dim]
    images: np.ndarray              # uint8 [D, S, H, W, 3]
    sources: tuple[str, ...]
    destinations: tuple[str, ...]
    rows: tuple[int, ...]
    per_row: tuple[tuple[int, ...], ...] = ()


def _mix_inputs(ctx: Any, model_id: str, src_seeds: str, src_names: list[str] | None, dst_seeds: str,
                dst_names: list[str] | None, choice: str, custom: str, psi: float, store: LatentStore | None,
                progress: gr.Progress | None):
    """Model, sources, destinations (W+ codes and labels) and rows of a mix or grid request."""
    card, G = generator(ctx, model_id, progress)
    src, src_labels = keys(G, card.id, src_seeds, src_names, store, psi, "source", most=MAX_GRID)
    dst, dst_labels = keys(G, card.id, dst_seeds, dst_names, store, psi, "destination", most=MAX_GRID)
    return card, G, src, src_labels, dst, dst_labels, rows(G, choice, custom)


def _on_mix(ctx: Any, model_id: str, src_seeds: str, src_names: list[str] | None, dst_seeds: str,
            dst_names: list[str] | None, choice: str, custom: str, psi: float, noise_mode: str,
            store: LatentStore | None, progress: gr.Progress | None = None):
    t0 = time.perf_counter()
    card, G, src, src_labels, dst, dst_labels, rows_ = _mix_inputs(ctx, model_id, src_seeds, src_names, dst_seeds,
                                                                   dst_names, choice, custom, psi, store, progress)
    with user_errors():
        imgs = style_mix_images(G, torch.cat([dst[:1], src[:1], dst[:1]]),
                                torch.cat([dst[:1], src[:1], src[:1]]), rows_, noise_mode=noise_mode)
        ws = mix_styles(G, dst[:1], src[:1], rows_).numpy()
    u8 = to_uint8_hwc(imgs)
    label = f"{dst_labels[0]} with rows {rows_text(rows_)} of {src_labels[0]}"
    gallery = [(u8[0], f"destination: {dst_labels[0]}"), (u8[1], f"source: {src_labels[0]}"), (u8[2], "mix")]
    info = f"Mix: **{label}** · {time.perf_counter() - t0:.2f} s"
    return gallery, info, Pick(card.id, ws.astype(np.float32), label), u8[2]


def _on_grid(ctx: Any, model_id: str, src_seeds: str, src_names: list[str] | None, dst_seeds: str,
             dst_names: list[str] | None, choice: str, custom: str, psi: float, noise_mode: str,
             store: LatentStore | None, progress: gr.Progress | None = None):
    t0 = time.perf_counter()
    paper = choice == "paper"
    card, G, src, src_labels, dst, dst_labels, rows_ = _mix_inputs(ctx, model_id, src_seeds, src_names, dst_seeds,
                                                                   dst_names, "coarse" if paper else choice, custom,
                                                                   psi, store, progress)
    bands = PAPER_FIGURE_BANDS[:len(dst_labels)] if paper else None
    with user_errors():
        grid = style_mixing_grid(G, src, dst, rows_, noise_mode=noise_mode, progress=progress_callback(progress),
                                 per_destination=bands)
    state = GridState(card.id, grid.mixes_ws.numpy().astype(np.float32),
                      to_uint8_hwc(grid.mixes.reshape(-1, *grid.mixes.shape[2:])).reshape(
                          *grid.mixes.shape[:2], *grid.mixes.shape[3:], 3),
                      tuple(src_labels), tuple(dst_labels), tuple(grid.rows), grid.per_row)
    if paper:
        what = ", ".join(f"{b} ({rows_text(r)})" for b, r in zip(bands, grid.per_row))
        info = (f"{len(dst_labels)} × {len(src_labels)} grid in the StyleGAN paper's layout (its figure 3): the "
                f"destination rows take, in order, {what} from each column's source · "
                f"{time.perf_counter() - t0:.2f} s. Click a cell to pick that mix.")
    else:
        info = (f"{len(dst_labels)} × {len(src_labels)} grid: each cell is its row's destination with rows "
                f"**{rows_text(rows_)}** from its column's source · {time.perf_counter() - t0:.2f} s. "
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
    taken = state.per_row[i] if state.per_row else state.rows
    label = f"{state.destinations[i]} with rows {rows_text(taken)} of {state.sources[j]}"
    return Pick(state.model_id, state.mixes_ws[i, j][None], label), state.images[i, j], f"Picked: **{label}**"


def _on_store(store: LatentStore | None, model_id: str | None):
    """The source and destination pickers list this session's latents of the chosen model."""
    names = latent_names(store, model_id)
    return (gr.update(choices=names, value=latest_name(store, model_id)), gr.update(choices=names, value=[]))


def build_section(ctx: Any, source: Source) -> None:
    """The "Style mixing" sub-tab: grid and single mix; a mix or a picked cell becomes the tab's pick."""
    with gr.Tab("Style mixing", id="mixing-style"):
        with gr.Row():
            with gr.Column(min_width=300):
                src_seeds = gr.Textbox("1,2,3", label="Sources (across the top): seeds",
                                       info="give the chosen rows; e.g. 1,2,3 or 10-15 (at most 6)")
                src_names = gr.Dropdown([], multiselect=True, label="Sources: this session's latents",
                                        allow_custom_value=True)
                dst_seeds = gr.Textbox("4,5,6", label="Destinations (down the side): seeds",
                                       info="keep all other rows")
                dst_names = gr.Dropdown([], multiselect=True, label="Destinations: this session's latents",
                                        allow_custom_value=True)
                rng = gr.Radio(RANGE_CHOICES + [PAPER_CHOICE], value="coarse", label="Rows taken from the sources")
                custom = gr.Textbox("", label="Custom rows", placeholder="e.g. 0-3 or 4,5,6")
                with gr.Row():
                    psi = gr.Slider(0, 1.5, value=1.0, step=0.05, label="Truncation ψ (seeds)")
                    noise = gr.Radio(list(NOISE_MODES), value="const", label="Noise")
                examples = gr.Examples([["1,2,3", "4,5,6", "coarse"], ["1,2,3", "4,5,6", "middle"],
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
                mix_gallery = gr.Gallery(label="Mix", format="png", columns=3,
                                         object_fit="contain", elem_id="mixing-mix")
                with gr.Row():
                    picked = gr.Image(label="Picked mix", format="png", interactive=False, height=180,
                                      elem_classes=["pixel-view"])
                    picked_info = gr.Markdown()
        grid_state = gr.State(None)

    for trigger in (source.latents.change, source.model.change):
        trigger(_on_store, [source.latents, source.model], [src_names, dst_names], api_visibility="private",
                queue=False)
    inputs = [source.model, src_seeds, src_names, dst_seeds, dst_names, rng, custom, psi, noise, source.latents]
    mix_btn.click(gpu_handler(_on_mix, ctx, 60), inputs, [mix_gallery, grid_info, source.pick, picked],
                  api_name="mix", api_description=API_MIX, concurrency_id="gpu")
    run_after_fill(examples, gpu_handler(_on_grid, ctx, 120), inputs, [sheet, grid_info, grid_state],
                   concurrency_id="gpu")
    grid_btn.click(gpu_handler(_on_grid, ctx, 120), inputs, [sheet, grid_info, grid_state], api_name="mixing_grid",
                   api_description=API_GRID, concurrency_id="gpu")
    sheet.select(_on_grid_select, grid_state, [source.pick, picked, picked_info], api_visibility="private")
