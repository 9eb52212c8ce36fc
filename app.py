"""StyleGAN Hub: one Gradio page with a tab per StyleGAN application family.

Layout and wiring only, as in hysts's Spaces: build the shared services once (device, model
cache, settings), let each tab in `spaces/` build itself from them, launch with a bounded queue.
Nothing heavy happens at import or start-up: models load on their first request.

    python app.py [--host 127.0.0.1] [--port 7860]

Host and port also come from Gradio's own GRADIO_SERVER_NAME / GRADIO_SERVER_PORT.
"""
from __future__ import annotations

import os

# Before gradio is imported: otherwise it contacts its version-check and analytics hosts.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import argparse  # noqa: E402
import dataclasses  # noqa: E402
from collections.abc import Sequence  # noqa: E402
from functools import partial  # noqa: E402

# The tabs (package `spaces`) before gradio: our package loads Hugging Face's `spaces` (ZeroGPU),
# which refuses to load inside gradio's own import, so its GPU decorators would stay no-ops on a Space.
from spaces import (generate, inversion, local_editing, mixing, models, rendering_3d, reposing,  # noqa: E402, I001
                    text_editing)
from spaces.handlers import check_number_inputs, guard_handlers, launch_limits, write_results_atomically  # noqa: E402

import gradio as gr  # noqa: E402

from shared import hub  # noqa: E402
from shared.availability import availability  # noqa: E402
from shared.context import HubContext, create_context  # noqa: E402
from shared.latent_store import LatentStore  # noqa: E402

TABS = (generate, inversion, mixing, local_editing, reposing, rendering_3d, text_editing, models)

TITLE = "StyleGAN Hub"
HEADER = """# StyleGAN Hub
StyleGAN applications side by side: generate, invert, mix, edit, repose, render in 3D and edit by
text. Every action is also an API endpoint (see "Use via API" at the bottom of the page)."""



def world_line(ctx: HubContext) -> str:
    """Which world this page runs in: the offline demo world, or the Hub's pretrained networks."""
    real = [c for c in ctx.registry.cards() if "generation" in c.tasks and c.family != "demo"]
    ready = [c.id for c in real if availability(c, online=False).ready]
    demo = ("its **demo world**: 64 px portraits from small networks this project trained, shipped in the "
            "repository")
    if hub.hub_online():
        return (f"**Hub world:** pretrained networks download from the Hugging Face Hub on first use (each Model "
                f"list says what a choice needs); the default is {demo}.")
    have = f", and the {len(ready)} pretrained generator(s) already on this machine" if ready else ""
    return (f"**Offline demo world:** the Hugging Face Hub cannot be reached, so the hub runs {demo}{have}. "
            f"The other pretrained models stay listed with what they need (the Hub, or a file you download by "
            f"hand).")


THEME = gr.themes.Soft(primary_hue="indigo", secondary_hue="slate")  # bundled fonts only, no downloads
CSS = """
#status-line { font-size: 0.85em; opacity: 0.85; }
#generate-gallery { min-height: 260px; }
#world-line { margin-top: -0.5em; }
/* Result galleries grow with their images instead of scrolling (or cropping) them inside a fixed
   box, and their columns may shrink below 100 px so a phone-sized window shows every image whole. */
.gradio-container .block:has(.grid-wrap) { height: auto !important; }
.gradio-container .grid-wrap { height: auto !important; max-height: none !important; min-height: 0 !important;
                               overflow-y: visible !important; }
.gradio-container .grid-container { grid-template-columns: repeat(var(--grid-cols), minmax(0, 1fr)) !important;
                                    grid-template-rows: none !important; grid-auto-rows: auto !important; }
/* A gallery caption ("seed 3") goes under its image, not over its lower corner. */
.gradio-container .thumbnail-item { aspect-ratio: auto !important; height: auto !important; display: flex !important;
                                    flex-direction: column; }
.gradio-container .thumbnail-item > img { aspect-ratio: 1 / 1; height: auto !important; }
.gradio-container .thumbnail-item .caption-label { position: static !important; max-width: none !important;
                                                   border: 0 !important; border-radius: 0 !important; text-align: center; }
/* A component's floating label and icon buttons sit above its pictures instead of over their top rows
   (the sources of the mixing grid, the first thumbnail of a gallery). */
.gradio-container .block:has(> [data-testid="block-label"]) .image-frame { padding-top: 2.1rem;
                                                                           box-sizing: border-box; }
.gradio-container .block:has(> [data-testid="block-label"]) .grid-wrap { padding-top: 2.4rem !important; }
.gradio-container .block:has(> [data-testid="block-label"]) .image-container:has(> .slider-wrap) {
    padding-top: 2.1rem; box-sizing: border-box; }
/* small generators (64 px) shown large and crisp in single-image views */
.pixel-view img { image-rendering: pixelated; min-width: 220px; min-height: 220px; object-fit: contain; }
"""


def build_demo(ctx: HubContext) -> gr.Blocks:
    """The whole page: header, status line, one tab per family. Launching is the caller's job."""
    write_results_atomically()  # identical results must not be rewritten while served (issue 19)
    with gr.Blocks(title=TITLE) as demo:
        gr.Markdown(HEADER)
        world = gr.Markdown(world_line(ctx), elem_id="world-line")
        status = gr.Markdown(ctx.status_line(), elem_id="status-line")
        page_ctx = dataclasses.replace(ctx, latents=gr.State(LatentStore()))
        with gr.Tabs():
            for tab in TABS:
                tab.build_tab(page_ctx)
        demo.load(ctx.status_line, None, status, api_name="status", queue=False,
                  api_description="One Markdown line: device, which op path runs, Hub online or offline, "
                                  "and the Hub cache folder.")
        demo.load(partial(world_line, ctx), None, world, api_visibility="private", queue=False)
        check_number_inputs(demo)  # API calls: strings and NaN get a sentence, not a trace (issue 19)
        guard_handlers(demo)  # an unexpected exception: trace to the log, a sentence to the user (issue 19)
    return demo


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Launch the StyleGAN Hub web app.")
    parser.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
                        help="interface to listen on (env GRADIO_SERVER_NAME; default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", "7860")),
                        help="port (env GRADIO_SERVER_PORT; default 7860)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    ctx = create_context()
    demo = build_demo(ctx)
    demo.queue(max_size=ctx.settings.queue_max_size, default_concurrency_limit=ctx.settings.gpu_concurrency)
    demo.launch(server_name=args.host, server_port=args.port, theme=THEME, css=CSS, **launch_limits())


if __name__ == "__main__":
    main()
