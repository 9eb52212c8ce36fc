"""Inversion tab: real photos into a generator's latent space (Image2StyleGAN, Image2StyleGAN++,
pSp, e4e, ReStyle, hybrid, PTI), compared side by side.

Layout and wiring only: the photo and its alignment (`photo`), the runs (`runs`) and the latents
sent, downloaded or uploaded (`latent_files`); the work is `shared.inversion.compare` over the
methods of `shared.inversion`. Session data lives in `gr.State`: the last comparison
(`InversionSession`: small CPU arrays) and the shared `LatentStore`. PTI's tuned generator is not
kept (only its pivot latent), so a session holds no model copy.
"""
from __future__ import annotations

from functools import partial
from typing import Any

import gradio as gr

from shared.alignment import alignment_status
from shared.demo.bundle import example_portraits
from shared.inversion.compare import MAX_RESTYLE_ITERATIONS, METHOD_LABELS, encoder_availability
from shared.latent_store import LatentStore
from spaces.handlers import gpu
from spaces.inversion.latent_files import (API_DOWNLOAD, API_SEND, API_UPLOAD, SEND_TARGETS, on_download, on_send,
                                           on_upload)
from spaces.examples import run_after_fill
from spaces.inversion.photo import (ALIGN_CHOICES, API_ALIGN, TASK, inversion_choices, on_align, on_demo_portrait,
                                    on_example_portrait, on_photo, readable_upload_errors)
from spaces.inversion.runs import (API_COMPARE, API_INVERT, methods_note, on_choose, on_compare, on_invert, on_select,
                                   on_stop)
from spaces.latents import TAB_LABELS
from spaces.model_picker import card_summary, default_model, picker_info

__all__ = ["build_tab"]

DEFAULT_METHODS = ["w", "w+"]

INTRO = """### Inversion
Put a real photo into a generator's latent space so it can be edited. Upload a photo (or use the
webcam, or a demo portrait), look at the aligned crop, run several inversion methods side by side,
compare reconstruction quality and time, then send the chosen latent to the editing tabs or
download it. PTI tunes a private copy of the generator; that copy is not kept after the run, so
only its pivot latent can be sent or downloaded."""


def build_tab(ctx: Any) -> None:
    """The Inversion tab; reads and writes the session's latent store `ctx.latents`."""
    latents = ctx.latents if ctx.latents is not None else gr.State(LatentStore())
    choices = inversion_choices(ctx)
    first = default_model(ctx, choices, getattr(ctx.registry, "DEFAULT_GENERATOR_ID", None))
    available = encoder_availability(first)
    # Every method is listed (so the API and the page name the same set); unavailable ones say so and
    # refuse to run with the reason (CheckboxGroup cannot grey out single choices).
    method_choices = [(label if available.get(key) is None else f"{label} (unavailable)", key)
                      for key, label in METHOD_LABELS.items()]
    can_align = alignment_status() is None
    demo_default = first is not None and ctx.registry.get(first).family == "demo"
    default_methods = DEFAULT_METHODS + (["e4e"] if available.get("e4e") is None else [])
    with gr.Tab(TAB_LABELS[TASK], id=TASK):
        gr.Markdown(INTRO)
        with gr.Row():
            with gr.Column(scale=2, min_width=300):
                photo = readable_upload_errors(gr.Image(type="numpy", label="Photo", image_mode="RGB",
                                                        sources=["upload", "webcam", "clipboard"],
                                                        elem_id="inversion-photo", height=260))
                with gr.Row():
                    demo_seed = gr.Number(0, precision=0, label="Demo portrait seed", min_width=100)
                    demo_btn = gr.Button("Use a demo portrait", size="sm", elem_id="inversion-demo")
                examples = example_portraits()
                portraits = gr.Examples([[path] for path, _ in examples], inputs=[photo],
                            label="Demo-world portraits (factors known; invert with centre crop)",
                            examples_per_page=len(examples), api_visibility="private", elem_id="inversion-examples")
                model = gr.Dropdown(choices, value=first, label="Generator", info=picker_info(ctx, choices),
                                    elem_id="inversion-model")
                about = gr.Markdown(card_summary(ctx.registry.get(first) if first else None))
                align_mode = gr.Radio(ALIGN_CHOICES, value="ffhq" if can_align and not demo_default else "center",
                                      label="Alignment",
                                      info=alignment_status() or "a new photo picks FFHQ alignment when a face is "
                                                                 "found, else centre crop",
                                      elem_id="inversion-align-mode")
                align_note = gr.Markdown(elem_id="inversion-align-note")
                align_btn = gr.Button("Align", elem_id="inversion-align")
                aligned = gr.Image(label="Aligned crop (what gets inverted)", interactive=False, format="png",
                                   elem_id="inversion-aligned", height=200)
                align_info = gr.Markdown(elem_id="inversion-align-info")
            with gr.Column(scale=3, min_width=320):
                methods = gr.CheckboxGroup(method_choices, value=default_methods, label="Methods",
                                           elem_id="inversion-methods")
                gr.Markdown(methods_note(available))
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
        demo_btn.click(on_demo_portrait, demo_seed, [photo, align_mode], api_visibility="private")
        checked = photo.input(on_photo, photo, [align_mode, align_note], api_visibility="private")
        # a refused file does not stay in the box
        checked.failure(lambda: None, None, photo, api_visibility="private", queue=False)
        run_after_fill(portraits, partial(on_example_portrait, ctx), [photo, model],
                       [align_mode, aligned, align_info, align_note])
        align_btn.click(partial(on_align, ctx), [photo, align_mode, model], [aligned, align_info],
                        api_name="align", api_description=API_ALIGN)
        # Closures, not partials: Gradio finds the `gr.Request` parameter through the function's type hints.
        @gpu(duration=120)
        def compare(image, mode, model_id, method_keys, n_steps, rate, iters, request: gr.Request,
                    progress: gr.Progress = gr.Progress()):
            yield from on_compare(ctx, image, mode, model_id, method_keys, n_steps, rate, iters, request, progress)

        @gpu(duration=120)
        def invert(image, mode, model_id, method, n_steps, rate, iters, request: gr.Request,
                   progress: gr.Progress = gr.Progress()):
            return on_invert(ctx, image, mode, model_id, method, n_steps, rate, iters, request, progress)

        event = run.click(compare,
                          [photo, align_mode, model, methods, steps, lr, restyle_iters],
                          [gallery, info, slider, strip, session, chosen], api_name="compare",
                          api_description=API_COMPARE, concurrency_id="gpu",
                          concurrency_limit=ctx.settings.gpu_concurrency)
        stop.click(on_stop, None, None, cancels=[event], api_visibility="private", queue=False)
        hidden_method = gr.Textbox("w+", visible=False)
        hidden_gallery = gr.Gallery(visible=False, format="png")
        hidden_info = gr.Markdown(visible=False)
        invert_btn = gr.Button(visible=False)  # API only: `invert` runs one method without the page's layout
        invert_btn.click(invert, [photo, align_mode, model, hidden_method, steps, lr, restyle_iters],
                         [hidden_gallery, hidden_info], api_name="invert", api_description=API_INVERT,
                         concurrency_id="gpu", concurrency_limit=ctx.settings.gpu_concurrency)
        gallery.select(on_select, session, [slider, chosen], api_visibility="private", queue=False)
        chosen.input(on_choose, [session, chosen], slider, api_visibility="private", queue=False)
        send.click(on_send, [session, chosen, target, latents], [latents, sent], api_name="send_inversion_latent",
                   api_description=API_SEND)
        download.click(on_download, [session, chosen], latent_file, api_name="download_latent",
                       api_description=API_DOWNLOAD)
        upload.click(partial(on_upload, ctx), [latent_file, latents], [latents, sent, upload_image],
                     api_name="upload_latent", api_description=API_UPLOAD)
