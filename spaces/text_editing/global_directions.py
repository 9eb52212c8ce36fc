"""Text editing › Global directions (StyleCLIP, Patashnik et al., ICCV 2021, Sec. 6): a CLIP text
direction mapped onto StyleSpace channels through a relevance matrix, with live α/β sliders.

Layout and wiring only; the work is `shared.styleclip.methods` (relevance matrix, the edit).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr

from shared.latent_store import LatentStore
from shared.styleclip import methods
from shared.styleclip.prompts import check_prompt
from spaces.examples import run_after_fill
from spaces.handlers import gpu, progress_callback, user_errors
from spaces.text_editing.source import Source, pair, setup

API_GLOBAL = ("StyleCLIP global directions: edit a source (seed text or session latent) from a neutral to a target "
              "prompt with strength alpha and disentanglement threshold beta. The first call for a generator/CLIP "
              "pair builds its relevance matrix (minutes on a CPU; cached). Returns [source, edited], a Markdown "
              "report (channels used, top channels, time).")


@dataclass(frozen=True)
class GlobalKnobs:
    alpha: gr.Slider
    beta: gr.Slider


def _top_table(top: list[tuple[int, int, float]]) -> str:
    rows = "\n".join(f"| {layer} | {c} | {r:+.3f} |" for layer, c, r in top)
    return ("| layer | channel | relevance r |\n|---|---|---|\n" + rows +
            "\n\nTry one alone in **Local editing › StyleSpace channels** (same layer and channel numbers).")


def _on_global(ctx: Any, model_id: str, clip_id: str, seed: str, name: str | None, neutral: str, target: str,
               alpha: float, beta: float, store: LatentStore | None, progress: gr.Progress | None = None):
    card, G, ws, label, clip, templates = setup(ctx, model_id, clip_id, seed, name, store, progress)
    with user_errors():
        assets = methods.global_assets(card.id, G, clip, lookup=ctx.registry.get,
                                       progress=progress_callback(progress))
        res = methods.run_global(G, clip, assets, ws, neutral, target, alpha=float(alpha), beta=float(beta),
                                 templates=templates)
    f = res.facts
    info = (f"Global direction **{check_prompt(neutral)} → {check_prompt(target)}** on **{label}**: α {alpha:g}, "
            f"β {beta:.3f}, **{f['channels']} channels** changed · {res.seconds * 1000:.0f} ms "
            f"(matrix: {assets.note})\n\n" + _top_table(f["top"]))
    return pair(G, ws, res.images, f"global α {alpha:g} β {beta:.2f} · {res.seconds * 1000:.0f} ms"), info, None


def build_section(ctx: Any, source: Source, examples: gr.Examples | None = None) -> GlobalKnobs:
    """The "Global directions" sub-tab (its edit lives in S, so the tab's pick is cleared); a click on
    one of the tab's prompt `examples` runs it."""
    with gr.Tab("Global directions", id="text-global"):
        with gr.Row():
            with gr.Column(min_width=280):
                alpha = gr.Slider(-10, 10, value=2, step=0.5, label="Strength α (std of the top channel)",
                                  elem_id="text-alpha")
                beta = gr.Slider(0, 0.5, value=0.3, step=0.01,
                                 label="Disentanglement β (channels with relevance |r| below it are left alone)",
                                 elem_id="text-beta")
                run = gr.Button("Edit with global directions", variant="primary", elem_id="text-g-run")
                gr.Markdown("Defaults suit the demo CLIP (192-dimensional: its relevances run higher); "
                            "StyleCLIP's FFHQ examples use β ≈ 0.1–0.15 and α ≈ 4 with CLIP ViT-B/32. The first "
                            "edit for a generator/CLIP pair measures its relevance matrix "
                            "(each style channel moved ±5 std on 8 latents; a few minutes on a CPU, then "
                            "cached). After that the sliders update live. FFHQ config-f with CLIP ViT-B/32 "
                            "uses StyleCLIP's own `fs3.npy` when you have it (see the Models tab).")
            with gr.Column(min_width=320, scale=2):
                out = gr.Gallery(label="Source and edit", format="png", columns=2,
                                 object_fit="contain", elem_id="text-g-out")
                info = gr.Markdown(elem_id="text-g-info")

    @gpu(duration=120)
    def styleclip_global(model_id, clip_id, seed_text, latent, neutral_text, target_text, a, b, store,
                         progress: gr.Progress = gr.Progress()):
        return _on_global(ctx, model_id, clip_id, seed_text, latent, neutral_text, target_text, a, b, store,
                          progress=progress)

    inputs = [source.model, source.clip, source.seed, source.name, source.neutral, source.target, alpha, beta,
              source.latents]
    if examples is not None:
        run_after_fill(examples, styleclip_global, inputs, [out, info, source.pick], concurrency_id="gpu")
    run.click(styleclip_global, inputs, [out, info, source.pick], api_name="styleclip_global",
              api_description=API_GLOBAL, concurrency_id="gpu")
    for slider in (alpha, beta):
        slider.release(styleclip_global, inputs, [out, info, source.pick], api_visibility="private",
                       concurrency_id="gpu", show_progress="minimal")
    return GlobalKnobs(alpha, beta)
