"""StyleCLIP's three methods behind one call each (Patashnik et al., ICCV 2021,
orpatashnik/StyleCLIP): what the Text editing tab, its API and the benchmark run.

Each takes the generator, the CLIP, source latents ws [N, num_ws, w_dim] and the prompts, and
returns a `TextEdit` with the edited images, the edited latent (None where the edit lives in S),
the wall time and the facts worth showing. Global directions use the official FFHQ config-f
assets when the generator and CLIP are the ones they were made for and the files are on this
machine, else a relevance matrix computed (once, cached on disk) for the pair.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import Tensor, nn

from shared import hub, registry
from shared.editing.stylespace import StyleStats, style_stats
from shared.errors import InputError
from shared.model_cache import DerivedCache, default_cache
from shared.styleclip import global_directions as gd
from shared.styleclip.mapper import edit_with_mapper
from shared.styleclip.optimize import optimize_latent
from shared.styleclip.prompts import check_prompt, ensemble_embedding, text_direction

__all__ = ["GlobalAssets", "TextEdit", "clip_similarity", "global_assets", "run_global", "run_mapper", "run_optimize"]

Progress = Callable[[float, str], object]

#: relevance matrices shipped with the repository (the demo generator with the demo CLIP)
SHIPPED_RELEVANCE = Path(__file__).resolve().parents[1] / "demo" / "styleclip"


@dataclass
class TextEdit:
    """One method's result: images [N,3,H,W] in [-1,1] (CPU), edited ws (None for S-space edits),
    edited styles (S-space edits), wall time, and facts for the caption/table."""
    method: str
    images: Tensor
    ws: Tensor | None
    seconds: float
    facts: dict = field(default_factory=dict)
    styles: list[Tensor] | None = None
    intermediates: list[tuple[int, Tensor]] = field(default_factory=list)


@dataclass(frozen=True, eq=False)
class GlobalAssets:
    """Relevance matrix and channel statistics for one (generator, CLIP) pair."""
    relevance: gd.Relevance
    stats: StyleStats
    note: str


def _official_files(model_id: str, clip_id: str, lookup, cached_path) -> tuple | None:
    """(relevance record, fs3 path, stats record, S_mean_std path or None) when the generator's
    "relevance" companion (the official FFHQ fs3.npy) was made with this CLIP and is present."""
    try:
        generator = lookup(model_id)
    except KeyError:
        return None
    relevance_id = generator.companions.get("relevance")
    if relevance_id is None:
        return None
    card = lookup(relevance_id)
    cfg = card.arch_config or {}
    if clip_id != cfg.get("clip"):
        return None
    fs3 = cached_path(card)
    if fs3 is None:
        return None
    stats_card = lookup(generator.companions.get("stylespace-stats") or cfg["stats"])
    return card, fs3, stats_card, cached_path(stats_card)


def global_assets(model_id: str, G: nn.Module, clip, *, lookup=None, cached_path=None,
                  settings: gd.RelevanceSettings = gd.RelevanceSettings(), progress: Progress | None = None,
                  should_stop: Callable[[], bool] | None = None, cache: DerivedCache | None = None) -> GlobalAssets:
    """The relevance matrix and style statistics for (model, CLIP): the official fs3.npy /
    S_mean_std where the generator's companions name them and they are here, else computed and
    cached (minutes on a CPU the first time). Kept in the derived-data cache (`cache`, default the
    process model cache's), keyed by the records they come from."""
    lookup = lookup or registry.get
    cached_path = cached_path or hub.cached_path
    store = cache if cache is not None else default_cache().derived
    gd.channel_layout(G)                                    # StyleGAN2 check before any work
    official = _official_files(model_id, clip.model_id, lookup, cached_path)
    if official is not None:
        card, fs3, stats_card, stats_path = official
        rel = store.get_or_build(("official-relevance", card.id, model_id, str(fs3)),
                                 lambda: gd.load_official_relevance(fs3, G))
        if stats_path is not None:
            stats = store.get_or_build(("official-stats", stats_card.id, model_id, str(stats_path)),
                                       lambda: gd.load_official_stats(stats_path, G))
            return GlobalAssets(rel, stats, "official fs3.npy and S_mean_std")
        stats = style_stats(G, samples=settings.stats_samples, seed=settings.seed, key=model_id, cache=store)
        return GlobalAssets(rel, stats, "official fs3.npy; channel std measured here (S_mean_std not found)")
    stats = style_stats(G, samples=settings.stats_samples, seed=settings.seed, key=model_id, cache=store)
    rel = gd.cached_relevance(model_id, G, clip, settings=settings, stats=stats, progress=progress,
                              should_stop=should_stop, shipped=(SHIPPED_RELEVANCE,), cache=store)
    how = "cached" if rel.source.endswith("(cached)") else f"built here in {rel.seconds:.0f} s"
    return GlobalAssets(rel, stats, f"relevance matrix computed for this generator and CLIP ({settings.samples} "
                                    f"latents, ±{settings.sigma:g} std; {how})")


def run_global(G: nn.Module, clip, assets: GlobalAssets, ws: Tensor, neutral: str, target: str, *, alpha: float,
               beta: float, templates, top: int = 10) -> TextEdit:
    """Global-direction edit of ws: Δt from the prompts, channels with |r| ≥ β, strength α."""
    t0 = time.perf_counter()
    dt = text_direction(clip, neutral, target, templates)
    edit = gd.select_channels(assets.relevance, dt, assets.stats, alpha=alpha, beta=beta,
                              layers=len(G.style_layers), top=top)
    images, styles = gd.global_edit(G, ws, edit)
    return TextEdit("global", images, None, time.perf_counter() - t0,
                    {"channels": edit.channels, "top": edit.top, "alpha": alpha, "beta": beta,
                     "assets": assets.note}, styles=styles)


def run_mapper(G: nn.Module, mapper: nn.Module, ws: Tensor, *, strength: float = 0.1, prompt: str = "") -> TextEdit:
    """Latent-mapper edit: w + strength · mapper(w) (the official inference uses 0.1)."""
    t0 = time.perf_counter()
    images, edited = edit_with_mapper(G, mapper, ws, strength=strength)
    return TextEdit("mapper", images, edited, time.perf_counter() - t0, {"strength": strength, "prompt": prompt})


def run_optimize(G: nn.Module, clip, ws: Tensor, target: str, *, templates, space: str = "w+", steps: int = 100,
                 lr: float = 0.1, l2_weight: float = 0.008, style_std=None, every: int = 10, identity=None,
                 identity_weight: float = 0.0,
                 on_step: Callable[[int, float, Tensor | None], object] | None = None,
                 should_stop: Callable[[], bool] | None = None) -> TextEdit:
    """Latent optimisation of ws towards the target prompt (its template-ensembled embedding);
    `identity` (an IdentityModel such as ArcFace) adds identity_weight · (1 - cosine to the source)."""
    target = check_prompt(target, "target prompt")
    text = ensemble_embedding(clip, target, templates)
    res = optimize_latent(G, clip, ws, text, space=space, steps=steps, lr=lr, l2_weight=l2_weight,
                          style_std=style_std, every=every, on_step=on_step, should_stop=should_stop,
                          identity=None if identity is None else (lambda a, b: 1 - identity.similarity(a, b)),
                          identity_weight=identity_weight)
    if not res.similarity:
        raise InputError("The optimisation ran no step.")
    return TextEdit("optimize", res.images, res.ws, res.seconds,
                    {"space": space, "steps": res.steps, "lr": lr, "l2_weight": l2_weight,
                     "identity_weight": identity_weight if identity is not None else 0.0,
                     "similarity": (res.similarity[0], res.similarity[-1]), "stopped": res.stopped},
                    styles=res.styles, intermediates=res.intermediates)


@torch.no_grad()
def clip_similarity(clip, images: Tensor, text: str, templates) -> Tensor:
    """Cosine similarity [N] of images to a prompt's ensembled embedding."""
    return (clip.encode_image(images) * ensemble_embedding(clip, text, templates).to(clip.device)).sum(-1).cpu()
