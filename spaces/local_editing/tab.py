"""Local editing tab: linear latent directions (InterFaceGAN, GANSpace, SeFa, direction files) and
StyleSpace channel edits, on seeds or on latents the session sent here (inverted photos, mixes).

Layout and wiring only; the work is `shared.editing` (directions, StyleSpace, Editing in Style,
StyleFlow) and the demo world's fitted directions and flow (`shared.demo.bundle.load_demo_directions`,
`shared.demo.train_flow.load_demo_flow`). Retrieve in Style takes its part masks from the Editing
in Style catalogue's named clusters or, on the demo model, the demo predictor; StyleFlow uses the demo world's own flow on the demo model and the
official `modellarge10k.pt` (record `styleflow-ffhq`) on StyleGAN2 FFHQ 1024.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from functools import partial
from typing import Any

import gradio as gr
import numpy as np
import torch

from shared import hub
from shared.demo.bundle import load_demo_directions
from shared.editing.directions import cached_ganspace, edit_strip, load_direction_file, sefa
from shared.editing.local_style import (PALETTE, PartCatalog, cached_catalog, cluster_overlay, contribution_image,
                                        locality, name_clusters, part_maps, transfer_part)
from shared.editing.retrieve_style import (RIS_PARTS, catalogue_masks, part_contributions, part_query,
                                           predictor_masks, retrieve_part)
from shared.editing.retrieve_style import transfer as ris_transfer
from shared.crossover import PART_PRESETS, mask_from_layers, predicted_part_mask
from shared.editing.styleflow_edit import (OFFICIAL_LIGHTING, FlowAttribute, FlowModel, apply_styleflow,
                                           official_attributes, official_flow_model, parse_values)
from shared.editing.stylespace import channel_names, edit_channels, region_channels, style_stats
from shared.generation import parse_seeds
from shared.images import to_uint8_hwc
from shared.latent_store import LatentStore
from shared.mixing import resolve_rows, ws_from_seeds
from spaces.family import inbox_markdown
from spaces.handlers import (gpu_handler, model_card, progress_callback, send_latent, source_latent,
                             stylegan_generator, user_errors)
from spaces.model_picker import card_summary, default_model, model_choices

TASK = "local-editing"
ARCHS = ("stylegan2", "stylegan3")
METHODS = [("InterFaceGAN (fitted boundaries)", "interfacegan"), ("GANSpace (PCA of W)", "ganspace"),
           ("SeFa (closed-form factorisation)", "sefa"), ("Direction file (.npy / .pt)", "file")]
ROWS = [("All rows", "all"), ("Coarse", "coarse"), ("Middle", "middle"), ("Fine", "fine"), ("Custom", "custom")]
COMPONENTS = 16
SEND_TARGETS = (("text-editing", "Text editing"), ("mixing", "Mixing"), ("inversion", "Inversion"),
                ("local-editing", "Local editing"))
UNITS = {"interfacegan": "tenths of the factor's range (the demo world's fitted slope)",
         "ganspace": "standard deviations of W along the component",
         "sefa": "units of W (the SeFa paper's scale)",
         "file": "multiples of the stored vector (an upload, or a registered file picked under Direction)"}

INTRO = """### Local editing
Change one thing about a face and leave the rest alone. Pick a source (a seed, or a latent this
session sent here from Generate, Inversion or Mixing), then move it along a **linear direction**
(InterFaceGAN boundaries, GANSpace components, SeFa factors or a direction file), change
**StyleSpace** channels, take one part from a reference face (**Editing in Style**, **Retrieve in
Style**, which also finds faces with a similar part) or set attributes with **StyleFlow**."""

PLANNED = """#### Notes
StyleFlow runs the demo world's own flow (trained by this project, `shared/demo/train_flow.py`) on
the demo model and StyleFlow's official `modellarge10k.pt` on StyleGAN2 FFHQ 1024; other generators
have no flow. Retrieve in Style finds each part's channels on the two faces at hand; its part masks come
from the demo predictor on the demo model, and from the clusters you name in the Editing in Style catalogue
on any StyleGAN2."""

API_DIRECTION = ("Edit a source (seed text such as '3', or the name of a session latent) along a direction: "
                 "method 'interfacegan' (direction = a demo factor such as 'smile' or 'hair_color=red'), "
                 "'ganspace' / 'sefa' (direction = component number), or 'file' (an uploaded .npy/.pt). "
                 "Returns the strip over strengths, the edited image and a Markdown line.")
API_STYLESPACE = ("Edit StyleSpace channels of a source (StyleGAN2): layer index, channel, strength in standard "
                  "deviations. Returns the strip over strengths, the edited image and a Markdown line.")


@dataclass(frozen=True, eq=False)
class EditPick:
    model_id: str
    ws: np.ndarray       # [1, num_ws, w_dim]
    label: str


def _generator_choices(ctx: Any) -> list[tuple[str, str]]:
    return [(label, i) for label, i in model_choices(ctx, TASK) if ctx.registry.get(i).arch in ARCHS]


def _generator(ctx: Any, model_id: str | None, progress: gr.Progress | None = None):
    return stylegan_generator(ctx, model_id, "editing", progress)


def _is_demo(ctx: Any, model_id: str | None) -> bool:
    return model_id == getattr(ctx.registry, "DEFAULT_GENERATOR_ID", None)


def _direction_choices(ctx: Any, model_id: str | None, method: str) -> list[tuple[str, str]]:
    if method == "interfacegan":
        if not _is_demo(ctx, model_id):
            return []
        ds = load_demo_directions()
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


def _on_store(store: LatentStore | None, model_id: str | None):
    store = store or LatentStore()
    names = store.list(model_id)
    latest = store.latest_for(TASK)
    return gr.update(choices=names, value=latest[0] if latest and latest[0] in names else None)


def _rows(G: Any, choice: str | None, custom: str | None):
    if choice in (None, "all"):
        return None
    with user_errors():
        if choice == "custom":
            if not custom or not str(custom).strip():
                raise gr.Error("Write the custom rows, e.g. 0-3.")
            return list(resolve_rows(G, str(custom)))
        return list(resolve_rows(G, choice))


def _strengths(strength: float, count: int = 5) -> list[float]:
    s = float(strength)
    return [s * t for t in np.linspace(-1, 1, count)]


def _strip_outputs(images: torch.Tensor, strengths: list[float]):
    u8 = to_uint8_hwc(images)
    gallery = [(img, f"{s:+.2g}") for img, s in zip(u8, strengths)]
    return gallery, u8[-1]


def _on_direction(ctx: Any, model_id: str, seed: str, name: str | None, method: str, direction: str | None,
                  file: Any, strength: float, rows_choice: str, custom: str, store: LatentStore | None,
                  progress: gr.Progress | None = None):
    card, G = _generator(ctx, model_id, progress)
    ws, label = source_latent(G, card.id, seed, name, store)
    rows = _rows(G, rows_choice, custom)
    t0 = time.perf_counter()
    with user_errors():
        if method == "interfacegan":
            if not _is_demo(ctx, card.id):
                raise gr.Error("Fitted InterFaceGAN boundaries ship for the demo model only; use a direction file "
                               "for this model.")
            ds = load_demo_directions()
            if direction not in ds.names():
                raise gr.Error(f"Pick one of the demo directions ({', '.join(ds.names()[:5])}, ...).")
            if ds[direction].slope <= 0:
                raise gr.Error(f"The demo generator does not follow the {direction} direction (measured slope "
                               f"{ds[direction].slope:.3g}); pick another one.")
            from shared.portraits import FACTORS
            factor, _, cls = direction.partition("=")
            spec = next(s for s in FACTORS if s.name == factor)
            unit_change = 0.1 * (1.0 if cls else spec.high - spec.low)
            vec = ds.step_for(direction, unit_change)
            what = f"InterFaceGAN '{direction}'"
        elif method in ("ganspace", "sefa"):
            try:
                k = int(direction or 0)
            except ValueError:
                raise gr.Error("Pick a component number from 0 to 15.") from None
            if not 0 <= k < COMPONENTS:
                raise gr.Error(f"Pick a component number from 0 to {COMPONENTS - 1}.")
            if method == "ganspace":
                basis = cached_ganspace(card.id, G, k=COMPONENTS, progress=progress_callback(progress))
                vec = basis.vectors[k] * basis.scales[k]
                what = f"GANSpace component {k} ({basis.info['explained'][k]:.1%} of W's variance)"
            else:
                basis = sefa(G, rows, k=COMPONENTS)
                vec = basis.vectors[k]
                what = f"SeFa factor {k}"
        elif method == "file":
            if file is None and direction and direction in ctx.registry.ids():
                record = ctx.registry.get(direction)
                path = hub.cached_path(record)
                if path is None:
                    raise gr.Error(f"{record.id} is not on this machine; get it from {record.manual_url} and set "
                                   f"{record.env_var} to its path (see the Models tab).")
                vec = load_direction_file(path, G)
                what = f"the registered direction {record.id}"
            else:
                if file is None:
                    raise gr.Error("Upload a direction file (.npy or .pt) first, or pick a registered one.")
                path = file if isinstance(file, str) else getattr(file, "name", None) or file.get("path")
                vec = load_direction_file(path, G)
                what = "the uploaded direction"
        else:
            raise gr.Error(f"Unknown method {method!r}; choose interfacegan, ganspace, sefa or file.")
        strengths = _strengths(strength)
        images, edited = edit_strip(G, ws, vec, strengths, rows)
    gallery, last = _strip_outputs(images, strengths)
    rows_note = "all rows" if rows is None else f"rows {', '.join(map(str, rows))}"
    info = (f"{what} on **{label}**, {rows_note}; strengths {strengths[0]:+.2g} to {strengths[-1]:+.2g} "
            f"({UNITS[method]}) · {time.perf_counter() - t0:.2f} s")
    pick = EditPick(card.id, edited[-1:].numpy(), f"{label} + {strength:+.2g} × {what}")
    return gallery, last, info, pick


def _layer_choices(ctx: Any, model_id: str | None):
    if not model_id or ctx.registry.get(model_id).arch != "stylegan2":
        return gr.update(choices=[], value=None)
    card = ctx.registry.get(model_id)
    if card.builtin is None and hub.cached_path(card) is None:
        return gr.update(choices=[], value=None)
    _, G = _generator(ctx, model_id)
    names = [(label, str(i)) for label, i, _ in channel_names(G)]
    return gr.update(choices=names, value=names[min(3, len(names) - 1)][1] if names else None)


def _on_stylespace(ctx: Any, model_id: str, seed: str, name: str | None, layer: str | None, channel: float,
                   strength: float, store: LatentStore | None, progress: gr.Progress | None = None):
    card, G = _generator(ctx, model_id, progress)
    if G.arch != "stylegan2":
        raise gr.Error("StyleSpace edits need a StyleGAN2 generator; the StyleGAN3 code has no S-space API.")
    ws, label = source_latent(G, card.id, seed, name, store)
    if layer is None or str(layer).strip() == "":
        raise gr.Error("Pick a style layer.")
    t0 = time.perf_counter()
    with user_errors():
        stats = style_stats(G, key=card.id)
        strengths = _strengths(strength)
        images = torch.cat([edit_channels(G, ws, [(int(layer), int(channel), s)], stats)[0] for s in strengths])
    gallery, last = _strip_outputs(images, strengths)
    info = (f"StyleSpace layer {int(layer)}, channel {int(channel)} on **{label}**; strengths "
            f"{strengths[0]:+.2g} to {strengths[-1]:+.2g} standard deviations · {time.perf_counter() - t0:.2f} s. "
            f"The edit lives in S (not W+), so it is not sent on as a latent.")
    return gallery, last, info


@dataclass(frozen=True, eq=False)
class CatalogState:
    """A session's part catalogue (small: cluster centres and contribution matrices)."""
    model_id: str
    catalog: PartCatalog


def _eis_layer_choices(ctx: Any, model_id: str | None):
    """The conv style layers a catalogue can cluster, with 'auto' (the last conv layer at <= 32 px)."""
    auto = [("auto: the last conv layer at 32 px or below", "auto")]
    if not model_id or ctx.registry.get(model_id).arch != "stylegan2":
        return gr.update(choices=auto, value="auto")
    card = ctx.registry.get(model_id)
    if card.builtin is None and hub.cached_path(card) is None:
        return gr.update(choices=auto, value="auto")
    _, G = _generator(ctx, model_id)
    conv = [(label, str(i)) for label, i, _ in channel_names(G) if not G.style_layers[i].is_torgb]
    return gr.update(choices=auto + conv, value="auto")


def _on_catalog(ctx: Any, model_id: str, k: float, samples: float, layer: str | None = "auto",
                progress: gr.Progress | None = None):
    card, G = _generator(ctx, model_id, progress)
    if G.arch != "stylegan2":
        raise gr.Error("Editing in Style needs a StyleGAN2 generator.")
    t0 = time.perf_counter()
    with user_errors():
        index = None if layer in (None, "", "auto") else int(layer)
        if index is not None and (not 0 <= index < len(G.style_layers) or G.style_layers[index].is_torgb):
            raise gr.Error("Choose a conv style layer (toRGB layers have no spatial parts).")
        catalog, cached = cached_catalog(card.id, G, k=int(k), layer=index, samples=int(samples),
                                         progress=progress_callback(progress))
        names = {}
        if _is_demo(ctx, card.id):
            from shared.demo.predictor import DEFAULT_PATH, load_predictor
            names = name_clusters(G, catalog, load_predictor(DEFAULT_PATH))
        catalog = PartCatalog(catalog.layer, catalog.centres, catalog.contributions, catalog.samples, names)
        ws = ws_from_seeds(G, list(range(8)))
        overlay = cluster_overlay(G.synthesis(ws, noise_mode="const").float().cpu(), part_maps(G, catalog, ws))
    choices = [(f"{k_}: {catalog.names.get(k_, 'cluster')}", k_) for k_ in range(catalog.k)]
    info_layer = G.style_layers[catalog.layer]
    legend = " · ".join(f"<span style='color:rgb{tuple(int(v) for v in PALETTE[k_])}'>■</span> {label}"
                        for label, k_ in choices)
    info = (f"{catalog.k} parts from spherical k-means on the {info_layer.resolution}-px activations (style layer "
            f"{catalog.layer}) of {catalog.samples} samples · {time.perf_counter() - t0:.1f} s"
            f"{' (kept from an earlier build in this process)' if cached else ''}. {legend}")
    return ([(img, f"seed {i}") for i, img in enumerate(overlay)], info, CatalogState(card.id, catalog),
            gr.update(choices=choices, value=[choices[0][1]]), gr.update(choices=choices, value=[]),
            gr.update(choices=choices, value=[]))


def _on_rename(state: CatalogState | None, text: str | None):
    """Name clusters from text such as '2=hair, 5=eyes' (kept in the session's catalogue); the
    cluster pickers of Editing in Style and Retrieve in Style show the new names."""
    if state is None:
        raise gr.Error("Build the part catalogue first, then name its clusters.")
    names = dict(state.catalog.names)
    for item in filter(None, (part.strip() for part in str(text or "").split(","))):
        key, sep, value = item.partition("=")
        if not sep or not key.strip().isdigit() or not value.strip():
            raise gr.Error(f"Write names as 'cluster=name' pairs separated by commas, e.g. '2=hair, 5=eyes' "
                           f"(could not read {item!r}).")
        if not 0 <= int(key) < state.catalog.k:
            raise gr.Error(f"Cluster {int(key)} does not exist; this catalogue has clusters 0 to {state.catalog.k - 1}.")
        names[int(key)] = value.strip()[:40]
    c = state.catalog
    state = CatalogState(state.model_id, PartCatalog(c.layer, c.centres, c.contributions, c.samples, names))
    choices = [(f"{k_}: {names.get(k_, 'cluster')}", k_) for k_ in range(c.k)]
    return (state, gr.update(choices=choices), gr.update(choices=choices), gr.update(choices=choices),
            "Names: " + " · ".join(label for label, _ in choices))


def _on_transfer(ctx: Any, model_id: str, seed: str, name: str | None, state: CatalogState | None,
                 reference: str, clusters: list[int] | None, rho: float, epsilon: float, store: LatentStore | None,
                 progress: gr.Progress | None = None):
    card, G = _generator(ctx, model_id, progress)
    if state is None or state.model_id != card.id:
        raise gr.Error("Build the part catalogue for this model first.")
    ws, label = source_latent(G, card.id, seed, name, store)
    with user_errors():
        ref_seeds = parse_seeds(str(reference), max_count=1)
        ws_ref = ws_from_seeds(G, ref_seeds)
        parts = [int(c) for c in (clusters or [])]
        if not parts:
            raise gr.Error("Choose the part (one or more clusters) to take from the reference.")
        t0 = time.perf_counter()
        img, moved = transfer_part(G, state.catalog, ws, ws_ref, parts, rho=float(rho), epsilon=float(epsilon))
        base = G.synthesis(ws, noise_mode="const").float().cpu().clamp(-1, 1)
        ref = G.synthesis(ws_ref, noise_mode="const").float().cpu().clamp(-1, 1)
        region = sum(part_maps(G, state.catalog, ws)[0] == k for k in parts)
        share = locality(base, img, region)
    u8 = to_uint8_hwc(torch.cat([base, ref, img]))
    gallery = [(u8[0], f"target: {label}"), (u8[1], f"reference: seed {ref_seeds[0]}"), (u8[2], "result")]
    info = (f"{moved} style channels taken from the reference (ρ {float(rho):.2f}, ε {float(epsilon):g}); "
            f"{share:.0%} of the pixel change lies inside the chosen part · {time.perf_counter() - t0:.2f} s. "
            f"The result lives in S, so it is not sent on as a latent. Below: each style channel's share inside "
            f"the part (dark 0, light 1), a cyan tick on each channel taken.")
    matrix = contribution_image(G, state.catalog, parts, rho=float(rho), epsilon=float(epsilon))
    return gallery, info, matrix


def _named_channel_choices(ctx: Any, model_id: str | None) -> list[tuple[str, str]]:
    """The demo world's attribute channels (shared/demo/stylespace_channels.json) as 'layer:channel'."""
    if not _is_demo(ctx, model_id):
        return []
    from shared.demo.attribute_channels import load_attribute_channels
    table = load_attribute_channels()
    if not table:
        return []
    out = []
    for factor, rows in table["factors"].items():
        for r in rows:
            out.append((f"{factor}: layer {r['layer']}, channel {r['channel']} ({r['effect']:+.2f} of its range per "
                        f"+{table['strength']:g} σ, {r['purity']:.0%} of the change)", f"{r['layer']}:{r['channel']}"))
    return out


def _named_slider_spec() -> list[tuple[str, int, int, float, float]]:
    """(factor, layer, channel, effect per step, step) of the demo world's best channel per factor
    (shared/demo/stylespace_channels.json), one named slider each."""
    from shared.demo.attribute_channels import load_attribute_channels
    table = load_attribute_channels() or {"factors": {}, "strength": 1.0}
    return [(factor, rows[0]["layer"], rows[0]["channel"], rows[0]["effect"], float(table["strength"]))
            for factor, rows in table["factors"].items() if rows]


def _on_named_sliders(ctx: Any, model_id: str, seed: str, name: str | None, *rest: Any,
                      progress: gr.Progress | None = None):
    """Adapter: the named sliders (standard deviations per factor's channel) -> `edit_channels` ->
    original and edited, with the demo predictor's reading of each moved factor."""
    values, store = rest[:-1], rest[-1]
    spec = _named_slider_spec()
    if not _is_demo(ctx, model_id):
        raise gr.Error("The named channels were found on the demo model with its predictor: pick the demo model, "
                       "or use the single-channel edit above on another StyleGAN2.")
    if len(values) != len(spec):
        raise gr.Error(f"Give {len(spec)} slider values (one per named channel).")
    moved = [(f, layer, ch, float(v)) for (f, layer, ch, _, _), v in zip(spec, values) if float(v or 0) != 0]
    if not moved:
        raise gr.Error("Move at least one named slider away from 0.")
    card, G = _generator(ctx, model_id, progress)
    ws, label = source_latent(G, card.id, seed, name, store)
    t0 = time.perf_counter()
    with user_errors():
        stats = style_stats(G, key=card.id)
        base, _ = edit_channels(G, ws, [], stats)
        edited, _ = edit_channels(G, ws, [(layer, ch, v) for _, layer, ch, v in moved], stats)
        from shared.demo.predictor import DEFAULT_PATH, load_predictor
        read = load_predictor(DEFAULT_PATH).predict(torch.cat([base, edited]).clamp(-1, 1))
    seconds = time.perf_counter() - t0
    rows = "\n".join(f"| {f} | {layer}:{ch} | {v:+.1f} σ | {float(read.factors[f][0]):.3g} | "
                     f"{float(read.factors[f][1]):.3g} |" for f, layer, ch, v in moved)
    info = (f"Named StyleSpace channels on **{label}** · {seconds:.2f} s. The demo predictor reads each moved factor "
            f"before and after:\n\n| factor | layer:channel | strength | before | after |\n|---|---|---|---|---|\n"
            f"{rows}\n\nThe edit lives in S (not W+), so it is not sent on as a latent.")
    u8 = to_uint8_hwc(torch.cat([base, edited]).clamp(-1, 1))
    return [(u8[0], f"original: {label}"), (u8[1], "edited")], info


def _on_named_channel(value: str | None):
    if not value:
        return gr.update(), gr.update()
    layer, channel = value.split(":")
    return gr.update(value=layer), int(channel)


RIS_SOURCES = [("Demo predictor's part map (demo model)", "predictor"),
               ("Catalogue clusters named here (build the catalogue under Editing in Style)", "catalogue")]


def _ris_masks(ctx: Any, card: Any, G: Any, ws: torch.Tensor, part: str, source: str, state: CatalogState | None,
               part_clusters: list[int] | None, hair_clusters: list[int] | None) -> dict[str, torch.Tensor]:
    """The part masks of Retrieve in Style for latents ws: the demo predictor's, or named clusters."""
    if part not in RIS_PARTS:
        raise gr.Error(f"Choose the part among {', '.join(RIS_PARTS)}.")
    if source == "predictor":
        if not _is_demo(ctx, card.id):
            raise gr.Error("The demo predictor only reads demo-world faces: build a part catalogue under Editing in "
                           "Style, choose 'Catalogue clusters' and tick the part's clusters.")
        from shared.demo.predictor import DEFAULT_PATH, load_predictor
        return predictor_masks(G, ws, load_predictor(DEFAULT_PATH))
    if state is None or state.model_id != card.id:
        raise gr.Error("Build the part catalogue for this model under Editing in Style first, then tick the part's "
                       "clusters here.")
    named: dict[str, list[int]] = {}
    if hair_clusters:
        named["hair"] = [int(c) for c in hair_clusters]
    if part == "pose":
        if not hair_clusters:
            raise gr.Error("Pose is what the coarse layers do besides hair: tick the hair clusters.")
    elif part_clusters:
        named[part] = [int(c) for c in part_clusters]
    else:
        raise gr.Error(f"Tick the clusters that make up the {part}.")
    return catalogue_masks(G, state.catalog, ws, named)


def _on_ris_transfer(ctx: Any, model_id: str, seed: str, name: str | None, part: str, source: str,
                     state: CatalogState | None, part_clusters: list[int] | None, hair_clusters: list[int] | None,
                     reference: str, amount: float, store: LatentStore | None, progress: gr.Progress | None = None):
    card, G = _generator(ctx, model_id, progress)
    if G.arch != "stylegan2":
        raise gr.Error("Retrieve in Style needs a StyleGAN2 generator.")
    ws, label = source_latent(G, card.id, seed, name, store)
    with user_errors():
        ref_seeds = parse_seeds(str(reference), max_count=1)
        ws_ref = ws_from_seeds(G, ref_seeds)
        t0 = time.perf_counter()
        pair = torch.cat([ws, ws_ref])
        masks = _ris_masks(ctx, card, G, pair, part, source, state, part_clusters, hair_clusters)
        q = part_query(G, part_contributions(G, pair, masks), part)
        img = ris_transfer(G, ws, ws_ref, q, amount=float(amount))
        base = G.synthesis(pair, noise_mode="const").float().cpu().clamp(-1, 1)
        seconds = time.perf_counter() - t0
    u8 = to_uint8_hwc(torch.cat([base, img]))
    gallery = [(u8[0], f"target: {label}"), (u8[1], f"reference: seed {ref_seeds[0]}"), (u8[2], f"{part} taken")]
    if part == "pose":
        where = "pose acts on the whole face, so no locality is measured"
    else:
        share = locality(base[:1], img, masks[part][0] | masks[part][1])
        where = f"{share:.0%} of the pixel change lies inside the {part} (target's or reference's)"
    info = (f"{int((q > 0).sum())} style channels carry the {part} (weights up to 1); amount {float(amount):.2f}; "
            f"{where} · {seconds:.2f} s. The result lives in S, so it is not sent on as a latent.")
    return gallery, info


def _on_ris_retrieve(ctx: Any, model_id: str, seed: str, name: str | None, part: str, source: str,
                     state: CatalogState | None, part_clusters: list[int] | None, hair_clusters: list[int] | None,
                     bank: str, store: LatentStore | None, progress: gr.Progress | None = None):
    card, G = _generator(ctx, model_id, progress)
    if G.arch != "stylegan2":
        raise gr.Error("Retrieve in Style needs a StyleGAN2 generator.")
    ws, label = source_latent(G, card.id, seed, name, store)
    t0 = time.perf_counter()
    with user_errors():
        bank_seeds = parse_seeds(str(bank), max_count=256)
        bank_ws = ws_from_seeds(G, bank_seeds)
        names = (store or LatentStore()).list(card.id)
        if names:  # the session's own latents (inverted photos, mixes) join the bank
            extra = torch.cat([torch.from_numpy(np.array((store or LatentStore()).get(n).ws)) for n in names])
            bank_ws = torch.cat([bank_ws, extra])
        labels = [f"seed {s_}" for s_ in bank_seeds] + names
        masks = _ris_masks(ctx, card, G, ws, part, source, state, part_clusters, hair_clusters)
        q = part_query(G, part_contributions(G, ws, masks), part)
        order, sim = retrieve_part(G, ws, bank_ws, q)
        top = order[:8]
        imgs = G.synthesis(torch.cat([ws, bank_ws[top]]), noise_mode="const").float().cpu().clamp(-1, 1)
    u8 = to_uint8_hwc(imgs)
    gallery = [(u8[0], f"query: {label}")] + [(u8[i + 1], f"{labels[int(j)]} · {float(sim[i]):.2f}")
                                               for i, j in enumerate(top)]
    info = (f"The {len(labels)} faces of the bank ranked by their {part} ({int((q > 0).sum())} style channels, "
            f"cosine similarity around the mean style); best 8 shown · {time.perf_counter() - t0:.2f} s")
    return gallery, info


REGION_CHOICES = [(f"Part: {name} (demo predictor)", f"part:{name}") for name in PART_PRESETS] + \
    [("Drawn (paint on the source below)", "drawn")]


def _on_painter(ctx: Any, model_id: str, seed: str, name: str | None, store: LatentStore | None):
    """Put the source image (enlarged) into the region painter."""
    card, G = _generator(ctx, model_id)
    ws, _ = source_latent(G, card.id, seed, name, store)
    img = to_uint8_hwc(G.synthesis(ws, noise_mode="const").float().cpu())[0]
    k = max(1, 256 // img.shape[0])
    big = img.repeat(k, 0).repeat(k, 1)
    return {"background": big, "layers": [], "composite": big}


def _on_find_channels(ctx: Any, model_id: str, seed: str, name: str | None, region_choice: str, painter: Any,
                      strength: float, store: LatentStore | None, progress: gr.Progress | None = None):
    card, G = _generator(ctx, model_id, progress)
    if G.arch != "stylegan2":
        raise gr.Error("StyleSpace needs a StyleGAN2 generator.")
    ws, label = source_latent(G, card.id, seed, name, store)
    t0 = time.perf_counter()
    with user_errors():
        img = G.synthesis(ws, noise_mode="const").float().cpu().clamp(-1, 1)
        if region_choice == "drawn":
            layers = (painter or {}).get("layers") if isinstance(painter, dict) else None
            if not layers:
                raise gr.Error("Click 'Load the source into the painter', paint the region, then search.")
            region = mask_from_layers(layers, int(G.img_resolution))
        elif region_choice and region_choice.startswith("part:"):
            region = predicted_part_mask(img, region_choice.split(":", 1)[1], int(G.img_resolution))
        else:
            raise gr.Error("Choose a region: a part or 'Drawn'.")
        stats = style_stats(G, key=card.id)
        found = region_channels(G, ws, region, stats, strength=float(strength), top=8,
                                progress=progress_callback(progress))
        if not found:
            raise gr.Error("No channel acts mostly inside that region; draw a larger region or pick another part.")
        previews = torch.cat([edit_channels(G, ws, [(c.layer, c.channel, float(strength))], stats)[0] for c in found])
    u8 = to_uint8_hwc(torch.cat([img, previews]))
    gallery = [(u8[0], f"source: {label}")] + [(u8[i + 1], f"layer {c.layer}, ch {c.channel}: {c.inside:.0%} inside")
                                               for i, c in enumerate(found)]
    rows = "\n".join(f"| {c.layer} | {c.channel} | {c.inside:.0%} | {c.energy:.3f} |" for c in found)
    info = (f"Top channels for the region on **{label}** ({float(region.mean()):.0%} of the image), each moved "
            f"{float(strength):+g} standard deviations · {time.perf_counter() - t0:.1f} s\n\n"
            f"| layer | channel | change inside | change energy inside |\n|---|---|---|---|\n{rows}")
    first = found[0]
    return gallery, info, gr.update(value=str(first.layer)), first.channel


# ---- StyleFlow ------------------------------------------------------------------------------------------
SF_SLIDERS = 8
SF_ROWS = [("Each attribute's own W+ rows (StyleFlow's table)", "attribute"), ("All rows", "all")]
OFFICIAL_FLOW_ID = "styleflow-ffhq"
API_STYLEFLOW = ("StyleFlow: set a source's attributes with a conditional flow (the demo world's flow on the demo "
                 "model; the official modellarge10k.pt on StyleGAN2 FFHQ 1024). Inputs: model, seed, latent name, "
                 "source attributes ('name=value, ...'; the demo model reads them with its predictor, FFHQ uses "
                 "these or the official dataset means), the 8 target values in slider order (demo: yaw, pitch, smile, "
                 "light_azimuth, light_elevation, glasses, bald, beard; FFHQ: Gender, Glasses, Yaw, Pitch, Baldness, "
                 "Beard, Age, Expression), 9 lighting coefficients (FFHQ), rows ('attribute' or 'all'). Returns "
                 "[original, edited] and a Markdown report with the wall time.")


def _official_for(ctx: Any, card: Any) -> bool:
    try:
        record = ctx.registry.get(OFFICIAL_FLOW_ID)
    except KeyError:
        return False
    return card.arch == "stylegan2" and card.id.startswith(str((record.arch_config or {}).get("for", "-")))


def _sf_attributes(ctx: Any, model_id: str | None) -> list[FlowAttribute] | None:
    """The editable attributes of the flow for a model (no weights loaded), or None."""
    if _is_demo(ctx, model_id):
        from shared.demo.train_flow import load_demo_flow
        try:
            return load_demo_flow().editable()
        except FileNotFoundError:  # a bundle without the flow: the sub-tab says so when used
            return None
    if model_id and _official_for(ctx, ctx.registry.get(model_id)):
        return [a for a in official_attributes() if a.editable]
    return None


def _sf_flow(ctx: Any, card: Any, lighting: str | None) -> FlowModel:
    if _is_demo(ctx, card.id):
        from shared.demo.train_flow import load_demo_flow
        try:
            return load_demo_flow()
        except FileNotFoundError as e:
            raise gr.Error(str(e)) from e
    if not _official_for(ctx, card):
        raise gr.Error(f"StyleFlow has a flow for the demo model and for StyleGAN2 FFHQ 1024 only, not {card.id}.")
    light = _numbers(lighting, 9, "lighting") if lighting and str(lighting).strip() else OFFICIAL_LIGHTING
    with user_errors():
        return official_flow_model(hub.cached_path(ctx.registry.get(OFFICIAL_FLOW_ID)), light,
                                   device=getattr(ctx, "device", "cpu"))


def _numbers(text: str, count: int, what: str) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in str(text).replace(",", " ").split())
    except ValueError:
        raise gr.Error(f"Write the {what} as {count} numbers separated by commas.") from None
    if len(values) != count:
        raise gr.Error(f"Write the {what} as {count} numbers separated by commas, not {len(values)}.")
    return values


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


def _demo_reading(G: Any, ws: torch.Tensor) -> torch.Tensor:
    from shared.demo.predictor import DEFAULT_PATH, load_predictor
    from shared.demo.train_flow import read_conditions
    return read_conditions(load_predictor(DEFAULT_PATH).predict(G.synthesis(ws, noise_mode="const")))


def _slider_step(a: FlowAttribute) -> float:
    return 0.01 if a.high - a.low <= 2 else 0.5


def _slider_updates(attrs: list[FlowAttribute] | None, values: list[float] | None = None) -> list[Any]:
    out = []
    for i in range(SF_SLIDERS):
        if attrs is None or i >= len(attrs):
            out.append(gr.update(visible=False))
            continue
        a = attrs[i]
        v = a.default if values is None else min(a.high, max(a.low, float(values[i])))
        out.append(gr.update(label=f"{a.name} ({a.unit})", minimum=a.low, maximum=a.high, step=_slider_step(a),
                             value=round(v, 3), visible=True))
    return out


def _on_sf_read(ctx: Any, model_id: str | None, seed: str, name: str | None, store: LatentStore | None):
    """Sliders and the source line from the demo predictor's reading of the source (demo model),
    or the official flow's defaults (FFHQ; attributes cannot be read there)."""
    attrs = _sf_attributes(ctx, model_id)
    if attrs is None:
        return ["", "StyleFlow has a flow for the demo model and StyleGAN2 FFHQ 1024 only.",
                gr.update(visible=False)] + _slider_updates(None)
    if not _is_demo(ctx, model_id):
        line = ", ".join(f"{a.name}={a.default:g}" for a in attrs)
        return [line, "FFHQ attributes are not read automatically: the source line holds the official dataset's "
                      "means; correct it if you know the face's attributes.",
                gr.update(visible=True)] + _slider_updates(attrs)
    card, G = _generator(ctx, model_id)
    ws, label = source_latent(G, card.id, seed, name, store)
    reading = _demo_reading(G, ws)[0].tolist()
    line = ", ".join(f"{a.name}={v:.3g}" for a, v in zip(attrs, reading))
    return [line, f"Read from **{label}** by the demo predictor.", gr.update(visible=False)] + \
        _slider_updates(attrs, reading)


def _on_styleflow(ctx: Any, model_id: str, seed: str, name: str | None, source: str | None, *rest: Any,
                  progress: gr.Progress | None = None):
    """Adapter: UI values -> `apply_styleflow` -> [original, edited], a report, the edit for sending."""
    values, (lighting, rows, store) = rest[:SF_SLIDERS], rest[SF_SLIDERS:]
    card = model_card(ctx, model_id)
    model = _sf_flow(ctx, card, lighting)   # before the generator: a missing flow file fails fast
    card, G = _generator(ctx, model_id, progress)
    ws, label = source_latent(G, card.id, seed, name, store)
    attrs = model.editable()
    if any(v is None for v in values[:len(attrs)]):
        raise gr.Error("Set every attribute slider (read the source first).")
    t0 = time.perf_counter()
    with user_errors():
        demo = _is_demo(ctx, card.id)
        src = _demo_reading(G, ws) if demo else parse_values(model, _assignments(source, model), 1)
        # a slider left where the reading put it (up to its step) asks for no change
        target = {a.name: float(v) if abs(float(v) - float(src[0, model.index(a.name)])) > _slider_step(a) / 2 + 1e-6
                  else float(src[0, model.index(a.name)]) for a, v in zip(attrs, values)}
        edit = apply_styleflow(G, model, ws, src, target, rows=rows or "attribute",
                               progress=progress_callback(progress))
        original = G.synthesis(ws, noise_mode="const").float().cpu().clamp(-1, 1)
    seconds = time.perf_counter() - t0
    after = _demo_reading(G, edit.ws)[0] if demo else None
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
    pick = EditPick(card.id, edit.ws.numpy(), f"{label} + StyleFlow {changed}")
    return gallery, info, pick


def _on_send(pick: EditPick | None, target: str, store: LatentStore | None):
    if pick is None and target in dict(SEND_TARGETS):
        raise gr.Error("Make a direction or StyleFlow edit first (StyleSpace edits live in S and cannot be sent "
                       "as W+).")
    return send_latent(store, SEND_TARGETS, target, f"edit: {pick.label if pick else ''}",
                       pick.model_id if pick else "", pick.ws if pick else None,
                       f"Local editing: {pick.label if pick else ''}")


def build_tab(ctx: Any) -> None:
    latents = ctx.latents if ctx.latents is not None else gr.State(LatentStore())
    choices = _generator_choices(ctx)
    first = default_model(ctx, choices, getattr(ctx.registry, "DEFAULT_GENERATOR_ID", None))
    first_dirs = _direction_choices(ctx, first, "interfacegan")
    with gr.Tab("Local editing", id="local-editing"):
        gr.Markdown(INTRO)
        with gr.Row():
            with gr.Column(min_width=280):
                model = gr.Dropdown(choices, value=first, label="Generator", elem_id="edit-model")
                about = gr.Markdown(card_summary(ctx.registry.get(first) if first else None))
            with gr.Column(min_width=280):
                seed = gr.Textbox("3", label="Source: seed", elem_id="edit-seed")
                name = gr.Dropdown([], label="or a latent this session sent here (used when chosen)",
                                   allow_custom_value=True, elem_id="edit-latent")
                inbox = gr.Markdown(inbox_markdown(TASK, "Local editing", None), elem_id="local-editing-inbox")
        pick = gr.State(None)
        with gr.Tabs():
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
                        gr.Examples([["3", "interfacegan", "smile", 3], ["5", "interfacegan", "yaw", 3],
                                     ["8", "interfacegan", "hair_color=blonde", 4], ["3", "ganspace", "0", 2],
                                     ["3", "sefa", "1", 5]],
                                    inputs=[seed, method, direction, strength], label="Demo-world edits",
                                    example_labels=["smile", "turn the head", "blonde hair", "GANSpace 0",
                                                    "SeFa 1"], api_visibility="private")
                        run = gr.Button("Edit", variant="primary", elem_id="edit-run")
                    with gr.Column(min_width=320, scale=2):
                        strip = gr.Gallery(label="Strip over strengths", format="png", columns=5, height=220,
                                           object_fit="contain", elem_id="edit-strip")
                        edited = gr.Image(label="Edited (strongest +)", format="png", interactive=False, height=256, elem_classes=["pixel-view"])
                        info = gr.Markdown(elem_id="edit-info")
            with gr.Tab("StyleSpace channels", id="edit-stylespace"):
                with gr.Row():
                    with gr.Column(min_width=280):
                        layer = _layer_choices(ctx, first)
                        layer = gr.Dropdown(layer.get("choices", []), value=layer.get("value"), label="Style layer",
                                            elem_id="edit-layer")
                        channel = gr.Number(0, precision=0, label="Channel", minimum=0)
                        named = gr.Dropdown(_named_channel_choices(ctx, first), value=None,
                                            label="Named channels (demo world, found with the predictor)",
                                            elem_id="edit-named-channel")
                        s_strength = gr.Slider(-20, 20, value=10, step=0.5, label="Strength (standard deviations)")
                        s_run = gr.Button("Edit channel", variant="primary", elem_id="edit-s-run")
                    with gr.Column(min_width=320, scale=2):
                        s_strip = gr.Gallery(label="Strip over strengths", format="png", columns=5, height=220,
                                             object_fit="contain", elem_id="edit-s-strip")
                        s_edited = gr.Image(label="Edited (strongest +)", format="png", interactive=False, height=256, elem_classes=["pixel-view"])
                        s_info = gr.Markdown(elem_id="edit-s-info")
                spec = _named_slider_spec()
                with gr.Group(visible=_is_demo(ctx, first)) as named_group:
                    gr.Markdown("#### Named sliders (demo world)\nEach slider moves the channel the demo predictor "
                                "found most specific to that factor (StyleSpace, Wu et al., 2021, Sec. 5); several "
                                "can move at once.")
                    with gr.Row():
                        with gr.Column(min_width=280):
                            named_sliders = [gr.Slider(-20, 20, value=0, step=0.5, label=f"{f} (layer {layer}, "
                                                       f"channel {ch})", info=f"{e:+.2f} of the {f} range per "
                                                       f"+{st:g} σ") for f, layer, ch, e, st in spec]
                            named_run = gr.Button("Apply named sliders", variant="primary", elem_id="edit-named-run")
                        with gr.Column(min_width=320, scale=2):
                            named_gallery = gr.Gallery(label="Original and edited", format="png", columns=2,
                                                       height=240, object_fit="contain", elem_id="edit-named-result")
                            named_info = gr.Markdown(elem_id="edit-named-info")
                gr.Markdown("#### Find the channels that control a region\nEvery channel is moved in turn; those "
                            "whose change falls mostly inside the region are listed with a preview (StyleSpace, "
                            "Wu et al., 2021). The best one fills the fields above.")
                with gr.Row():
                    with gr.Column(min_width=280):
                        region = gr.Dropdown(REGION_CHOICES, value="part:hair", label="Region", elem_id="edit-region")
                        load_painter = gr.Button("Load the source into the painter", size="sm")
                        painter = gr.ImageEditor(label="Region painter (used with 'Drawn')", type="numpy",
                                                 image_mode="RGBA", sources=[], transforms=[], layers=False,
                                                 brush=gr.Brush(colors=["#ff3366"], default_size=16,
                                                                color_mode="fixed"),
                                                 canvas_size=(256, 256), height=300, format="png")
                        find = gr.Button("Find channels", variant="primary", elem_id="edit-find")
                    with gr.Column(min_width=320, scale=2):
                        found_gallery = gr.Gallery(label="Top channels (each moved alone)", format="png", columns=5,
                                                   height=240, object_fit="contain", elem_id="edit-found")
                        found_info = gr.Markdown(elem_id="edit-found-info")
            with gr.Tab("Editing in Style", id="edit-eis"):
                gr.Markdown("Cluster a layer's activations into parts (spherical k-means over generated samples), "
                            "then take one part's appearance from a reference face: the style channels that act "
                            "mostly inside that part are interpolated to the reference's (Collins et al., 2020).")
                with gr.Row():
                    with gr.Column(min_width=280):
                        with gr.Row():
                            k = gr.Slider(2, 16, value=8, step=1, label="Parts (k)")
                            samples = gr.Slider(8, 256, value=64, step=8, label="Samples")
                        eis_layers = _eis_layer_choices(ctx, first)
                        eis_layer = gr.Dropdown(eis_layers.get("choices", []), value="auto", label="Layer to cluster",
                                                elem_id="edit-eis-layer")
                        build = gr.Button("Build part catalogue", elem_id="edit-eis-build")
                        with gr.Row():
                            rename_text = gr.Textbox(label="Name clusters", placeholder="2=hair, 5=eyes", scale=3,
                                                     elem_id="edit-eis-names")
                            rename = gr.Button("Name", size="sm", scale=1, elem_id="edit-eis-rename")
                        clusters = gr.CheckboxGroup([], label="Part to transfer (clusters)", elem_id="edit-eis-parts")
                        reference = gr.Textbox("20", label="Reference: seed")
                        with gr.Row():
                            rho = gr.Slider(0, 1, value=0.2, step=0.01, label="ρ (least inside share)")
                            epsilon = gr.Slider(0, 50, value=3, step=0.5, label="ε (outside-share budget)")
                        transfer = gr.Button("Transfer part", variant="primary", elem_id="edit-eis-run")
                    with gr.Column(min_width=320, scale=2):
                        overlays = gr.Gallery(label="Parts on seeds 0-7", format="png", columns=4, height=260,
                                              object_fit="contain", elem_id="edit-eis-overlay")
                        eis_info = gr.Markdown(elem_id="edit-eis-info")
                        eis_gallery = gr.Gallery(label="Transfer", format="png", columns=3, height=220,
                                                 object_fit="contain", elem_id="edit-eis-result")
                        eis_result = gr.Markdown(elem_id="edit-eis-result-info")
                        eis_matrix = gr.Image(label="Contribution matrix of the part (rows: style layers; columns: "
                                              "channels)", format="png", interactive=False, elem_id="edit-eis-matrix")
                catalog_state = gr.State(None)
            with gr.Tab("Retrieve in Style", id="edit-ris"):
                gr.Markdown("Take one facial feature (eyes, nose, mouth, hair) or the pose from a reference face, "
                            "or find the faces whose feature looks most like the source's. Each part's style "
                            "channels are measured on the faces at hand, so there are no thresholds to tune "
                            "(Chong et al., 2021).")
                with gr.Row():
                    with gr.Column(min_width=280):
                        ris_part = gr.Radio(list(RIS_PARTS), value="hair", label="Part", elem_id="edit-ris-part")
                        ris_source = gr.Radio(RIS_SOURCES, value="predictor", label="Part masks from")
                        with gr.Row():
                            ris_part_clusters = gr.CheckboxGroup([], label="Catalogue clusters of the part",
                                                                info="Filled when the catalogue is built")
                            ris_hair_clusters = gr.CheckboxGroup([], label="Catalogue clusters of the hair",
                                                                info="Needed for pose")
                        ris_reference = gr.Textbox("20", label="Reference: seed")
                        ris_amount = gr.Slider(0, 1.5, value=1.0, step=0.05, label="Amount (1 = the reference's)")
                        ris_run = gr.Button("Transfer the part", variant="primary", elem_id="edit-ris-run")
                        bank = gr.Textbox("0-63", label="Retrieval bank: seeds (this session's latents join it)")
                        search = gr.Button("Retrieve faces with a similar part", elem_id="edit-retrieve")
                    with gr.Column(min_width=320, scale=2):
                        ris_gallery = gr.Gallery(label="Transfer", format="png", columns=3, height=220,
                                                 object_fit="contain", elem_id="edit-ris-result")
                        ris_info = gr.Markdown(elem_id="edit-ris-info")
                        retrieved = gr.Gallery(label="Retrieved", format="png", columns=5, height=240,
                                               object_fit="contain", elem_id="edit-retrieved")
                        retrieved_info = gr.Markdown(elem_id="edit-retrieved-info")
            with gr.Tab("StyleFlow", id="edit-styleflow"):
                gr.Markdown("Set attributes and let a conditional normalising flow find the W+ code: w → z under the "
                            "source's attributes, z → w under the new ones, only each attribute's own W+ rows "
                            "written "
                            "(Abdal et al., 2021). The demo model uses the demo world's flow (attributes read by its "
                            "predictor); StyleGAN2 FFHQ 1024 uses the official `modellarge10k.pt`.")
                sf_attrs = _sf_attributes(ctx, first)
                sf_first = _on_sf_read(ctx, first, "3", None, None) if _is_demo(ctx, first) else None
                with gr.Row():
                    with gr.Column(min_width=280):
                        sf_read = gr.Button("Read the source's attributes", elem_id="edit-sf-read")
                        sf_source = gr.Textbox(sf_first[0] if sf_first else "", elem_id="edit-sf-source",
                                               label="Source attributes (name=value; FFHQ: edit if you know them)")
                        sf_note = gr.Markdown(sf_first[1] if sf_first else "")
                        sf_sliders = []
                        for i in range(SF_SLIDERS):
                            a = sf_attrs[i] if sf_attrs and i < len(sf_attrs) else None
                            init = sf_first[3 + i] if sf_first else {}
                            sf_sliders.append(gr.Slider(
                                a.low if a else 0, a.high if a else 1, value=init.get("value", a.default if a else 0),
                                step=init.get("step", 0.01), label=f"{a.name} ({a.unit})" if a else "",
                                visible=a is not None, elem_id=f"edit-sf-{i}"))
                        sf_light = gr.Textbox(", ".join(f"{v:g}" for v in OFFICIAL_LIGHTING), visible=False,
                                              label="Lighting: 9 spherical-harmonic coefficients (official flow; held)")
                        sf_rows = gr.Radio(SF_ROWS, value="attribute", label="W+ rows written")
                        sf_run = gr.Button("Apply", variant="primary", elem_id="edit-sf-run")
                    with gr.Column(min_width=320, scale=2):
                        sf_gallery = gr.Gallery(label="Original and edited", format="png", columns=2, height=280,
                                                object_fit="contain", elem_id="edit-sf-result")
                        sf_info = gr.Markdown(elem_id="edit-sf-info")
        gr.Markdown(PLANNED)
        with gr.Row():
            target = gr.Radio([(label, key) for key, label in SEND_TARGETS], value="text-editing",
                              label="Send the last W+ edit (direction or StyleFlow) to")
            send = gr.Button("Send latent", elem_id="edit-send")
        sent = gr.Markdown()

        model.change(lambda m: card_summary(ctx.registry.get(m) if m else None), model, about,
                     api_visibility="private", queue=False)
        model.change(partial(_on_method, ctx), [model, method], [direction, file, unit], api_visibility="private",
                     queue=False)
        method.change(partial(_on_method, ctx), [model, method], [direction, file, unit], api_visibility="private",
                      queue=False)
        latents.change(_on_store, [latents, model], name, api_visibility="private", queue=False)
        latents.change(partial(inbox_markdown, TASK, "Local editing"), latents, inbox, api_visibility="private",
                       queue=False)
        model.change(_on_store, [latents, model], name, api_visibility="private", queue=False)
        model.change(partial(_layer_choices, ctx), model, layer, api_visibility="private")

        edit_direction = gpu_handler(_on_direction, ctx, 60)

        edit_stylespace = gpu_handler(_on_stylespace, ctx, 60)

        run.click(edit_direction, [model, seed, name, method, direction, file, strength, rows, custom, latents],
                  [strip, edited, info, pick], api_name="edit_direction", api_description=API_DIRECTION,
                  concurrency_id="gpu")
        s_run.click(edit_stylespace, [model, seed, name, layer, channel, s_strength, latents],
                    [s_strip, s_edited, s_info], api_name="edit_stylespace", api_description=API_STYLESPACE,
                    concurrency_id="gpu")
        named.change(_on_named_channel, named, [layer, channel], api_visibility="private", queue=False)
        model.change(lambda m: gr.update(visible=_is_demo(ctx, m)), model, named_group, api_visibility="private",
                     queue=False)
        named_run.click(gpu_handler(_on_named_sliders, ctx, 60), [model, seed, name, *named_sliders, latents],
                        [named_gallery, named_info], api_name="edit_named_channels", concurrency_id="gpu",
                        api_description="StyleSpace named sliders (demo model): one value in standard deviations per "
                                        "named channel (shared/demo/stylespace_channels.json order). Returns "
                                        "[original, edited] and the predictor's reading of each moved factor.")
        model.change(lambda m: gr.update(choices=_named_channel_choices(ctx, m), value=None), model, named,
                     api_visibility="private", queue=False)
        load_painter.click(partial(_on_painter, ctx), [model, seed, name, latents], painter, api_visibility="private")

        find_channels = gpu_handler(_on_find_channels, ctx, 120)

        find.click(find_channels, [model, seed, name, region, painter, s_strength, latents],
                   [found_gallery, found_info, layer, channel], api_name="find_channels", concurrency_id="gpu",
                   api_description="StyleSpace: the style channels that act mostly inside a region of the source "
                                   "('part:hair|face|eyes|mouth|background', from the demo predictor). Returns "
                                   "previews, a table and the best channel's layer and number.")

        part_catalogue = gpu_handler(_on_catalog, ctx, 120)

        part_transfer = gpu_handler(_on_transfer, ctx, 60)

        model.change(partial(_eis_layer_choices, ctx), model, eis_layer, api_visibility="private")
        build.click(part_catalogue, [model, k, samples, eis_layer],
                    [overlays, eis_info, catalog_state, clusters, ris_part_clusters, ris_hair_clusters],
                    api_name="part_catalogue", concurrency_id="gpu",
                    api_description="Editing in Style: cluster a StyleGAN2's activations into k parts over N samples "
                                    "(kept for this session). Returns part overlays on seeds 0-7, a legend and the "
                                    "cluster choices (Editing in Style, Retrieve in Style's part and hair).")
        rename.click(_on_rename, [catalog_state, rename_text],
                     [catalog_state, clusters, ris_part_clusters, ris_hair_clusters, eis_info], api_name="name_clusters",
                     api_description="Editing in Style: name catalogue clusters with 'cluster=name' pairs, e.g. "
                                     "'2=hair, 5=eyes' (for the cluster pickers of this session).")
        transfer.click(part_transfer, [model, seed, name, catalog_state, reference, clusters, rho, epsilon, latents],
                       [eis_gallery, eis_result, eis_matrix], api_name="part_transfer", concurrency_id="gpu",
                       api_description="Editing in Style: take the chosen clusters' appearance from a reference seed "
                                       "(rho, epsilon thresholds). Returns [target, reference, result], the share "
                                       "of the pixel change inside the part and the part's contribution matrix.")
        ris_inputs = [model, seed, name, ris_part, ris_source, catalog_state, ris_part_clusters, ris_hair_clusters]
        ris_run.click(gpu_handler(_on_ris_transfer, ctx, 60), [*ris_inputs, ris_reference, ris_amount, latents],
                      [ris_gallery, ris_info], api_name="ris_transfer", concurrency_id="gpu",
                      api_description="Retrieve in Style: take a part ('eyes', 'nose', 'mouth', 'hair' or 'pose') from "
                                      "a reference seed; part masks from 'predictor' (demo model) or 'catalogue' "
                                      "(the named clusters). Returns [target, reference, result] and a Markdown line.")
        search.click(gpu_handler(_on_ris_retrieve, ctx, 60), [*ris_inputs, bank, latents], [retrieved, retrieved_info],
                     api_name="ris_retrieve", concurrency_id="gpu",
                     api_description="Retrieve in Style: rank a bank of seeds (plus this session's latents) by the "
                                     "similarity of the chosen part to the source's; the query and the best 8.")
        sf_read_outputs = [sf_source, sf_note, sf_light, *sf_sliders]
        sf_read.click(partial(_on_sf_read, ctx), [model, seed, name, latents], sf_read_outputs,
                      api_visibility="private")
        for trigger in (model.change, seed.submit, name.change):
            trigger(partial(_on_sf_read, ctx), [model, seed, name, latents], sf_read_outputs,
                    api_visibility="private")
        edit_styleflow = gpu_handler(_on_styleflow, ctx, 120)
        sf_run.click(edit_styleflow, [model, seed, name, sf_source, *sf_sliders, sf_light, sf_rows, latents],
                     [sf_gallery, sf_info, pick], api_name="edit_styleflow", api_description=API_STYLEFLOW,
                     concurrency_id="gpu")
        send.click(_on_send, [pick, target, latents], [latents, sent], api_name="send_edit_latent",
                   api_description="Put the last W+ edit (direction or StyleFlow) into the session's latent store for "
                                   "another tab "
                                   "('text-editing', 'mixing', 'inversion', 'local-editing').")
