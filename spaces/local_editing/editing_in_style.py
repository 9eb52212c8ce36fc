"""Local editing › Editing in Style (Collins et al., CVPR 2020): a part catalogue (spherical k-means
of a layer's activations), clusters named by the predictor or the user, and a part taken from a
reference face. The catalogue is kept for the session and also feeds Retrieve in Style's masks.

Layout and wiring only; the work is `shared.editing.local_style` (catalogue, transfer) and
`shared.editing.part_edits` (preview, names, transfer with its locality).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from functools import partial
from typing import Any

import gradio as gr

from shared.editing.local_style import PALETTE, PartCatalog, cached_catalog, contribution_image, name_clusters
from shared.editing.part_edits import catalogue_preview, rename_clusters, transfer_catalogue_part
from shared.editing.stylespace import channel_names
from shared.images import to_uint8_hwc
from shared.latent_store import LatentStore
from shared.latents import parse_seeds, ws_from_seeds
from spaces.handlers import gpu_handler, progress_callback, user_errors
from spaces.latents import source_latent
from spaces.local_editing.source import Source, generator, has_predictor, local_stylegan2, predictor

API_CATALOGUE = ("Editing in Style: cluster a StyleGAN2's activations into k parts over N samples (kept for this "
                 "session). Returns part overlays on seeds 0-7, a legend and the cluster choices (Editing in Style, "
                 "Retrieve in Style's part and hair).")
API_TRANSFER = ("Editing in Style: take the chosen clusters' appearance from a reference seed (rho, epsilon "
                "thresholds). Returns [target, reference, result], the share of the pixel change inside the part "
                "and the part's contribution matrix.")


@dataclass(frozen=True, eq=False)
class CatalogState:
    """A session's part catalogue (small: cluster centres and contribution matrices)."""
    model_id: str
    catalog: PartCatalog


@dataclass(frozen=True)
class Catalogue:
    """What the section shares with Retrieve in Style: the session's catalogue and Retrieve in
    Style's cluster pickers (made here unrendered, so building or naming the catalogue fills them;
    Retrieve in Style renders them in its layout)."""
    state: gr.State
    part_clusters: gr.CheckboxGroup
    hair_clusters: gr.CheckboxGroup


def _cluster_choices(catalog: PartCatalog) -> list[tuple[str, int]]:
    return [(f"{k}: {catalog.names.get(k, 'cluster')}", k) for k in range(catalog.k)]


def _eis_layer_choices(ctx: Any, model_id: str | None):
    """The conv style layers a catalogue can cluster, with 'auto' (the last conv layer at <= 32 px)."""
    auto = [("auto: the last conv layer at 32 px or below", "auto")]
    G = local_stylegan2(ctx, model_id)
    if G is None:
        return gr.update(choices=auto, value="auto")
    conv = [(label, str(i)) for label, i, _ in channel_names(G) if not G.style_layers[i].is_torgb]
    return gr.update(choices=auto + conv, value="auto")


def _on_catalog(ctx: Any, model_id: str, k: float, samples: float, layer: str | None = "auto",
                progress: gr.Progress | None = None):
    card, G = generator(ctx, model_id, progress)
    if G.arch != "stylegan2":
        raise gr.Error("Editing in Style needs a StyleGAN2 generator.")
    t0 = time.perf_counter()
    with user_errors():
        index = None if layer in (None, "", "auto") else int(layer)
        if index is not None and (not 0 <= index < len(G.style_layers) or G.style_layers[index].is_torgb):
            raise gr.Error("Choose a conv style layer (toRGB layers have no spatial parts).")
        catalog, cached = cached_catalog(card.id, G, k=int(k), layer=index, samples=int(samples),
                                         progress=progress_callback(progress))
        names = name_clusters(G, catalog, predictor(ctx, card.id)) if has_predictor(ctx, card.id) else {}
        catalog = PartCatalog(catalog.layer, catalog.centres, catalog.contributions, catalog.samples, names)
        overlay = catalogue_preview(G, catalog)
    choices = _cluster_choices(catalog)
    legend = " · ".join(f"<span style='color:rgb{tuple(int(v) for v in PALETTE[k_])}'>■</span> {label}"
                        for label, k_ in choices)
    info = (f"{catalog.k} parts from spherical k-means on the {G.style_layers[catalog.layer].resolution}-px "
            f"activations (style layer {catalog.layer}) of {catalog.samples} samples · "
            f"{time.perf_counter() - t0:.1f} s"
            f"{' (kept from an earlier build in this process)' if cached else ''}. {legend}")
    return ([(img, f"seed {i}") for i, img in enumerate(overlay)], info, CatalogState(card.id, catalog),
            gr.update(choices=choices, value=[choices[0][1]]), gr.update(choices=choices, value=[]),
            gr.update(choices=choices, value=[]))


def _on_rename(state: CatalogState | None, text: str | None):
    """Name clusters from text such as '2=hair, 5=eyes' (kept in the session's catalogue); the
    cluster pickers of Editing in Style and Retrieve in Style show the new names."""
    if state is None:
        raise gr.Error("Build the part catalogue first, then name its clusters.")
    with user_errors():
        state = CatalogState(state.model_id, rename_clusters(state.catalog, text))
    choices = _cluster_choices(state.catalog)
    return (state, gr.update(choices=choices), gr.update(choices=choices), gr.update(choices=choices),
            "Names: " + " · ".join(label for label, _ in choices))


def _on_transfer(ctx: Any, model_id: str, seed: str, name: str | None, state: CatalogState | None,
                 reference: str, clusters: list[int] | None, rho: float, epsilon: float, store: LatentStore | None,
                 progress: gr.Progress | None = None):
    card, G = generator(ctx, model_id, progress)
    if state is None or state.model_id != card.id:
        raise gr.Error("Build the part catalogue for this model first.")
    ws, label = source_latent(G, card.id, seed, name, store)
    parts = [int(c) for c in (clusters or [])]
    with user_errors():
        ref_seeds = parse_seeds(str(reference), max_count=1)
        t0 = time.perf_counter()
        res = transfer_catalogue_part(G, state.catalog, ws, ws_from_seeds(G, ref_seeds), parts, rho=float(rho),
                                      epsilon=float(epsilon))
    u8 = to_uint8_hwc(res.images)
    gallery = [(u8[0], f"target: {label}"), (u8[1], f"reference: seed {ref_seeds[0]}"), (u8[2], "result")]
    info = (f"{res.channels} style channels taken from the reference (ρ {float(rho):.2f}, ε {float(epsilon):g}); "
            f"{res.share:.0%} of the pixel change lies inside the chosen part · {time.perf_counter() - t0:.2f} s. "
            f"The result lives in S, so it is not sent on as a latent. Below: each style channel's share inside "
            f"the part (dark 0, light 1), a cyan tick on each channel taken.")
    matrix = contribution_image(G, state.catalog, parts, rho=float(rho), epsilon=float(epsilon))
    return gallery, info, matrix


def build_section(ctx: Any, source: Source) -> Catalogue:
    """The "Editing in Style" sub-tab; returns the catalogue it shares with Retrieve in Style."""
    layers0 = _eis_layer_choices(ctx, source.first)
    with gr.Tab("Editing in Style", id="edit-eis"):
        gr.Markdown("Cluster a layer's activations into parts (spherical k-means over generated samples), "
                    "then take one part's appearance from a reference face: the style channels that act "
                    "mostly inside that part are interpolated to the reference's (Collins et al., 2020).")
        with gr.Row():
            with gr.Column(min_width=280):
                with gr.Row():
                    k = gr.Slider(2, 16, value=8, step=1, label="Parts (k)")
                    samples = gr.Slider(8, 256, value=64, step=8, label="Samples")
                layer = gr.Dropdown(layers0.get("choices", []), value="auto", label="Layer to cluster",
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
                overlays = gr.Gallery(label="Parts on seeds 0-7", format="png", columns=4,
                                      object_fit="contain", elem_id="edit-eis-overlay")
                info = gr.Markdown(elem_id="edit-eis-info")
                gallery = gr.Gallery(label="Transfer", format="png", columns=3,
                                     object_fit="contain", elem_id="edit-eis-result")
                result = gr.Markdown(elem_id="edit-eis-result-info")
                matrix = gr.Image(label="Contribution matrix of the part (rows: style layers; columns: "
                                        "channels)", format="png", interactive=False, elem_id="edit-eis-matrix")
        state = gr.State(None)
    part_clusters = gr.CheckboxGroup([], label="Catalogue clusters of the part",
                                     info="Filled when the catalogue is built", render=False)
    hair_clusters = gr.CheckboxGroup([], label="Catalogue clusters of the hair", info="Needed for pose", render=False)

    source.model.change(partial(_eis_layer_choices, ctx), source.model, layer, api_visibility="private")
    build.click(gpu_handler(_on_catalog, ctx, 120), [source.model, k, samples, layer],
                [overlays, info, state, clusters, part_clusters, hair_clusters],
                api_name="part_catalogue", concurrency_id="gpu", api_description=API_CATALOGUE)
    rename.click(_on_rename, [state, rename_text], [state, clusters, part_clusters, hair_clusters, info],
                 api_name="name_clusters",
                 api_description="Editing in Style: name catalogue clusters with 'cluster=name' pairs, e.g. "
                                 "'2=hair, 5=eyes' (for the cluster pickers of this session).")
    transfer.click(gpu_handler(_on_transfer, ctx, 60),
                   [source.model, source.seed, source.name, state, reference, clusters, rho, epsilon, source.latents],
                   [gallery, result, matrix], api_name="part_transfer", concurrency_id="gpu",
                   api_description=API_TRANSFER)
    return Catalogue(state, part_clusters, hair_clusters)
