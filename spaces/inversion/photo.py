"""Inversion › the photo: upload checks, the demo portraits and alignment (FFHQ alignment from dlib's
68 landmarks, as in NVlabs/ffhq-dataset; FFHQ-U without rotation; or a centre crop).

Adapters only; the work is `shared.inversion.compare.prepare_target` over `shared.alignment`.
"""
from __future__ import annotations

from typing import Any

import gradio as gr

from shared.alignment import alignment_status, detect_faces
from shared.errors import AlignmentError
from shared.images import to_uint8_hwc
from shared.inversion.compare import prepare_target
from shared.portraits import render_seeds
from spaces.handlers import checked_image_upload, model_card, stylegan_generator, user_errors
from spaces.model_picker import choice_label, generator_choices

TASK = "inversion"
ALIGN_CHOICES = [("FFHQ alignment (dlib landmarks)", "ffhq"), ("FFHQ-U alignment (no rotation)", "ffhq-u"),
                 ("Centre crop (no alignment)", "center")]
API_ALIGN = ("Align a photo for a model: 'ffhq' (FFHQ alignment from dlib's 68 landmarks), 'ffhq-u' (no rotation) "
             "or 'center' (centre crop). Returns the aligned crop at the model's resolution and a status line.")


def readable_upload_errors(image: gr.Image) -> gr.Image:
    """Make `image` read uploads through the hub's checked reader (`spaces.handlers.checked_image_upload`):
    a sentence for what is not a usable photo, a notice for what was changed. The tab's `photo.input`
    event runs the check as soon as a photo arrives."""
    return checked_image_upload(image, check_on_upload=False)


def inversion_choices(ctx: Any) -> list[tuple[str, str]]:
    demo_id = getattr(ctx.registry, "DEFAULT_GENERATOR_ID", None)
    choices = generator_choices(ctx, TASK)
    if demo_id and demo_id not in [i for _, i in choices]:
        card = ctx.registry.get(demo_id)
        choices.insert(0, (choice_label(card), demo_id))
    return choices


def generator(ctx: Any, model_id: str | None, progress: gr.Progress | None = None) -> tuple[Any, Any]:
    return stylegan_generator(ctx, model_id, "inversion", progress)


def _resolution(ctx: Any, card: Any) -> int:
    if card.resolution:
        return int(card.resolution)
    return int(ctx.models.generator(card.id).img_resolution)


def align(ctx: Any, image: Any, mode: str, model_id: str):
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


def on_align(ctx: Any, image: Any, mode: str, model_id: str):
    return align(ctx, image, mode, model_id)


def on_photo(image: Any):
    """A photo came in from the user (upload, webcam, clipboard): FFHQ alignment when dlib finds a
    face in it, else centre crop, with a line saying which and why."""
    if image is None:
        return gr.update(), ""
    status = alignment_status()
    if status is not None:
        return "center", f"**Centre crop** selected: {status}"
    try:
        with user_errors():
            faces = detect_faces(image)
    except AlignmentError as e:
        raise gr.Error(str(e)) from e
    if faces:
        return "ffhq", ("A face was found: **FFHQ alignment** is selected (the crop the FFHQ generators were "
                        "trained on; inversions of unaligned photos are much worse).")
    return "center", ("**No face was found** in this photo, so **centre crop** is selected: the inversion will "
                      "be poorer than on an aligned face; a clear, frontal face aligns.")


def on_example_portrait(ctx: Any, image: Any, model_id: str):
    """A demo-world example portrait was clicked: centre crop (demo portraits need no alignment),
    the crop itself, its status line, and the note saying so."""
    crop, line = align(ctx, image, "center", model_id)
    return "center", crop, line, "Demo portraits are already framed like the demo world's faces: **centre crop**."


def on_demo_portrait(seed: float | None):
    """A demo-world portrait (needs no alignment) at 256 px, and centre crop selected."""
    rendered = render_seeds([int(seed or 0)], 256)
    return to_uint8_hwc(rendered.img)[0], "center"
