"""Local editing › Retrieve in Style (Chong et al., ICCV 2021): take a facial feature or the pose
from a reference face, or rank a bank of faces by the similarity of one feature. Part masks come
from the demo predictor (demo model) or from the clusters named in Editing in Style's catalogue.

Layout and wiring only; the work is `shared.editing.retrieve_style` (masks, part channels) and
`shared.editing.part_edits` (transfer with its locality, retrieval).
"""
from __future__ import annotations

import time
from typing import Any

import gradio as gr
import numpy as np
import torch

from shared.editing.part_edits import retrieve_similar_part, transfer_retrieved_part
from shared.editing.retrieve_style import RIS_PARTS, catalogue_masks, predictor_masks
from shared.images import to_uint8_hwc
from shared.latent_store import LatentStore
from shared.latents import parse_seeds, ws_from_seeds
from spaces.handlers import gpu_handler, user_errors
from spaces.latents import source_latent
from spaces.local_editing.editing_in_style import Catalogue, CatalogState
from spaces.local_editing.source import Source, generator, has_predictor, predictor

RIS_SOURCES = [("Demo predictor's part map (demo model)", "predictor"),
               ("Catalogue clusters named here (build the catalogue under Editing in Style)", "catalogue")]


def _ris_masks(ctx: Any, card: Any, G: Any, ws: torch.Tensor, part: str, source: str, state: CatalogState | None,
               part_clusters: list[int] | None, hair_clusters: list[int] | None) -> dict[str, torch.Tensor]:
    """The part masks of Retrieve in Style for latents ws: the demo predictor's, or named clusters."""
    if part not in RIS_PARTS:
        raise gr.Error(f"Choose the part among {', '.join(RIS_PARTS)}.")
    if source == "predictor":
        if not has_predictor(ctx, card.id):
            raise gr.Error("The demo predictor only reads demo-world faces: build a part catalogue under Editing in "
                           "Style, choose 'Catalogue clusters' and tick the part's clusters.")
        return predictor_masks(G, ws, predictor(ctx, card.id))
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


def _stylegan2(ctx: Any, model_id: str, progress: gr.Progress | None) -> tuple[Any, Any]:
    card, G = generator(ctx, model_id, progress)
    if G.arch != "stylegan2":
        raise gr.Error("Retrieve in Style needs a StyleGAN2 generator.")
    return card, G


def _on_ris_transfer(ctx: Any, model_id: str, seed: str, name: str | None, part: str, source: str,
                     state: CatalogState | None, part_clusters: list[int] | None, hair_clusters: list[int] | None,
                     reference: str, amount: float, store: LatentStore | None, progress: gr.Progress | None = None):
    card, G = _stylegan2(ctx, model_id, progress)
    ws, label = source_latent(G, card.id, seed, name, store)
    with user_errors():
        ref_seeds = parse_seeds(str(reference), max_count=1)
        ws_ref = ws_from_seeds(G, ref_seeds)
        t0 = time.perf_counter()
        masks = _ris_masks(ctx, card, G, torch.cat([ws, ws_ref]), part, source, state, part_clusters, hair_clusters)
        res = transfer_retrieved_part(G, ws, ws_ref, masks, part, amount=float(amount))
        seconds = time.perf_counter() - t0
    u8 = to_uint8_hwc(res.images)
    gallery = [(u8[0], f"target: {label}"), (u8[1], f"reference: seed {ref_seeds[0]}"), (u8[2], f"{part} taken")]
    where = ("pose acts on the whole face, so no locality is measured" if res.share is None else
             f"{res.share:.0%} of the pixel change lies inside the {part} (target's or reference's)")
    info = (f"{res.channels} style channels carry the {part} (weights up to 1); amount {float(amount):.2f}; "
            f"{where} · {seconds:.2f} s. The result lives in S, so it is not sent on as a latent.")
    return gallery, info


def _on_ris_retrieve(ctx: Any, model_id: str, seed: str, name: str | None, part: str, source: str,
                     state: CatalogState | None, part_clusters: list[int] | None, hair_clusters: list[int] | None,
                     bank: str, store: LatentStore | None, progress: gr.Progress | None = None):
    card, G = _stylegan2(ctx, model_id, progress)
    ws, label = source_latent(G, card.id, seed, name, store)
    store = store or LatentStore()
    t0 = time.perf_counter()
    with user_errors():
        bank_seeds = parse_seeds(str(bank), max_count=256)
        names = store.list(card.id)   # the session's own latents (inverted photos, mixes) join the bank
        bank_ws = torch.cat([ws_from_seeds(G, bank_seeds)] + [torch.from_numpy(np.array(store.get(n).ws))
                                                              for n in names])
        masks = _ris_masks(ctx, card, G, ws, part, source, state, part_clusters, hair_clusters)
        res = retrieve_similar_part(G, ws, bank_ws, masks, part, top=8)
    labels = [f"seed {s_}" for s_ in bank_seeds] + names
    u8 = to_uint8_hwc(res.images)
    gallery = [(u8[0], f"query: {label}")] + [(u8[i + 1], f"{labels[int(j)]} · {float(res.similarity[i]):.2f}")
                                               for i, j in enumerate(res.order)]
    info = (f"The {len(labels)} faces of the bank ranked by their {part} ({res.channels} style channels, "
            f"cosine similarity around the mean style); best 8 shown · {time.perf_counter() - t0:.2f} s")
    return gallery, info


def build_section(ctx: Any, source: Source, catalogue: Catalogue) -> None:
    """The "Retrieve in Style" sub-tab; its cluster pickers are the catalogue's (filled by Editing in Style)."""
    with gr.Tab("Retrieve in Style", id="edit-ris"):
        gr.Markdown("Take one facial feature (eyes, nose, mouth, hair) or the pose from a reference face, "
                    "or find the faces whose feature looks most like the source's. Each part's style "
                    "channels are measured on the faces at hand, so there are no thresholds to tune "
                    "(Chong et al., 2021).")
        with gr.Row():
            with gr.Column(min_width=280):
                part = gr.Radio(list(RIS_PARTS), value="hair", label="Part", elem_id="edit-ris-part")
                masks_from = gr.Radio(RIS_SOURCES, value="predictor", label="Part masks from")
                with gr.Row():
                    part_clusters = catalogue.part_clusters.render()
                    hair_clusters = catalogue.hair_clusters.render()
                reference = gr.Textbox("20", label="Reference: seed")
                amount = gr.Slider(0, 1.5, value=1.0, step=0.05, label="Amount (1 = the reference's)")
                run = gr.Button("Transfer the part", variant="primary", elem_id="edit-ris-run")
                bank = gr.Textbox("0-63", label="Retrieval bank: seeds (this session's latents join it)")
                search = gr.Button("Retrieve faces with a similar part", elem_id="edit-retrieve")
            with gr.Column(min_width=320, scale=2):
                gallery = gr.Gallery(label="Transfer", format="png", columns=3,
                                     object_fit="contain", elem_id="edit-ris-result")
                info = gr.Markdown(elem_id="edit-ris-info")
                retrieved = gr.Gallery(label="Retrieved", format="png", columns=5,
                                       object_fit="contain", elem_id="edit-retrieved")
                retrieved_info = gr.Markdown(elem_id="edit-retrieved-info")

    inputs = [source.model, source.seed, source.name, part, masks_from, catalogue.state, part_clusters, hair_clusters]
    run.click(gpu_handler(_on_ris_transfer, ctx, 60), [*inputs, reference, amount, source.latents], [gallery, info],
              api_name="ris_transfer", concurrency_id="gpu",
              api_description="Retrieve in Style: take a part ('eyes', 'nose', 'mouth', 'hair' or 'pose') from "
                              "a reference seed; part masks from 'predictor' (demo model) or 'catalogue' "
                              "(the named clusters). Returns [target, reference, result] and a Markdown line.")
    search.click(gpu_handler(_on_ris_retrieve, ctx, 60), [*inputs, bank, source.latents], [retrieved, retrieved_info],
                 api_name="ris_retrieve", concurrency_id="gpu",
                 api_description="Retrieve in Style: rank a bank of seeds (plus this session's latents) by the "
                                 "similarity of the chosen part to the source's; the query and the best 8.")
