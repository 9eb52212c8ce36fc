"""Text editing › Latent optimisation (StyleCLIP, Patashnik et al., ICCV 2021, Sec. 4): CLIP loss
plus the L2 distance to the source (and optionally ArcFace identity), in W, W+ or S, with the
intermediate images streamed while it runs.

Layout and wiring only; the work is `shared.styleclip.methods.run_optimize`.
"""
from __future__ import annotations

import queue
import threading
from dataclasses import dataclass
from typing import Any

import gradio as gr

from shared.editing.stylespace import style_stats
from shared.images import to_uint8_hwc
from shared.inversion.compare import default_identity, identity_note
from shared.latent_store import LatentStore
from shared.styleclip import methods
from spaces.handlers import gpu, progress_callback, user_errors
from spaces.text_editing.source import STOPS, Source, on_stop, pair, pick, render, setup, target_prompt

SPACES = [("W (one vector for all rows)", "w"), ("W+ (every row)", "w+"), ("S (style channels, StyleGAN2)", "s")]
API_OPTIMIZE = ("StyleCLIP latent optimisation of a source towards the target prompt in space 'w', 'w+' or 's' "
                "(steps, learning rate, L2 weight, ArcFace identity weight). Streams [source, current] while it runs; "
                "returns the final pair and a Markdown report.")


@dataclass(frozen=True)
class OptimizeKnobs:
    space: gr.Radio
    steps: gr.Slider
    lr: gr.Slider
    l2: gr.Slider


def _identity(ctx: Any, weight: float):
    """The ArcFace identity model for a weight > 0 (None for 0), or a gr.Error saying how to get it."""
    if not weight or float(weight) <= 0:
        return None
    with user_errors():
        model = default_identity(ctx.device)
    if model is None:
        raise gr.Error(identity_note(None) + " Or set the identity weight to 0.")
    return model


def _optimize_iter(ctx: Any, model_id: str, clip_id: str, seed: str, name: str | None, target: str, space: str,
                   steps: float, lr: float, l2: float, id_weight: float, store: LatentStore | None, request: Any,
                   progress: gr.Progress | None = None):
    """Generator: yields (gallery, info, pick) with each intermediate image while the optimisation
    runs (in a worker thread), then the result."""
    card, G, ws, label, clip, templates = setup(ctx, model_id, clip_id, seed, name, store, progress)
    if space == "s" and G.arch != "stylegan2":
        raise gr.Error("S-space optimisation needs a StyleGAN2 generator; pick W or W+.")
    target = target_prompt(target)
    identity = _identity(ctx, id_weight)
    steps = int(steps)
    std = style_stats(G, key=card.id).std if space == "s" else None
    source = [(to_uint8_hwc(render(G, ws))[0], "source")]
    updates: queue.Queue = queue.Queue()
    stop = STOPS.start(request)
    report = progress_callback(progress)
    outcome: dict[str, Any] = {}

    def work() -> None:
        try:
            outcome["res"] = methods.run_optimize(
                G, clip, ws, target, templates=templates, space=space, steps=steps, lr=float(lr), l2_weight=float(l2),
                style_std=std, every=max(1, steps // 10), should_stop=stop.is_set, identity=identity,
                identity_weight=float(id_weight or 0), on_step=lambda step, sim, img: updates.put((step, sim, img)))
        except Exception as e:  # noqa: BLE001 - handed to the handler thread, which re-raises it
            outcome["error"] = e
        finally:
            updates.put(None)

    seen: list[tuple[int, float, Any]] = []
    worker = threading.Thread(target=work, daemon=True)
    try:
        worker.start()
        while (item := updates.get()) is not None:
            step, sim, img = item
            seen.append((step, sim, to_uint8_hwc(img)[0]))
            if report is not None:
                report(step / steps, f"step {step} of {steps}, CLIP similarity {sim:.3f}")
            yield (source + [(im, f"step {s} · {v:.3f}") for s, v, im in seen[::-1]],
                   f"Optimising towards **{target}**: step {step} of {steps}, CLIP similarity {sim:.3f}", None)
        worker.join()
    finally:
        stop.set()
        STOPS.finish(request, stop)
    if "error" in outcome:
        with user_errors():
            raise outcome["error"]
    res = outcome["res"]
    f = res.facts
    first, last = f["similarity"]
    info = (f"Latent optimisation towards **{target}** on **{label}** in {space.upper()}: "
            f"{f['steps']} steps{' (stopped)' if f['stopped'] else ''}, lr {lr:g}, λ {l2:g}"
            f"{f', identity weight {id_weight:g}' if identity is not None else ''}; CLIP similarity "
            f"{first:.3f} → {last:.3f} · {res.seconds:.1f} s")
    gallery = pair(G, ws, res.images, f"optimised {space.upper()} · {res.seconds:.1f} s")
    gallery += [(im, f"step {s} · {v:.3f}") for s, v, im in seen]
    yield gallery, info, pick(card, res, label, f"optimised '{target}' in {space.upper()}")


def build_section(ctx: Any, source: Source) -> OptimizeKnobs:
    """The "Latent optimisation" sub-tab; its W/W+ result becomes the tab's pick."""
    with gr.Tab("Latent optimisation", id="text-optimize"):
        with gr.Row():
            with gr.Column(min_width=280):
                space = gr.Radio(SPACES, value="w+", label="Optimise in")
                steps = gr.Slider(5, 300, value=60, step=5, label="Steps (the paper: 300)")
                lr = gr.Slider(0.005, 0.3, value=0.05, step=0.005, label="Learning rate (the paper: 0.1)")
                l2 = gr.Slider(0, 0.1, value=0.008, step=0.001, label="L2 weight λ (distance to the source)")
                id_weight = gr.Slider(0, 0.1, value=0.0, step=0.005,
                                      label="Identity weight (ArcFace; needs its weights, see Models)")
                with gr.Row():
                    run = gr.Button("Optimise", variant="primary", elem_id="text-o-run")
                    stop = gr.Button("Stop", variant="stop")
            with gr.Column(min_width=320, scale=2):
                out = gr.Gallery(label="Source, result and intermediate steps", format="png", columns=4,
                                 object_fit="contain", elem_id="text-o-out")
                info = gr.Markdown(elem_id="text-o-info")

    @gpu(duration=300)
    def styleclip_optimize(model_id, clip_id, seed_text, latent, target_text, sp, n, rate, lam, idw, store,
                           request: gr.Request, progress: gr.Progress = gr.Progress()):
        yield from _optimize_iter(ctx, model_id, clip_id, seed_text, latent, target_text, sp, n, rate, lam, idw,
                                  store, request, progress=progress)

    run.click(styleclip_optimize, [source.model, source.clip, source.seed, source.name, source.target, space, steps,
                                   lr, l2, id_weight, source.latents],
              [out, info, source.pick], api_name="styleclip_optimize", api_description=API_OPTIMIZE,
              concurrency_id="gpu")
    stop.click(on_stop, None, None, api_visibility="private", queue=False)
    return OptimizeKnobs(space, steps, lr, l2)
