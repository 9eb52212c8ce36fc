"""Inversion tab: real photos into a generator's latent space (Image2StyleGAN, Image2StyleGAN++,
pSp, e4e, ReStyle, hybrid, PTI), compared side by side.

Layout and wiring only; the work is `shared.inversion.compare` (preparation, runs, scores, latent
files) over the methods of `shared.inversion`. Session data lives in `gr.State`: the last
comparison (`InversionSession`: small CPU arrays) and the shared `LatentStore`. PTI's tuned
generator is not kept (only its pivot latent), so a session holds no model copy.
"""
from __future__ import annotations

import tempfile
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np
import torch
from PIL import UnidentifiedImageError

from shared.alignment import AlignmentError, alignment_status
from shared.images import to_uint8_hwc
from shared.inversion import InversionCancelled
from shared.inversion.compare import (ENCODER_RECORDS, MAX_RESTYLE_ITERATIONS, METHOD_LABELS,
                                      CompareOptions, MethodRun, check_latent, default_identity, default_perceptual,
                                      identity_note,
                                      encoder_availability, encoder_records_for, image_to_tensor, iter_methods, load_latent_file,
                                      prepare_target, runs_summary, save_latent_file)
from shared.demo.bundle import example_portraits
from shared.latent_store import LatentEntry, LatentStore
from shared.portraits import render_seeds
from spaces.handlers import StopFlags, gpu, model_card, progress_callback, send_latent, stylegan_generator, user_errors
from spaces.model_picker import card_summary, default_model, model_choices

TASK = "inversion"
ARCHS = ("stylegan2", "stylegan3")
SEND_TARGETS = (("mixing", "Mixing"), ("local-editing", "Local editing"), ("text-editing", "Text editing"),
                ("reposing", "Reposing"))
ALIGN_CHOICES = [("FFHQ alignment (dlib landmarks)", "ffhq"), ("FFHQ-U alignment (no rotation)", "ffhq-u"),
                 ("Centre crop (no alignment)", "center")]
DEFAULT_METHODS = ["w", "w+"]
_STOPS = StopFlags()   # session -> "stop" flag of its running comparison

INTRO = """### Inversion
Put a real photo into a generator's latent space so it can be edited. Upload a photo (or use the
webcam, or a demo portrait), look at the aligned crop, run several inversion methods side by side,
compare reconstruction quality and time, then send the chosen latent to the editing tabs or
download it. PTI tunes a private copy of the generator; that copy is not kept after the run, so
only its pivot latent can be sent or downloaded."""

API_ALIGN = ("Align a photo for a model: 'ffhq' (FFHQ alignment from dlib's 68 landmarks), 'ffhq-u' (no rotation) "
             "or 'center' (centre crop). Returns the aligned crop at the model's resolution and a status line.")
API_INVERT = ("Invert a photo with one method ('w', 'w+', 'w+n', 'psp', 'e4e', 'restyle_psp', 'restyle_e4e', "
              "'hybrid', 'pti') after aligning it. Returns [target, reconstruction (+ ReStyle steps)] as PNG "
              "with captions, and a Markdown line with PSNR, the perceptual score and time.")
API_COMPARE = ("Invert a photo with several methods. Returns the gallery (target, then one reconstruction per "
               "method with PSNR / perceptual score / time), a Markdown table, the before/after pair of the "
               "first result, the ReStyle strip and the method to send.")
API_SEND = ("Put the latent of one method of this session's last comparison into the session's latent store for "
            "a target tab ('mixing', 'local-editing', 'text-editing', 'reposing').")
API_DOWNLOAD = "Save the latent of one method of the last comparison as a .pt file {'ws', 'model_id', 'method'}."
API_UPLOAD = ("Load a .pt latent {'ws', 'model_id', 'method'} (validated against its model) into the session's "
              "latent store; returns a status line and the latent's image.")


@dataclass(frozen=True, eq=False)
class RunRecord:
    """What the session keeps of one method's run (small, CPU)."""
    key: str
    label: str
    ws: np.ndarray                 # [1, num_ws, w_dim] float32
    image: np.ndarray              # uint8 [R, R, 3] reconstruction
    caption: str
    steps: tuple[np.ndarray, ...]  # ReStyle: one uint8 image per iteration


@dataclass(frozen=True, eq=False)
class InversionSession:
    """The session's last comparison: model, aligned target and the runs finished so far."""
    model_id: str
    target: np.ndarray             # uint8 [R, R, 3]
    runs: tuple[RunRecord, ...]

    def run(self, key: str | None) -> RunRecord:
        for r in self.runs:
            if key in (r.key, r.label):
                return r
        raise gr.Error(f"No result for {key!r} in this session; run it first (done: "
                       f"{', '.join(r.key for r in self.runs) or 'none'}).")


def _readable_upload_errors(image: gr.Image) -> gr.Image:
    """Make `image` answer an unreadable upload with a sentence instead of a stack trace.

    Wraps this instance's `preprocess` (Gradio calls it on the instance); a `gr.Image` subclass
    would do the same but makes Gradio write a `.pyi` stub next to this module at import.
    """
    inner = image.preprocess

    def preprocess(payload: Any) -> Any:
        try:
            return inner(payload)
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as e:
            raise gr.Error("This file is not an image that can be read; upload a JPEG, PNG or WebP photo.") from e

    image.preprocess = preprocess  # type: ignore[method-assign]
    return image


# ---- adapters ----------------------------------------------------------------------------------
def _generator_choices(ctx: Any) -> list[tuple[str, str]]:
    demo_id = getattr(ctx.registry, "DEFAULT_GENERATOR_ID", None)
    choices = [(label, i) for label, i in model_choices(ctx, TASK) if ctx.registry.get(i).arch in ARCHS]
    if demo_id and demo_id not in [i for _, i in choices]:
        card = ctx.registry.get(demo_id)
        choices.insert(0, (f"{demo_id} (untrained)" if card.untrained else demo_id, demo_id))
    return choices


def _generator(ctx: Any, model_id: str | None, progress: gr.Progress | None = None) -> tuple[Any, Any]:
    return stylegan_generator(ctx, model_id, "inversion", progress)


def _resolution(ctx: Any, card: Any) -> int:
    if card.resolution:
        return int(card.resolution)
    return int(ctx.models.generator(card.id).img_resolution)


def _align(ctx: Any, image: Any, mode: str, model_id: str):
    """(aligned uint8 image, status line); gr.Error for missing / unreadable / faceless photos."""
    if image is None:
        raise gr.Error("Upload a photo first (or click 'Use a demo portrait').")
    card = model_card(ctx, model_id)
    try:
        with user_errors():
            face = prepare_target(image, mode, _resolution(ctx, card))
    except AlignmentError as e:
        raise gr.Error(str(e)) from e
    how = dict((v, k) for k, v in ALIGN_CHOICES).get(face.method, face.method)
    if face.method == "center-crop":
        how = "Centre crop"
    w, h = face.source_size
    return face.image, f"**{how}** of a {w}×{h} photo → {face.output_size}×{face.output_size} px for `{card.id}`."


def _on_align(ctx: Any, image: Any, mode: str, model_id: str):
    return _align(ctx, image, mode, model_id)


def _on_demo_portrait(seed: float | None):
    """A demo-world portrait (needs no alignment) at 256 px, and centre crop selected."""
    rendered = render_seeds([int(seed or 0)], 256)
    return to_uint8_hwc(rendered.img)[0], "center"


def _load_encoders(methods: list[str], model_id: str | None) -> dict[str, Any]:
    """EncoderCheckpoints of the encoder methods asked for (and the hybrid's) whose weights, trained
    for `model_id`'s generator, are here."""
    from shared import hub, registry
    from shared.loaders.encoders import load_encoder_checkpoint
    wanted = set(methods) & set(ENCODER_RECORDS)
    if "hybrid" in methods:
        wanted |= set(ENCODER_RECORDS)
    available = encoder_availability(model_id)
    records = encoder_records_for(model_id)
    out = {}
    for key in sorted(wanted):
        if available.get(key) is None:
            out[key] = load_encoder_checkpoint(hub.cached_path(registry.get(records[key])))
    return out


def _record(run: MethodRun) -> RunRecord:
    res = run.result
    steps = tuple(to_uint8_hwc(s.image)[0] for s in res.steps) if run.key.startswith("restyle") else ()
    return RunRecord(run.key, run.label, res.ws.numpy().astype(np.float32), to_uint8_hwc(res.image)[0],
                     run.caption(), steps)


def _outputs(session: InversionSession, runs: list[MethodRun], note: str, selected: str | None = None):
    gallery = [(session.target, "target (aligned)")] + [(r.image, r.caption) for r in session.runs]
    chosen = session.run(selected) if selected else (session.runs[-1] if session.runs else None)
    slider = (session.target, chosen.image) if chosen else None
    restyle = next((r for r in session.runs if r.steps), None)
    strip = ([(img, f"{restyle.label}: iteration {i + 1}") for i, img in enumerate(restyle.steps)]
             if restyle else [])
    table = runs_summary(runs) if runs else ""
    info = "\n\n".join(x for x in (table, note) if x)
    return (gallery, info, slider, gr.update(value=strip, visible=bool(strip)), session,
            gr.update(choices=[(r.label, r.key) for r in session.runs], value=chosen.key if chosen else None))


def _on_stop(request: gr.Request):
    _STOPS.stop(request)


def _compare(ctx: Any, image: Any, mode: str, model_id: str, methods: list[str] | str | None, steps: float,
             lr: float, restyle_iterations: float, request: gr.Request | None, progress: gr.Progress | None):
    """Generator: align, then yield the tab's outputs after each method (partial results stay)."""
    methods = [methods] if isinstance(methods, str) else list(methods or [])
    for key in methods:
        if key not in METHOD_LABELS:
            raise gr.Error(f"Unknown inversion method {key!r}; choose from {', '.join(METHOD_LABELS)}.")
    unavailable = encoder_availability(model_id)
    for key in methods:
        if unavailable.get(key):
            raise gr.Error(unavailable[key])
    aligned, _ = _align(ctx, image, mode, model_id)
    with user_errors():
        options = CompareOptions(steps=int(steps), lr=float(lr), restyle_iterations=int(restyle_iterations),
                                 noise_steps=max(1, int(steps) // 2), pti_steps=max(1, int(steps) // 2))
        card, G = _generator(ctx, model_id, progress)
        if G.img_resolution != aligned.shape[0]:
            raise gr.Error(f"The aligned crop is {aligned.shape[0]} px but {card.id} makes {G.img_resolution} px "
                           f"images; align again.")
        perceptual = default_perceptual(ctx.device)
        identity = default_identity(ctx.device)
        encoders = _load_encoders(methods, model_id)
    session = InversionSession(card.id, aligned, ())
    stop = _STOPS.start(request)
    runs: list[MethodRun] = []
    note = f"Perceptual score: **{perceptual.name}**" + (
        " (LPIPS' VGG16 weights are not on this machine, so its heads run over a fixed random trunk)"
        if "random" in perceptual.name else
        " (offline: LPIPS' VGG16 weights are not on this machine, so the demo world's predictor features "
        "serve as the perceptual loss; download `lpips-vgg16` in the Models tab for LPIPS)"
        if perceptual.name == "features:demo-predictor" else "") + ". " + identity_note(identity)
    try:
        with user_errors():
            for run in iter_methods(G, image_to_tensor(aligned), methods, options, perceptual=perceptual,
                                    encoders=encoders, progress=progress_callback(progress), should_stop=stop.is_set,
                                    identity=identity):
                runs.append(run)
                session = InversionSession(card.id, aligned, session.runs + (_record(run),))
                yield _outputs(session, runs, note)
    except InversionCancelled:
        yield _outputs(session, runs, note + f"\n\n**Stopped** after {len(runs)} of {len(methods)} method(s).")
    finally:  # one flag per running comparison, dropped when it ends
        _STOPS.finish(request, stop)


def _on_compare(ctx: Any, image: Any, mode: str, model_id: str, methods: list[str] | None, steps: float, lr: float,
                restyle_iterations: float, request: gr.Request, progress: gr.Progress = gr.Progress()):
    yield from _compare(ctx, image, mode, model_id, methods, steps, lr, restyle_iterations, request, progress)


def _on_invert(ctx: Any, image: Any, mode: str, model_id: str, method: str, steps: float, lr: float,
               restyle_iterations: float, request: gr.Request, progress: gr.Progress = gr.Progress()):
    """One method: [target, reconstruction (+ ReStyle steps)] and a metrics line."""
    if not method or not isinstance(method, str):
        raise gr.Error("Name one inversion method, e.g. 'w+'.")
    last = None
    for last in _compare(ctx, image, mode, model_id, [method], steps, lr, restyle_iterations, request, progress):
        pass
    if last is None or not last[4].runs:
        raise gr.Error("The inversion was stopped before it finished.")
    session: InversionSession = last[4]
    run = session.runs[0]
    gallery = [(session.target, "target (aligned)"), (run.image, run.caption)]
    gallery += [(img, f"iteration {i + 1}") for i, img in enumerate(run.steps)]
    return gallery, last[1]


def _on_select(session: InversionSession | None, evt: gr.SelectData):
    """Clicking a reconstruction shows it in the slider and chooses it for sending."""
    index = evt.index if isinstance(evt.index, int) else (evt.index or [0])[0]
    if session is None or not 1 <= index <= len(session.runs):
        return gr.update(), gr.update()
    run = session.runs[index - 1]
    return (session.target, run.image), run.key


def _on_choose(session: InversionSession | None, key: str | None):
    if session is None or not key:
        return gr.update()
    return session.target, session.run(key).image


def _on_send(session: InversionSession | None, key: str | None, target: str, store: LatentStore | None):
    if target not in dict(SEND_TARGETS):
        raise gr.Error(f"Unknown target tab {target!r}; choose one of {', '.join(dict(SEND_TARGETS))}.")
    if session is None or not session.runs:
        raise gr.Error("Run an inversion first, then choose the result to send.")
    run = session.run(key)
    return send_latent(store, SEND_TARGETS, target, f"inverted · {run.label} · {session.model_id}", session.model_id,
                       run.ws, f"Inversion: {run.caption}")


def _on_download(session: InversionSession | None, key: str | None) -> str:
    if session is None or not session.runs:
        raise gr.Error("Run an inversion first, then download its latent.")
    run = session.run(key)
    folder = Path(tempfile.mkdtemp(prefix="inversion-"))
    safe = run.key.replace("+", "plus")
    return str(save_latent_file(folder / f"latent-{session.model_id}-{safe}.pt", run.ws, session.model_id, run.key))


def _on_upload(ctx: Any, file: Any, store: LatentStore | None):
    if file is None:
        raise gr.Error("Choose a .pt latent file to upload.")
    path = file if isinstance(file, str) else getattr(file, "name", None) or file.get("path")
    with user_errors():
        ws, model_id, method = load_latent_file(path)
        if model_id not in ctx.registry.ids():
            raise gr.Error(f"This latent belongs to {model_id!r}, which the hub does not know.")
        card, G = _generator(ctx, model_id)
        check_latent(ws, G, model_id)
        with torch.no_grad():
            image = to_uint8_hwc(G.synthesis(ws.to(ctx.device), noise_mode="const"))[0]
    name = f"uploaded · {method} · {model_id}"
    store = (store or LatentStore()).put(name, LatentEntry(model_id, ws.numpy(), f"Upload: {Path(path).name}"),
                                         for_tab="inversion")
    return store, f"Loaded **{name}** ({list(ws.shape)}) into this session's latents.", image


def _methods_note(available: dict[str, str | None]) -> str:
    missing = [f"- **{METHOD_LABELS[k]}**: {why}" for k, why in available.items() if why]
    return "Not available on this machine:\n" + "\n".join(missing) if missing else "All methods are available."


# ---- layout ------------------------------------------------------------------------------------
def build_tab(ctx: Any) -> None:
    """The Inversion tab; reads and writes the session's latent store `ctx.latents`."""
    latents = ctx.latents if ctx.latents is not None else gr.State(LatentStore())
    choices = _generator_choices(ctx)
    first = default_model(ctx, choices, getattr(ctx.registry, "DEFAULT_GENERATOR_ID", None))
    available = encoder_availability(first)
    # Every method is listed (so the API and the page name the same set); unavailable ones say so and
    # refuse to run with the reason (CheckboxGroup cannot grey out single choices).
    method_choices = [(label if available.get(key) is None else f"{label} (unavailable)", key)
                      for key, label in METHOD_LABELS.items()]
    can_align = alignment_status() is None
    demo_default = first is not None and ctx.registry.get(first).family == "demo"
    default_methods = DEFAULT_METHODS + (["e4e"] if available.get("e4e") is None else [])
    with gr.Tab("Inversion", id="inversion"):
        gr.Markdown(INTRO)
        with gr.Row():
            with gr.Column(scale=2, min_width=300):
                photo = _readable_upload_errors(gr.Image(type="numpy", label="Photo", image_mode="RGB",
                                                         sources=["upload", "webcam", "clipboard"],
                                                         elem_id="inversion-photo", height=260))
                with gr.Row():
                    demo_seed = gr.Number(0, precision=0, label="Demo portrait seed", min_width=100)
                    demo_btn = gr.Button("Use a demo portrait", size="sm", elem_id="inversion-demo")
                examples = example_portraits()
                gr.Examples([[path] for path, _ in examples], inputs=[photo],
                            label="Demo-world portraits (factors known; invert with centre crop)",
                            examples_per_page=len(examples), api_visibility="private", elem_id="inversion-examples")
                model = gr.Dropdown(choices, value=first, label="Generator", elem_id="inversion-model")
                about = gr.Markdown(card_summary(ctx.registry.get(first) if first else None))
                align_mode = gr.Radio(ALIGN_CHOICES, value="ffhq" if can_align and not demo_default else "center",
                                      label="Alignment",
                                      info=alignment_status() or "demo portraits need no alignment: use centre crop")
                align_btn = gr.Button("Align", elem_id="inversion-align")
                aligned = gr.Image(label="Aligned crop (what gets inverted)", interactive=False, format="png",
                                   elem_id="inversion-aligned", height=200)
                align_info = gr.Markdown()
            with gr.Column(scale=3, min_width=320):
                methods = gr.CheckboxGroup(method_choices, value=default_methods, label="Methods",
                                           elem_id="inversion-methods")
                gr.Markdown(_methods_note(available))
                with gr.Accordion("Method options", open=False):
                    steps = gr.Slider(1, 1000, value=100, step=1, label="Optimisation steps",
                                      info="W, W+, W+ + noise, hybrid, PTI pivot; noise maps and PTI tuning use half")
                    lr = gr.Slider(0.001, 0.5, value=0.1, step=0.001, label="Learning rate (W / W+ / W+ + noise)")
                    restyle_iters = gr.Slider(1, MAX_RESTYLE_ITERATIONS, value=5, step=1, label="ReStyle iterations")
                with gr.Row():
                    run = gr.Button("Run", variant="primary", elem_id="inversion-run")
                    stop = gr.Button("Stop", variant="stop", elem_id="inversion-stop")
                gallery = gr.Gallery(label="Reconstructions", format="png", columns=4, object_fit="contain",
                                     elem_id="inversion-gallery")
                info = gr.Markdown(elem_id="inversion-info")
                slider = gr.ImageSlider(label="Before / after", format="png", type="numpy",
                                        elem_id="inversion-slider")
                strip = gr.Gallery(label="ReStyle iterations", format="png", columns=6, visible=False)
                chosen = gr.Dropdown([], label="Result to use", elem_id="inversion-chosen", allow_custom_value=True,
                                     info="click a reconstruction, or pick it here")
                with gr.Row():
                    target = gr.Radio([(label, key) for key, label in SEND_TARGETS], value="mixing", label="Send to")
                    send = gr.Button("Send latent", elem_id="inversion-send")
                sent = gr.Markdown(elem_id="inversion-sent")
                with gr.Row():
                    download = gr.Button("Download latent (.pt)", size="sm")
                    latent_file = gr.File(label="Latent file", file_types=[".pt"], elem_id="inversion-latent-file")
                upload = gr.Button("Load uploaded latent", size="sm")
                upload_image = gr.Image(label="Uploaded latent's image", interactive=False, format="png", height=160)
        session = gr.State(None)

        model.change(lambda m: card_summary(ctx.registry.get(m) if m else None), model, about,
                     api_visibility="private", queue=False)
        demo_btn.click(_on_demo_portrait, demo_seed, [photo, align_mode], api_visibility="private")
        align_btn.click(partial(_on_align, ctx), [photo, align_mode, model], [aligned, align_info],
                        api_name="align", api_description=API_ALIGN)
        # Closures, not partials: Gradio finds the `gr.Request` parameter through the function's type hints.
        @gpu(duration=120)
        def compare(image, mode, model_id, method_keys, n_steps, rate, iters, request: gr.Request,
                    progress: gr.Progress = gr.Progress()):
            yield from _on_compare(ctx, image, mode, model_id, method_keys, n_steps, rate, iters, request, progress)

        @gpu(duration=120)
        def invert(image, mode, model_id, method, n_steps, rate, iters, request: gr.Request,
                   progress: gr.Progress = gr.Progress()):
            return _on_invert(ctx, image, mode, model_id, method, n_steps, rate, iters, request, progress)

        event = run.click(compare,
                          [photo, align_mode, model, methods, steps, lr, restyle_iters],
                          [gallery, info, slider, strip, session, chosen], api_name="compare",
                          api_description=API_COMPARE, concurrency_id="gpu",
                          concurrency_limit=ctx.settings.gpu_concurrency)
        stop.click(_on_stop, None, None, cancels=[event], api_visibility="private", queue=False)
        hidden_method = gr.Textbox("w+", visible=False)
        hidden_gallery = gr.Gallery(visible=False, format="png")
        hidden_info = gr.Markdown(visible=False)
        invert_btn = gr.Button(visible=False)  # API only: `invert` runs one method without the page's layout
        invert_btn.click(invert, [photo, align_mode, model, hidden_method, steps, lr, restyle_iters],
                         [hidden_gallery, hidden_info], api_name="invert", api_description=API_INVERT,
                         concurrency_id="gpu", concurrency_limit=ctx.settings.gpu_concurrency)
        gallery.select(_on_select, session, [slider, chosen], api_visibility="private", queue=False)
        chosen.input(_on_choose, [session, chosen], slider, api_visibility="private", queue=False)
        send.click(_on_send, [session, chosen, target, latents], [latents, sent], api_name="send_inversion_latent",
                   api_description=API_SEND)
        download.click(_on_download, [session, chosen], latent_file, api_name="download_latent",
                       api_description=API_DOWNLOAD)
        upload.click(partial(_on_upload, ctx), [latent_file, latents], [latents, sent, upload_image],
                     api_name="upload_latent", api_description=API_UPLOAD)
