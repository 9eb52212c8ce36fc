"""Text editing tab: StyleCLIP's three methods (Patashnik et al., ICCV 2021, orpatashnik/StyleCLIP):
global directions, the latent mapper and latent optimisation, on any StyleGAN generator of the
registry and any CLIP that open_clip builds, on seeds or on latents the session sent here.

Layout and wiring only; the work is `shared.styleclip` (methods, prompts, relevance matrices,
mappers). Each method has a sub-tab with its knobs, and "Compare" runs the three on the same
source and prompt with their wall times.
"""
from __future__ import annotations

import queue
import threading
from dataclasses import dataclass
from functools import partial
from typing import Any

import gradio as gr
import numpy as np
import torch

from shared import hub
from shared.editing.stylespace import style_stats
from shared.images import to_uint8_hwc
from shared.latent_store import LatentStore
from shared.styleclip import methods
from shared.styleclip.clip import clip_for
from shared.styleclip.prompts import check_prompt, templates_for
from spaces.family import inbox_markdown
from spaces.handlers import (StopFlags, gpu, model_card, progress_callback, send_latent, source_latent,
                             stylegan_generator, user_errors)
from spaces.model_picker import card_summary, default_model, model_choices

TASK = "text-editing"
ARCHS = ("stylegan2", "stylegan3")
CLIP_ARCHS = ("clip-vit", "open-clip")
SPACES = [("W (one vector for all rows)", "w"), ("W+ (every row)", "w+"), ("S (style channels, StyleGAN2)", "s")]
SEND_TARGETS = (("local-editing", "Local editing"), ("mixing", "Mixing"), ("inversion", "Inversion"),
                ("text-editing", "Text editing"))
_STOPS = StopFlags()

INTRO = """### Text editing
Describe the change and let CLIP steer the generator, with StyleCLIP's three methods: **global
directions** (a text direction mapped onto StyleSpace channels through a relevance matrix: fast,
with live α/β sliders), the **latent mapper** (a small network trained for one prompt), and
**latent optimisation** (CLIP loss plus distance to the source, in W, W+ or S: slow, but any
prompt). **Compare** runs all three on the same source and prompt and shows their wall times.
On the demo model the demo CLIP knows the demo world's words: smiling, glasses, hair colours
(black, brown, blonde, red, grey), beard, turned left/right."""

API_GLOBAL = ("StyleCLIP global directions: edit a source (seed text or session latent) from a neutral to a target "
              "prompt with strength alpha and disentanglement threshold beta. The first call for a generator/CLIP "
              "pair builds its relevance matrix (minutes on a CPU; cached). Returns [source, edited], a Markdown "
              "report (channels used, top channels, time).")
API_MAPPER = ("StyleCLIP latent mapper: edit a source with a mapper ('demo:<prompt>' on the demo model, a registered "
              "mapper id, or an uploaded .pt/.safetensors) at a strength (0.1 = the paper's). Returns [source, "
              "edited] and a Markdown line.")
API_OPTIMIZE = ("StyleCLIP latent optimisation of a source towards the target prompt in space 'w', 'w+' or 's' "
                "(steps, learning rate, L2 weight, ArcFace identity weight). Streams [source, current] while it runs; returns the final "
                "pair and a Markdown report.")
API_COMPARE = ("Run the three StyleCLIP methods on the same source and prompts; returns a gallery [source, global, "
               "mapper, optimisation] captioned with wall times, and a Markdown table.")


@dataclass(frozen=True, eq=False)
class TextPick:
    model_id: str
    ws: np.ndarray | None       # [1, num_ws, w_dim]; None for S-space edits
    label: str


# ---- choices ---------------------------------------------------------------------------------------
def _generator_choices(ctx: Any) -> list[tuple[str, str]]:
    return [(label, i) for label, i in model_choices(ctx, TASK) if ctx.registry.get(i).arch in ARCHS]


def _clip_choices(ctx: Any) -> list[tuple[str, str]]:
    return [(i, i) for i in ctx.registry.ids(task=TASK) if ctx.registry.get(i).arch in CLIP_ARCHS]


def _is_demo(ctx: Any, model_id: str | None) -> bool:
    return model_id == getattr(ctx.registry, "DEFAULT_GENERATOR_ID", None)


def _default_clip(ctx: Any, model_id: str | None) -> str | None:
    ids = [i for _, i in _clip_choices(ctx)]
    want = "demo-portraits-clip" if _is_demo(ctx, model_id) else "clip-vit-b-32"
    return want if want in ids else (ids[0] if ids else None)


def _mapper_choices(ctx: Any, model_id: str | None) -> list[tuple[str, str]]:
    from shared.styleclip.mapper import demo_mappers
    out = []
    if _is_demo(ctx, model_id):
        out += [(f"demo: {prompt}", f"demo:{prompt}") for prompt in demo_mappers()]
    for i in ctx.registry.ids(task=TASK):
        card = ctx.registry.get(i)
        cfg = card.arch_config or {}
        if card.arch == "styleclip-levels-mapper" and model_id and model_id.startswith(cfg.get("for", "-")):
            here = "" if hub.cached_path(card) else " (file not on this machine)"
            out.append((f"{i}: {cfg.get('prompt', '')}{here}", i))
    return out


def _on_model(ctx: Any, model_id: str | None, store: LatentStore | None):
    store = store or LatentStore()
    names = store.list(model_id)
    latest = store.latest_for(TASK)
    mappers = _mapper_choices(ctx, model_id)
    return (card_summary(ctx.registry.get(model_id) if model_id else None),
            gr.update(value=_default_clip(ctx, model_id)),
            gr.update(choices=names, value=latest[0] if latest and latest[0] in names else None),
            gr.update(choices=mappers, value=mappers[0][1] if mappers else None))


# ---- shared pieces of the handlers -----------------------------------------------------------------
def _clip(ctx: Any, clip_id: str | None, progress: gr.Progress | None = None):
    card = model_card(ctx, clip_id)
    if card.arch not in CLIP_ARCHS:
        raise gr.Error(f"{card.id} is not a CLIP model; pick one from the CLIP list.")
    report = progress_callback(progress)
    with user_errors():
        return card, clip_for(card.id, ctx.device, lookup=ctx.registry.get,
                              fetch=lambda c: hub.fetch(c, progress=report))


def _setup(ctx: Any, model_id: str, clip_id: str | None, seed: str, name: str | None, store: LatentStore | None,
           progress: gr.Progress | None, need_clip: bool = True):
    card, G = stylegan_generator(ctx, model_id, "text editing", progress)
    ws, label = source_latent(G, card.id, seed, name, store)
    if not need_clip:
        return card, G, ws, label, None, None
    clip_card, clip = _clip(ctx, clip_id, progress)
    return card, G, ws, label, clip, templates_for(clip_card)


def _render(G: Any, ws: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return G.synthesis(ws.to(next(G.parameters()).device), noise_mode="const").float().cpu().clamp(-1, 1)


def _pair(G: Any, ws: torch.Tensor, edited: torch.Tensor, caption: str):
    u8 = to_uint8_hwc(torch.cat([_render(G, ws), edited.cpu()]))
    return [(u8[0], "source"), (u8[1], caption)]


def _pick(card: Any, res: methods.TextEdit, label: str, what: str) -> TextPick:
    ws = None if res.ws is None else res.ws[:1].numpy()
    return TextPick(card.id, ws, f"{label} · {what}")


def _top_table(top: list[tuple[int, int, float]]) -> str:
    rows = "\n".join(f"| {layer} | {c} | {r:+.3f} |" for layer, c, r in top)
    return ("| layer | channel | relevance r |\n|---|---|---|\n" + rows +
            "\n\nTry one alone in **Local editing › StyleSpace channels** (same layer and channel numbers).")


def _mapper(ctx: Any, choice: str | None, file: Any, G: Any):
    from shared.styleclip.mapper import demo_mappers, load_mapper
    with user_errors():
        if file is not None:
            path = file if isinstance(file, str) else getattr(file, "name", None) or file.get("path")
            mapper, meta = load_mapper(path)
            what = f"the uploaded mapper ({meta.get('prompt') or 'prompt unknown'})"
        elif choice and choice.startswith("demo:"):
            paths = demo_mappers()
            prompt = choice.removeprefix("demo:")
            if prompt not in paths:
                raise gr.Error(f"There is no demo mapper for {prompt!r}; pick one of the list.")
            mapper, meta = load_mapper(paths[prompt])
            what = f"demo mapper '{prompt}'"
        elif choice:
            card = model_card(ctx, choice)
            path = hub.cached_path(card)
            if path is None:
                raise gr.Error(f"{card.id} is not on this machine; get it from {card.manual_url} and set "
                               f"{card.env_var} to its path (or put it under $HUB_WEIGHTS_DIR).")
            mapper, meta = load_mapper(path)
            what = f"mapper {card.id} ('{(card.arch_config or {}).get('prompt', '')}')"
        else:
            raise gr.Error("Pick a mapper, or upload one (.pt from StyleCLIP or .safetensors from this hub).")
    w_dim = getattr(mapper, "w_dim", None)
    if w_dim is not None and int(w_dim) != int(G.w_dim):
        raise gr.Error(f"That mapper works on {w_dim}-dimensional latents; this generator's are {G.w_dim}. "
                       "Pick the generator it was trained for.")
    return mapper.to(next(G.parameters()).device), what


def _global_assets(ctx: Any, card: Any, G: Any, clip: Any, progress: gr.Progress | None, stop=None):
    with user_errors():
        return methods.global_assets(card.id, G, clip, lookup=ctx.registry.get,
                                     progress=progress_callback(progress), should_stop=stop)


# ---- handlers ---------------------------------------------------------------------------------------
def _on_global(ctx: Any, model_id: str, clip_id: str, seed: str, name: str | None, neutral: str, target: str,
               alpha: float, beta: float, store: LatentStore | None, progress: gr.Progress | None = None):
    card, G, ws, label, clip, templates = _setup(ctx, model_id, clip_id, seed, name, store, progress)
    assets = _global_assets(ctx, card, G, clip, progress)
    with user_errors():
        res = methods.run_global(G, clip, assets, ws, neutral, target, alpha=float(alpha), beta=float(beta),
                                 templates=templates)
    f = res.facts
    info = (f"Global direction **{check_prompt(neutral)} → {check_prompt(target)}** on **{label}**: α {alpha:g}, "
            f"β {beta:.3f}, **{f['channels']} channels** changed · {res.seconds * 1000:.0f} ms "
            f"(matrix: {assets.note})\n\n" + _top_table(f["top"]))
    return (_pair(G, ws, res.images, f"global α {alpha:g} β {beta:.2f} · {res.seconds * 1000:.0f} ms"), info,
            TextPick(card.id, None, f"{label} · global '{target}'"))


def _on_mapper(ctx: Any, model_id: str, seed: str, name: str | None, choice: str | None, file: Any, strength: float,
               store: LatentStore | None, progress: gr.Progress | None = None):
    card, G, ws, label, *_ = _setup(ctx, model_id, None, seed, name, store, progress, need_clip=False)
    mapper, what = _mapper(ctx, choice, file, G)
    with user_errors():
        res = methods.run_mapper(G, mapper, ws, strength=float(strength))
    info = f"Latent mapper: {what} on **{label}**, strength {strength:g} · {res.seconds * 1000:.0f} ms"
    return (_pair(G, ws, res.images, f"mapper × {strength:g} · {res.seconds * 1000:.0f} ms"), info,
            _pick(card, res, label, what))


def _identity(ctx: Any, weight: float):
    """The ArcFace identity model for a weight > 0 (None for 0), or a gr.Error saying how to get it."""
    if not weight or float(weight) <= 0:
        return None
    from shared.inversion.compare import default_identity, identity_note
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
    card, G, ws, label, clip, templates = _setup(ctx, model_id, clip_id, seed, name, store, progress)
    if space == "s" and G.arch != "stylegan2":
        raise gr.Error("S-space optimisation needs a StyleGAN2 generator; pick W or W+.")
    target = check_prompt_or_error(target)
    identity = _identity(ctx, id_weight)
    steps = int(steps)
    std = style_stats(G, key=card.id).std if space == "s" else None
    source = [(to_uint8_hwc(_render(G, ws))[0], "source")]
    updates: queue.Queue = queue.Queue()
    stop = _STOPS.start(request)
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
        _STOPS.finish(request, stop)
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
    gallery = _pair(G, ws, res.images, f"optimised {space.upper()} · {res.seconds:.1f} s")
    gallery += [(im, f"step {s} · {v:.3f}") for s, v, im in seen]
    yield gallery, info, _pick(card, res, label, f"optimised '{target}' in {space.upper()}")


def _on_compare(ctx: Any, model_id: str, clip_id: str, seed: str, name: str | None, neutral: str, target: str,
                alpha: float, beta: float, choice: str | None, file: Any, strength: float, space: str, steps: float,
                lr: float, l2: float, store: LatentStore | None, request: Any, progress: gr.Progress | None = None):
    """Generator: the three methods one after the other, each shown as soon as it is done."""
    card, G, ws, label, clip, templates = _setup(ctx, model_id, clip_id, seed, name, store, progress)
    target = check_prompt_or_error(target)
    src = _render(G, ws)
    gallery = [(to_uint8_hwc(src)[0], "source")]
    rows: list[str] = []

    def table() -> str:
        return ("| method | wall time | CLIP similarity to the target | note |\n|---|---|---|---|\n" + "\n".join(rows))

    def sim(images: torch.Tensor) -> float:
        return float(methods.clip_similarity(clip, images, target, templates)[0])

    rows.append(f"| source | – | {sim(src):.3f} | {label} |")
    stop = _STOPS.start(request)
    report = progress_callback(progress)
    try:
        with user_errors():
            assets = methods.global_assets(card.id, G, clip, lookup=ctx.registry.get, progress=report,
                                           should_stop=stop.is_set)
            res = methods.run_global(G, clip, assets, ws, neutral, target, alpha=float(alpha), beta=float(beta),
                                     templates=templates)
        gallery += _pair(G, ws, res.images, f"global directions · {res.seconds * 1000:.0f} ms")[1:]
        rows.append(f"| global directions | {res.seconds * 1000:.0f} ms | {sim(res.images):.3f} | "
                    f"α {alpha:g}, β {beta:.2f}, {res.facts['channels']} channels |")
        yield gallery, table()
        try:
            mapper, what = _mapper(ctx, choice, file, G)
        except gr.Error as e:
            rows.append(f"| latent mapper | – | – | not run: {e} |")
        else:
            with user_errors():
                res = methods.run_mapper(G, mapper, ws, strength=float(strength))
            gallery += _pair(G, ws, res.images, f"mapper · {res.seconds * 1000:.0f} ms")[1:]
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
        gallery += _pair(G, ws, res.images, f"optimisation · {res.seconds:.1f} s")[1:]
        rows.append(f"| latent optimisation | {res.seconds:.1f} s | {sim(res.images):.3f} | {space.upper()}, "
                    f"{res.facts['steps']} steps{' (stopped)' if res.facts['stopped'] else ''} |")
        yield gallery, table()
    finally:
        _STOPS.finish(request, stop)


def check_prompt_or_error(text: str) -> str:
    with user_errors():
        return check_prompt(text, "target prompt")


def _on_stop(request: gr.Request):
    _STOPS.stop(request)


def _on_send(pick: TextPick | None, target: str, store: LatentStore | None):
    if pick is None:
        raise gr.Error("Make an edit first.")
    if pick.ws is None:
        raise gr.Error("Global-direction and S-space edits live in StyleSpace and cannot be sent as a W+ latent; "
                       "send a mapper or a W/W+ optimisation result.")
    return send_latent(store, SEND_TARGETS, target, f"text: {pick.label}", pick.model_id, pick.ws,
                       f"Text editing: {pick.label}")


# ---- layout -------------------------------------------------------------------------------------------
def build_tab(ctx: Any) -> None:
    latents = ctx.latents if ctx.latents is not None else gr.State(LatentStore())
    choices = _generator_choices(ctx)
    first = default_model(ctx, choices, getattr(ctx.registry, "DEFAULT_GENERATOR_ID", None))
    first_mappers = _mapper_choices(ctx, first)
    with gr.Tab("Text editing", id=TASK):
        gr.Markdown(INTRO)
        with gr.Row():
            with gr.Column(min_width=280):
                model = gr.Dropdown(choices, value=first, label="Generator", elem_id="text-model")
                clip = gr.Dropdown(_clip_choices(ctx), value=_default_clip(ctx, first), label="CLIP",
                                   elem_id="text-clip")
                about = gr.Markdown(card_summary(ctx.registry.get(first) if first else None))
            with gr.Column(min_width=280):
                seed = gr.Textbox("3", label="Source: seed", elem_id="text-seed")
                name = gr.Dropdown([], label="or a latent this session sent here (used when chosen)",
                                   allow_custom_value=True, elem_id="text-latent")
                inbox = gr.Markdown(inbox_markdown(TASK, "Text editing", None), elem_id="text-editing-inbox")
        with gr.Row():
            neutral = gr.Textbox("a person", label="Neutral prompt (what the face is now)", elem_id="text-neutral")
            target = gr.Textbox("a person wearing glasses", label="Target prompt (what it should become)",
                                elem_id="text-target")
        gr.Examples([["a person", "a person wearing glasses"], ["a person", "a smiling person"],
                     ["a person", "a person with red hair"], ["a person", "a person with blonde hair"],
                     ["a person", "a person with a beard"], ["a person", "a person turned left"]],
                    inputs=[neutral, target], label="Demo-world prompts", api_visibility="private")
        pick = gr.State(None)
        with gr.Tabs():
            with gr.Tab("Global directions", id="text-global"):
                with gr.Row():
                    with gr.Column(min_width=280):
                        alpha = gr.Slider(-10, 10, value=2, step=0.5, label="Strength α (std of the top channel)",
                                          elem_id="text-alpha")
                        beta = gr.Slider(0, 0.5, value=0.3, step=0.01,
                                         label="Disentanglement β (channels with relevance |r| below it are left alone)",
                                         elem_id="text-beta")
                        g_run = gr.Button("Edit with global directions", variant="primary", elem_id="text-g-run")
                        gr.Markdown("Defaults suit the demo CLIP (192-dimensional: its relevances run higher); "
                                    "StyleCLIP's FFHQ examples use β ≈ 0.1–0.15 and α ≈ 4 with CLIP ViT-B/32. The first edit for a generator/CLIP pair measures its relevance matrix "
                                    "(each style channel moved ±5 std on 8 latents; a few minutes on a CPU, then "
                                    "cached). After that the sliders update live. FFHQ config-f with CLIP ViT-B/32 "
                                    "uses StyleCLIP's own `fs3.npy` when you have it (see the Models tab).")
                    with gr.Column(min_width=320, scale=2):
                        g_out = gr.Gallery(label="Source and edit", format="png", columns=2, height=280,
                                           object_fit="contain", elem_id="text-g-out")
                        g_info = gr.Markdown(elem_id="text-g-info")
            with gr.Tab("Latent mapper", id="text-mapper"):
                with gr.Row():
                    with gr.Column(min_width=280):
                        mapper = gr.Dropdown(first_mappers, value=first_mappers[0][1] if first_mappers else None,
                                             label="Mapper (trained for one prompt)", allow_custom_value=True,
                                             elem_id="text-mapper-pick")
                        mapper_file = gr.File(label="or upload a mapper (.pt from StyleCLIP, .safetensors from "
                                                    "`python -m shared.styleclip.mapper train`)",
                                              file_types=[".pt", ".safetensors"])
                        strength = gr.Slider(0, 0.5, value=0.1, step=0.01, label="Strength (0.1 = the paper's)")
                        m_run = gr.Button("Edit with the mapper", variant="primary", elem_id="text-m-run")
                    with gr.Column(min_width=320, scale=2):
                        m_out = gr.Gallery(label="Source and edit", format="png", columns=2, height=280,
                                           object_fit="contain", elem_id="text-m-out")
                        m_info = gr.Markdown(elem_id="text-m-info")
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
                            o_run = gr.Button("Optimise", variant="primary", elem_id="text-o-run")
                            o_stop = gr.Button("Stop", variant="stop")
                    with gr.Column(min_width=320, scale=2):
                        o_out = gr.Gallery(label="Source, result and intermediate steps", format="png", columns=4,
                                           height=300, object_fit="contain", elem_id="text-o-out")
                        o_info = gr.Markdown(elem_id="text-o-info")
            with gr.Tab("Compare", id="text-compare"):
                gr.Markdown("The three methods on the same source and prompts, with the knobs of their sub-tabs.")
                with gr.Row():
                    c_run = gr.Button("Compare the three methods", variant="primary", elem_id="text-c-run")
                    c_stop = gr.Button("Stop", variant="stop")
                c_out = gr.Gallery(label="Source · global · mapper · optimisation", format="png", columns=4,
                                   height=300, object_fit="contain", elem_id="text-c-out")
                c_info = gr.Markdown(elem_id="text-c-info")
        with gr.Row():
            send_to = gr.Dropdown([(label, key) for key, label in SEND_TARGETS], value="local-editing",
                                  label="Send the last mapper / W / W+ result to")
            send = gr.Button("Send")
            sent = gr.Markdown()

        model.change(partial(_on_model, ctx), [model, latents], [about, clip, name, mapper],
                     api_visibility="private", queue=False)
        latents.change(partial(inbox_markdown, TASK, "Text editing"), latents, inbox, api_visibility="private",
                       queue=False)
        latents.change(lambda s, m: _on_model(ctx, m, s)[2], [latents, model], name, api_visibility="private",
                       queue=False)

        @gpu(duration=120)
        def styleclip_global(model_id, clip_id, seed_text, latent, neutral_text, target_text, a, b, store,
                             progress: gr.Progress = gr.Progress()):
            return _on_global(ctx, model_id, clip_id, seed_text, latent, neutral_text, target_text, a, b, store,
                              progress=progress)

        @gpu(duration=60)
        def styleclip_mapper(model_id, seed_text, latent, choice, file, k, store,
                             progress: gr.Progress = gr.Progress()):
            return _on_mapper(ctx, model_id, seed_text, latent, choice, file, k, store, progress=progress)

        @gpu(duration=300)
        def styleclip_optimize(model_id, clip_id, seed_text, latent, target_text, sp, n, rate, lam, idw, store,
                               request: gr.Request, progress: gr.Progress = gr.Progress()):
            yield from _optimize_iter(ctx, model_id, clip_id, seed_text, latent, target_text, sp, n, rate, lam, idw,
                                      store, request, progress=progress)

        @gpu(duration=300)
        def styleclip_compare(model_id, clip_id, seed_text, latent, neutral_text, target_text, a, b, choice, file,
                              k, sp, n, rate, lam, store, request: gr.Request,
                              progress: gr.Progress = gr.Progress()):
            yield from _on_compare(ctx, model_id, clip_id, seed_text, latent, neutral_text, target_text, a, b,
                                   choice, file, k, sp, n, rate, lam, store, request, progress=progress)

        g_inputs = [model, clip, seed, name, neutral, target, alpha, beta, latents]
        g_run.click(styleclip_global, g_inputs, [g_out, g_info, pick], api_name="styleclip_global",
                    api_description=API_GLOBAL, concurrency_id="gpu")
        for slider in (alpha, beta):
            slider.release(styleclip_global, g_inputs, [g_out, g_info, pick], api_visibility="private",
                           concurrency_id="gpu", show_progress="minimal")
        m_run.click(styleclip_mapper, [model, seed, name, mapper, mapper_file, strength, latents],
                    [m_out, m_info, pick], api_name="styleclip_mapper", api_description=API_MAPPER,
                    concurrency_id="gpu")
        o_event = o_run.click(styleclip_optimize, [model, clip, seed, name, target, space, steps, lr, l2, id_weight,
                                                      latents],
                              [o_out, o_info, pick], api_name="styleclip_optimize", api_description=API_OPTIMIZE,
                              concurrency_id="gpu")
        o_stop.click(_on_stop, None, None, api_visibility="private", queue=False)
        c_event = c_run.click(styleclip_compare, [model, clip, seed, name, neutral, target, alpha, beta, mapper,
                                                  mapper_file, strength, space, steps, lr, l2, latents],
                              [c_out, c_info], api_name="styleclip_compare", api_description=API_COMPARE,
                              concurrency_id="gpu")
        c_stop.click(_on_stop, None, None, api_visibility="private", queue=False)
        send.click(_on_send, [pick, send_to, latents], [latents, sent], api_name="send_text_latent",
                   api_description="Put the last mapper or W/W+ optimisation result into the session's latent store "
                                   "for another tab ('local-editing', 'mixing', 'inversion', 'text-editing').")
        del o_event, c_event
