"""Local editing › Linear directions: InterFaceGAN boundaries (the demo world's fitted directions),
GANSpace components, SeFa factors and direction files (registered or uploaded).

Layout and wiring only; the work is `shared.editing.directions` (bases, strips, direction files)
and `shared.editing.edit_strengths` (the strip's strengths, the demo directions' unit).
"""
from __future__ import annotations

import time
from functools import partial
from typing import Any

import gradio as gr

from shared import hub
from shared.editing.directions import cached_ganspace, edit_strip, load_direction_file, sefa
from shared.editing.edit_strengths import interfacegan_step, strength_ladder
from shared.latent_store import LatentStore
from shared.latents import resolve_rows
from spaces.examples import run_after_fill
from spaces.handlers import gpu_handler, progress_callback, user_errors
from spaces.latents import Pick, source_latent
from spaces.local_editing.source import TASK, Source, generator, strip_outputs

METHODS = [("InterFaceGAN (fitted boundaries)", "interfacegan"), ("GANSpace (PCA of W)", "ganspace"),
           ("SeFa (closed-form factorisation)", "sefa"), ("Direction file (.npy / .pt)", "file")]
ROWS = [("All rows", "all"), ("Coarse", "coarse"), ("Middle", "middle"), ("Fine", "fine"), ("Custom", "custom")]
COMPONENTS = 16
UNITS = {"interfacegan": "tenths of the factor's range (the demo world's fitted slope)",
         "ganspace": "standard deviations of W along the component",
         "sefa": "units of W (the SeFa paper's scale)",
         "file": "multiples of the stored vector (an upload, or a registered file picked under Direction)"}
API_DIRECTION = ("Edit a source (seed text such as '3', or the name of a session latent) along a direction: "
                 "method 'interfacegan' (direction = a demo factor such as 'smile' or 'hair_color=red'), "
                 "'ganspace' / 'sefa' (direction = component number), or 'file' (an uploaded .npy/.pt). "
                 "Returns the strip over strengths, the edited image and a Markdown line.")


def _directions_id(ctx: Any, model_id: str | None) -> str | None:
    """The record of the InterFaceGAN boundaries fitted for `model_id` (the demo model's), or None."""
    return ctx.registry.companion(model_id, "directions")


def _direction_choices(ctx: Any, model_id: str | None, method: str) -> list[tuple[str, str]]:
    if method == "interfacegan":
        if _directions_id(ctx, model_id) is None:
            return []
        ds = ctx.models.get(_directions_id(ctx, model_id))
        return [(f"{n} (fit {ds[n].fit:.2f})" + ("" if ds[n].slope > 0 else ": not followed"), n) for n in ds.names()]
    if method in ("ganspace", "sefa"):
        return [(f"component {k}", str(k)) for k in range(COMPONENTS)]
    if method == "file":
        return [(f"{i} (registered: {ctx.registry.get(i).description.split(';')[0][:60]})", i)
                for i in ctx.registry.ids(task=TASK) if ctx.registry.get(i).arch == "latent-direction"]
    return []


def _on_method(ctx: Any, model_id: str | None, method: str):
    choices = _direction_choices(ctx, model_id, method)
    note = f"Strength unit: {UNITS.get(method, '')}."
    if method == "interfacegan" and not choices:
        note += (" Fitted boundaries ship for the demo model only; for FFHQ models use a direction file "
                 "(InterFaceGAN / e4e `age.pt`, `smile.pt`, `pose.pt`).")
    default = ("smile" if method == "interfacegan" and choices else None if method == "file"
               else choices[0][1] if choices else None)
    return gr.update(choices=choices, value=default), gr.update(visible=method == "file"), note


def _on_example_method(ctx: Any, model_id: str | None, method: str, direction: str | None):
    """An example set the method and direction: the method's choices, keeping the example's direction."""
    choices, file, note = _on_method(ctx, model_id, method)
    return gr.update(choices=choices["choices"], value=direction), file, note


def _rows(G: Any, choice: str | None, custom: str | None) -> list[int] | None:
    if choice in (None, "all"):
        return None
    with user_errors():
        if choice == "custom":
            if not custom or not str(custom).strip():
                raise gr.Error("Write the custom rows, e.g. 0-3.")
            return list(resolve_rows(G, str(custom)))
        return list(resolve_rows(G, choice))


def _component(direction: str | None) -> int:
    try:
        k = int(direction or 0)
    except ValueError:
        raise gr.Error("Pick a component number from 0 to 15.") from None
    if not 0 <= k < COMPONENTS:
        raise gr.Error(f"Pick a component number from 0 to {COMPONENTS - 1}.")
    return k


def _file_direction(ctx: Any, G: Any, direction: str | None, file: Any) -> tuple[Any, str]:
    """The direction vector of a registered direction file or an upload, and what it is."""
    if file is None and direction and direction in ctx.registry.ids():
        record = ctx.registry.get(direction)
        path = hub.cached_path(record)
        if path is None:
            raise gr.Error(f"{record.id} is not on this machine; get it from {record.manual_url} and set "
                           f"{record.env_var} to its path (see the Models tab).")
        return load_direction_file(path, G), f"the registered direction {record.id}"
    if file is None:
        raise gr.Error("Upload a direction file (.npy or .pt) first, or pick a registered one.")
    path = file if isinstance(file, str) else getattr(file, "name", None) or file.get("path")
    return load_direction_file(path, G), "the uploaded direction"


def _vector(ctx: Any, card: Any, G: Any, method: str, direction: str | None, file: Any, rows: list[int] | None,
            progress: gr.Progress | None) -> tuple[Any, str]:
    """The W direction of the chosen method, and what it is (for the report)."""
    if method == "interfacegan":
        if _directions_id(ctx, card.id) is None:
            raise gr.Error("Fitted InterFaceGAN boundaries ship for the demo model only; use a direction file "
                           "for this model.")
        return interfacegan_step(ctx.models.get(_directions_id(ctx, card.id)), direction), f"InterFaceGAN '{direction}'"
    if method == "ganspace":
        k = _component(direction)
        basis = cached_ganspace(card.id, G, k=COMPONENTS, progress=progress_callback(progress))
        what = f"GANSpace component {k} ({basis.info['explained'][k]:.1%} of W's variance)"
        return basis.vectors[k] * basis.scales[k], what
    if method == "sefa":
        k = _component(direction)
        return sefa(G, rows, k=COMPONENTS).vectors[k], f"SeFa factor {k}"
    if method == "file":
        return _file_direction(ctx, G, direction, file)
    raise gr.Error(f"Unknown method {method!r}; choose interfacegan, ganspace, sefa or file.")


def _on_direction(ctx: Any, model_id: str, seed: str, name: str | None, method: str, direction: str | None,
                  file: Any, strength: float, rows_choice: str, custom: str, store: LatentStore | None,
                  progress: gr.Progress | None = None):
    card, G = generator(ctx, model_id, progress)
    ws, label = source_latent(G, card.id, seed, name, store)
    rows = _rows(G, rows_choice, custom)
    t0 = time.perf_counter()
    with user_errors():
        vec, what = _vector(ctx, card, G, method, direction, file, rows, progress)
        strengths = strength_ladder(strength)
        images, edited = edit_strip(G, ws, vec, strengths, rows)
    gallery, last = strip_outputs(images, strengths)
    rows_note = "all rows" if rows is None else f"rows {', '.join(map(str, rows))}"
    info = (f"{what} on **{label}**, {rows_note}; strengths {strengths[0]:+.2g} to {strengths[-1]:+.2g} "
            f"({UNITS[method]}) · {time.perf_counter() - t0:.2f} s")
    return gallery, last, info, Pick(card.id, edited[-1:].numpy(), f"{label} + {strength:+.2g} × {what}")


def build_section(ctx: Any, source: Source) -> None:
    """The "Linear directions" sub-tab; its edit becomes the tab's pick (for "Send latent")."""
    first_dirs = _direction_choices(ctx, source.first, "interfacegan")
    with gr.Tab("Linear directions", id="edit-directions"):
        with gr.Row():
            with gr.Column(min_width=280):
                method = gr.Radio(METHODS, value="interfacegan", label="Method")
                direction = gr.Dropdown(first_dirs, value="smile" if first_dirs else None,
                                        label="Direction", allow_custom_value=True, elem_id="edit-direction")
                file = gr.File(label="Direction file ([1, 512] or [1, 18, 512]; .npy or .pt)",
                               file_types=[".npy", ".pt"], visible=False)
                unit = gr.Markdown(f"Strength unit: {UNITS['interfacegan']}.")
                strength = gr.Slider(-10, 10, value=3, step=0.1, label="Strength (the strip runs from − to +)")
                rows = gr.Radio(ROWS, value="all", label="Rows edited")
                custom = gr.Textbox("", label="Custom rows", placeholder="e.g. 0-3")
                examples = gr.Examples([["3", "interfacegan", "smile", 3], ["5", "interfacegan", "yaw", 3],
                             ["8", "interfacegan", "hair_color=blonde", 4], ["3", "ganspace", "0", 2],
                             ["3", "sefa", "1", 5]],
                            inputs=[source.seed, method, direction, strength], label="Demo-world edits",
                            example_labels=["smile", "turn the head", "blonde hair", "GANSpace 0",
                                            "SeFa 1"], api_visibility="private")
                run = gr.Button("Edit", variant="primary", elem_id="edit-run")
            with gr.Column(min_width=320, scale=2):
                strip = gr.Gallery(label="Strip over strengths", format="png", columns=5,
                                   object_fit="contain", elem_id="edit-strip")
                edited = gr.Image(label="Edited (strongest +)", format="png", interactive=False, height=256,
                                  elem_classes=["pixel-view"])
                info = gr.Markdown(elem_id="edit-info")

    # `input`, not `change`: an example sets the method and its own direction together.
    for trigger in (source.model.change, method.input):
        trigger(partial(_on_method, ctx), [source.model, method], [direction, file, unit], api_visibility="private",
                queue=False)
    edit_inputs = [source.model, source.seed, source.name, method, direction, file, strength, rows, custom,
                   source.latents]
    run_after_fill(examples, partial(_on_example_method, ctx), [source.model, method, direction],
                   [direction, file, unit], queue=False,
                   ).then(gpu_handler(_on_direction, ctx, 60), edit_inputs, [strip, edited, info, source.pick],
                          api_visibility="private", api_name="example_edit_direction", concurrency_id="gpu")
    run.click(gpu_handler(_on_direction, ctx, 60), edit_inputs,
              [strip, edited, info, source.pick], api_name="edit_direction", api_description=API_DIRECTION,
              concurrency_id="gpu")
