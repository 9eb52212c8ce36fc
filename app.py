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

import gradio as gr  # noqa: E402

from shared.context import HubContext, create_context  # noqa: E402
from shared.latent_store import LatentStore  # noqa: E402
from spaces import (generate, inversion, local_editing, mixing, models, rendering_3d, reposing,  # noqa: E402
                    text_editing)

TABS = (generate, inversion, mixing, local_editing, reposing, rendering_3d, text_editing, models)

TITLE = "StyleGAN Hub"
HEADER = """# StyleGAN Hub
StyleGAN applications side by side on real pretrained networks from the Hugging Face Hub:
generate, invert, mix, edit, repose, render in 3D and edit by text. Every action is also an API
endpoint (see "Use via API" at the bottom of the page)."""

THEME = gr.themes.Soft(primary_hue="indigo", secondary_hue="slate")  # bundled fonts only, no downloads
CSS = """
#status-line { font-size: 0.85em; opacity: 0.85; }
#generate-gallery { min-height: 260px; }
/* small generators (64 px) shown large and crisp in single-image views */
.pixel-view img { image-rendering: pixelated; min-width: 220px; min-height: 220px; object-fit: contain; }
"""


def build_demo(ctx: HubContext) -> gr.Blocks:
    """The whole page: header, status line, one tab per family. Launching is the caller's job."""
    with gr.Blocks(title=TITLE) as demo:
        gr.Markdown(HEADER)
        status = gr.Markdown(ctx.status_line(), elem_id="status-line")
        page_ctx = dataclasses.replace(ctx, latents=gr.State(LatentStore()))
        with gr.Tabs():
            for tab in TABS:
                tab.build_tab(page_ctx)
        demo.load(ctx.status_line, None, status, api_name="status", queue=False,
                  api_description="One Markdown line: device, which op path runs, Hub online or offline, "
                                  "and the Hub cache folder.")
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
    demo.launch(server_name=args.host, server_port=args.port, theme=THEME, css=CSS)


if __name__ == "__main__":
    main()
