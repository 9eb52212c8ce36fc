"""Text editing › Compare: StyleCLIP's three methods (Patashnik et al., ICCV 2021) on the same
source and prompts, each with its wall time and CLIP similarity to the target, with the knobs of
their sub-tabs.

Layout and wiring only; the work is `shared.styleclip.methods`.
"""
from __future__ import annotations

from typing import Any

import gradio as gr
import torch

from shared.editing.stylespace import style_stats
from shared.images import to_uint8_hwc
from shared.latent_store import LatentStore
from shared.styleclip import methods
from spaces.handlers import gpu, progress_callback, user_errors
from spaces.text_editing.global_directions import GlobalKnobs
from spaces.text_editing.mapper import MapperKnobs
from spaces.text_editing.optimize import OptimizeKnobs
from spaces.text_editing.source import STOPS, Source, mapper, on_stop, pair, render, setup, target_prompt

API_COMPARE = ("Run the three StyleCLIP methods on the same source and prompts; returns a gallery [source, global, "
               "mapper, optimisation] captioned with wall times, and a Markdown table.")


def _on_compare(ctx: Any, model_id: str, clip_id: str, seed: str, name: str | None, neutral: str, target: str,
                alpha: float, beta: float, choice: str | None, file: Any, strength: float, space: str, steps: float,
                lr: float, l2: float, store: LatentStore | None, request: Any, progress: gr.Progress | None = None):
    """Generator: the three methods one after the other, each shown as soon as it is done."""
    card, G, ws, label, clip, templates = setup(ctx, model_id, clip_id, seed, name, store, progress)
    target = target_prompt(target)
    src = render(G, ws)
    gallery = [(to_uint8_hwc(src)[0], "source")]
    rows: list[str] = []

    def table() -> str:
        return ("| method | wall time | CLIP similarity to the target | note |\n|---|---|---|---|\n" + "\n".join(rows))

    def sim(images: torch.Tensor) -> float:
        return float(methods.clip_similarity(clip, images, target, templates)[0])

    rows.append(f"| source | – | {sim(src):.3f} | {label} |")
    stop = STOPS.start(request)
    report = progress_callback(progress)
    try:
        with user_errors():
            assets = methods.global_assets(card.id, G, clip, lookup=ctx.registry.get, progress=report,
                                           should_stop=stop.is_set)
            res = methods.run_global(G, clip, assets, ws, neutral, target, alpha=float(alpha), beta=float(beta),
                                     templates=templates)
        gallery += pair(G, ws, res.images, f"global directions · {res.seconds * 1000:.0f} ms")[1:]
        rows.append(f"| global directions | {res.seconds * 1000:.0f} ms | {sim(res.images):.3f} | "
                    f"α {alpha:g}, β {beta:.2f}, {res.facts['channels']} channels |")
        yield gallery, table()
        try:
            net, what = mapper(ctx, choice, file, G)
        except gr.Error as e:
            rows.append(f"| latent mapper | – | – | not run: {e} |")
        else:
            with user_errors():
                res = methods.run_mapper(G, net, ws, strength=float(strength))
            gallery += pair(G, ws, res.images, f"mapper · {res.seconds * 1000:.0f} ms")[1:]
            rows.append(f"| latent mapper | {res.seconds * 1000:.0f} ms | {sim(res.images):.3f} | {what} |")
        yield gallery, table()
        if stop.is_set():
            rows.append("| latent optimisation | – | – | stopped before it started |")
            yield gallery, table()
            return
        std = style_stats(G, key=card.id).std if space == "s" else None
        with user_errors():
            res = methods.run_optimize(G, clip, ws, target, templates=templates, space=space, steps=int(steps),
                                       lr=float(lr), l2_weight=float(l2), style_std=std, should_stop=stop.is_set,
                                       on_step=lambda s, v, _: report and report(s / int(steps),
                                                                                 f"optimisation step {s}"))
        gallery += pair(G, ws, res.images, f"optimisation · {res.seconds:.1f} s")[1:]
        rows.append(f"| latent optimisation | {res.seconds:.1f} s | {sim(res.images):.3f} | {space.upper()}, "
                    f"{res.facts['steps']} steps{' (stopped)' if res.facts['stopped'] else ''} |")
        yield gallery, table()
    finally:
        STOPS.finish(request, stop)


def build_section(ctx: Any, source: Source, g: GlobalKnobs, m: MapperKnobs, o: OptimizeKnobs) -> None:
    """The "Compare" sub-tab (the knobs are the other sub-tabs')."""
    with gr.Tab("Compare", id="text-compare"):
        gr.Markdown("The three methods on the same source and prompts, with the knobs of their sub-tabs.")
        with gr.Row():
            run = gr.Button("Compare the three methods", variant="primary", elem_id="text-c-run")
            stop = gr.Button("Stop", variant="stop")
        out = gr.Gallery(label="Source · global · mapper · optimisation", format="png", columns=4,
                         object_fit="contain", elem_id="text-c-out")
        info = gr.Markdown(elem_id="text-c-info")

    @gpu(duration=300)
    def styleclip_compare(model_id, clip_id, seed_text, latent, neutral_text, target_text, a, b, choice, file,
                          k, sp, n, rate, lam, store, request: gr.Request, progress: gr.Progress = gr.Progress()):
        yield from _on_compare(ctx, model_id, clip_id, seed_text, latent, neutral_text, target_text, a, b,
                               choice, file, k, sp, n, rate, lam, store, request, progress=progress)

    run.click(styleclip_compare, [source.model, source.clip, source.seed, source.name, source.neutral, source.target,
                                  g.alpha, g.beta, m.mapper, m.file, m.strength, o.space, o.steps, o.lr, o.l2,
                                  source.latents],
              [out, info], api_name="styleclip_compare", api_description=API_COMPARE, concurrency_id="gpu")
    stop.click(on_stop, None, None, api_visibility="private", queue=False)
