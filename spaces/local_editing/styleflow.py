"""Local editing › StyleFlow (Abdal et al., 2021): set attributes and let a conditional flow find
the W+ code. The demo model uses the demo world's flow (attributes read by its predictor);
StyleGAN2 FFHQ 1024 uses the official `modellarge10k.pt` (record `styleflow-ffhq`).

Layout and wiring only; the work is `shared.editing.styleflow_edit` (flows, the edit) and
`shared.editing.styleflow_targets` (the source's reading, the requested values).
"""
from __future__ import annotations

import time
from functools import partial
from typing import Any

import gradio as gr
import torch

from shared.demo.flow import read_attributes
from shared.errors import CheckpointError
from shared.editing.styleflow_edit import (OFFICIAL_LIGHTING, FlowAttribute, FlowModel, apply_styleflow,
                                           flow_attributes, flow_for, parse_values)
from shared.hub import HubError
from shared.editing.styleflow_targets import attribute_step, target_values
from shared.images import to_uint8_hwc
from shared.latent_store import LatentStore
from spaces.handlers import gpu_handler, model_card, progress_callback, user_errors
from spaces.latents import Pick, source_latent
from spaces.local_editing.source import Source, generator, has_predictor, predictor

SF_SLIDERS = 8
SF_ROWS = [("Each attribute's own W+ rows (StyleFlow's table)", "attribute"), ("All rows", "all")]
API_STYLEFLOW = ("StyleFlow: set a source's attributes with a conditional flow (the demo world's flow on the demo "
                 "model; the official modellarge10k.pt on StyleGAN2 FFHQ 1024). Inputs: model, seed, latent name, "
                 "source attributes ('name=value, ...'; the demo model reads them with its predictor, FFHQ uses "
                 "these or the official dataset means), the 8 target values in slider order (demo: yaw, pitch, smile, "
                 "light_azimuth, light_elevation, glasses, bald, beard; FFHQ: Gender, Glasses, Yaw, Pitch, Baldness, "
                 "Beard, Age, Expression), 9 lighting coefficients (FFHQ), rows ('attribute' or 'all'). Returns "
                 "[original, edited] and a Markdown report with the wall time.")


def _sf_attributes(ctx: Any, model_id: str | None) -> list[FlowAttribute] | None:
    """The editable attributes of the flow made for a model (its "flow" companion), or None."""
    if not model_id:
        return None
    try:
        return flow_attributes(ctx.models, model_id)
    except (HubError, CheckpointError, FileNotFoundError):  # a bundle without the flow: the sub-tab says so when used
        return None


def _numbers(text: str, count: int, what: str) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in str(text).replace(",", " ").split())
    except ValueError:
        raise gr.Error(f"Write the {what} as {count} numbers separated by commas.") from None
    if len(values) != count:
        raise gr.Error(f"Write the {what} as {count} numbers separated by commas, not {len(values)}.")
    return values


def _sf_flow(ctx: Any, card: Any, lighting: str | None) -> FlowModel:
    light = _numbers(lighting, 9, "lighting") if lighting and str(lighting).strip() else None
    with user_errors():
        return flow_for(ctx.models, card.id, light)


def _assignments(text: str | None, model: FlowModel) -> dict[str, float]:
    """'yaw=3, smile=0.5' -> {name: value} (names checked against the flow)."""
    out = {}
    for item in str(text or "").replace(";", ",").split(","):
        if not item.strip():
            continue
        key, sep, value = item.partition("=")
        if not sep or key.strip() not in model.names():
            raise gr.Error(f"Write the source attributes as name=value pairs with names from "
                           f"{', '.join(a.name for a in model.editable())}; {item.strip()!r} is not one.")
        try:
            out[key.strip()] = float(value)
        except ValueError:
            raise gr.Error(f"{key.strip()} needs a number, not {value.strip()!r}.") from None
    return out


def _reading(ctx: Any, model_id: str, G: Any, ws: torch.Tensor) -> torch.Tensor:
    """The flow's conditions [N, K] of the images of `ws` as the model's attribute predictor reads them."""
    return read_attributes(G, ws, predictor(ctx, model_id))


def _slider_updates(attrs: list[FlowAttribute] | None, values: list[float] | None = None) -> list[Any]:
    out = []
    for i in range(SF_SLIDERS):
        if attrs is None or i >= len(attrs):
            out.append(gr.update(visible=False))
            continue
        a = attrs[i]
        v = a.default if values is None else min(a.high, max(a.low, float(values[i])))
        out.append(gr.update(label=f"{a.name} ({a.unit})", minimum=a.low, maximum=a.high, step=attribute_step(a),
                             value=round(v, 3), visible=True))
    return out


def _on_sf_read(ctx: Any, model_id: str | None, seed: str, name: str | None, store: LatentStore | None):
    """Sliders and the source line from the demo predictor's reading of the source (demo model),
    or the official flow's defaults (FFHQ; attributes cannot be read there)."""
    attrs = _sf_attributes(ctx, model_id)
    if attrs is None:
        return ["", "StyleFlow has a flow for the demo model and StyleGAN2 FFHQ 1024 only.",
                gr.update(visible=False)] + _slider_updates(None)
    if not has_predictor(ctx, model_id):
        line = ", ".join(f"{a.name}={a.default:g}" for a in attrs)
        return [line, "FFHQ attributes are not read automatically: the source line holds the official dataset's "
                      "means; correct it if you know the face's attributes.",
                gr.update(visible=True)] + _slider_updates(attrs)
    card, G = generator(ctx, model_id)
    ws, label = source_latent(G, card.id, seed, name, store)
    reading = _reading(ctx, card.id, G, ws)[0].tolist()
    line = ", ".join(f"{a.name}={v:.3g}" for a, v in zip(attrs, reading))
    return [line, f"Read from **{label}** by the demo predictor.", gr.update(visible=False)] + \
        _slider_updates(attrs, reading)


def _on_styleflow(ctx: Any, model_id: str, seed: str, name: str | None, source: str | None, *rest: Any,
                  progress: gr.Progress | None = None):
    """Adapter: UI values -> `apply_styleflow` -> [original, edited], a report, the edit for sending."""
    values, (lighting, rows, store) = rest[:SF_SLIDERS], rest[SF_SLIDERS:]
    model = _sf_flow(ctx, model_card(ctx, model_id), lighting)   # before the generator: a missing flow fails fast
    card, G = generator(ctx, model_id, progress)
    ws, label = source_latent(G, card.id, seed, name, store)
    attrs = model.editable()
    if any(v is None for v in values[:len(attrs)]):
        raise gr.Error("Set every attribute slider (read the source first).")
    t0 = time.perf_counter()
    demo = has_predictor(ctx, card.id)
    with user_errors():
        src = _reading(ctx, card.id, G, ws) if demo else parse_values(model, _assignments(source, model), 1)
        edit = apply_styleflow(G, model, ws, src, target_values(model, src, values), rows=rows or "attribute",
                               progress=progress_callback(progress))
        original = G.synthesis(ws, noise_mode="const").float().cpu().clamp(-1, 1)
    seconds = time.perf_counter() - t0
    after = _reading(ctx, card.id, G, edit.ws)[0] if demo else None
    lines = []
    for name_, req, rows_ in edit.steps:
        j = model.index(name_)
        seen = f" (read after: {float(after[j]):.3g})" if after is not None else ""
        lines.append(f"| {name_} | {float(edit.source[0, j]):.3g} | {float(req[0]):.3g}{seen} | "
                     f"{', '.join(map(str, rows_))} |")
    u8 = to_uint8_hwc(torch.cat([original, edit.image]))
    gallery = [(u8[0], f"original: {label}"), (u8[1], "edited")]
    table = ("| attribute | source | target | W+ rows |\n|---|---|---|---|\n" + "\n".join(lines)) if lines else \
        "No attribute changed: every slider equals the source's value."
    info = f"StyleFlow ({model.label}) on **{label}** · {seconds:.2f} s\n\n{table}"
    changed = ", ".join(f"{n_}→{float(r[0]):.3g}" for n_, r, _ in edit.steps) or "no change"
    return gallery, info, Pick(card.id, edit.ws.numpy(), f"{label} + StyleFlow {changed}")


def build_section(ctx: Any, source: Source) -> None:
    """The "StyleFlow" sub-tab; its edit becomes the tab's pick (for "Send latent")."""
    attrs = _sf_attributes(ctx, source.first)
    first = _on_sf_read(ctx, source.first, "3", None, None) if has_predictor(ctx, source.first) else None
    with gr.Tab("StyleFlow", id="edit-styleflow"):
        gr.Markdown("Set attributes and let a conditional normalising flow find the W+ code: w → z under the "
                    "source's attributes, z → w under the new ones, only each attribute's own W+ rows "
                    "written "
                    "(Abdal et al., 2021). The demo model uses the demo world's flow (attributes read by its "
                    "predictor); StyleGAN2 FFHQ 1024 uses the official `modellarge10k.pt`.")
        with gr.Row():
            with gr.Column(min_width=280):
                read = gr.Button("Read the source's attributes", elem_id="edit-sf-read")
                line = gr.Textbox(first[0] if first else "", elem_id="edit-sf-source",
                                  label="Source attributes (name=value; FFHQ: edit if you know them)")
                note = gr.Markdown(first[1] if first else "")
                sliders = []
                for i in range(SF_SLIDERS):
                    a = attrs[i] if attrs and i < len(attrs) else None
                    init = first[3 + i] if first else {}
                    sliders.append(gr.Slider(
                        a.low if a else 0, a.high if a else 1, value=init.get("value", a.default if a else 0),
                        step=init.get("step", 0.01), label=f"{a.name} ({a.unit})" if a else "",
                        visible=a is not None, elem_id=f"edit-sf-{i}"))
                light = gr.Textbox(", ".join(f"{v:g}" for v in OFFICIAL_LIGHTING), visible=False,
                                   label="Lighting: 9 spherical-harmonic coefficients (official flow; held)")
                rows = gr.Radio(SF_ROWS, value="attribute", label="W+ rows written")
                run = gr.Button("Apply", variant="primary", elem_id="edit-sf-run")
            with gr.Column(min_width=320, scale=2):
                gallery = gr.Gallery(label="Original and edited", format="png", columns=2,
                                     object_fit="contain", elem_id="edit-sf-result")
                info = gr.Markdown(elem_id="edit-sf-info")

    inputs = [source.model, source.seed, source.name, source.latents]
    read_outputs = [line, note, light, *sliders]
    for trigger in (read.click, source.model.change, source.seed.submit, source.name.change):
        trigger(partial(_on_sf_read, ctx), inputs, read_outputs, api_visibility="private")
    run.click(gpu_handler(_on_styleflow, ctx, 120),
              [source.model, source.seed, source.name, line, *sliders, light, rows, source.latents],
              [gallery, info, source.pick], api_name="edit_styleflow", api_description=API_STYLEFLOW,
              concurrency_id="gpu")
