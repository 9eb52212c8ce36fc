"""Inversion › the photo: upload checks, the demo portraits and alignment (FFHQ alignment from dlib's
68 landmarks, as in NVlabs/ffhq-dataset; FFHQ-U without rotation; or a centre crop).

Adapters only; the work is `shared.inversion.compare.prepare_target` over `shared.alignment`.
"""
from __future__ import annotations

from typing import Any

import gradio as gr
from PIL import UnidentifiedImageError

from shared.errors import AlignmentError
from shared.images import to_uint8_hwc
from shared.inversion.compare import prepare_target
from shared.portraits import render_seeds
from spaces.handlers import model_card, stylegan_generator, user_errors
from spaces.model_picker import generator_choices

TASK = "inversion"
ALIGN_CHOICES = [("FFHQ alignment (dlib landmarks)", "ffhq"), ("FFHQ-U alignment (no rotation)", "ffhq-u"),
                 ("Centre crop (no alignment)", "center")]
API_ALIGN = ("Align a photo for a model: 'ffhq' (FFHQ alignment from dlib's 68 landmarks), 'ffhq-u' (no rotation) "
             "or 'center' (centre crop). Returns the aligned crop at the model's resolution and a status line.")


def readable_upload_errors(image: gr.Image) -> gr.Image:
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


def inversion_choices(ctx: Any) -> list[tuple[str, str]]:
    demo_id = getattr(ctx.registry, "DEFAULT_GENERATOR_ID", None)
    choices = generator_choices(ctx, TASK)
    if demo_id and demo_id not in [i for _, i in choices]:
        card = ctx.registry.get(demo_id)
        choices.insert(0, (f"{demo_id} (untrained)" if card.untrained else demo_id, demo_id))
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


def on_demo_portrait(seed: float | None):
    """A demo-world portrait (needs no alignment) at 256 px, and centre crop selected."""
    rendered = render_seeds([int(seed or 0)], 256)
    return to_uint8_hwc(rendered.img)[0], "center"
