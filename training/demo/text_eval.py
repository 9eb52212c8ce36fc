"""How well text-driven edits work on the demo world, with the demo predictor as the judge
(issue 8, item 6): for a prompt that names one factor of the renderer, the share of sources whose
factor moves the way the prompt asks, the mean change of that factor, and the mean change of the
other continuous factors (background hue left out: it is circular).

Class factors are read as the predictor's probability of the class (glasses: the probability of
"none" must fall); continuous factors as a share of their range.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from shared.portraits import FACTORS

__all__ = ["TEXT_EVAL_SEED", "TEXT_TARGETS", "TextTarget", "sources", "text_edit_report"]

TEXT_EVAL_SEED = 7_500_000
_SPECS = {s.name: s for s in FACTORS}


@dataclass(frozen=True)
class TextTarget:
    """A prompt and the factor it names: `cls` for a class factor (None: continuous), `sign` the
    way the prompt moves it (+1 up / -1 down)."""
    key: str
    prompt: str
    factor: str
    cls: str | None
    sign: float


TEXT_TARGETS: tuple[TextTarget, ...] = (
    TextTarget("smile", "a smiling person", "smile", None, 1.0),
    TextTarget("glasses", "a person wearing glasses", "glasses", "none", -1.0),
    TextTarget("red hair", "a person with red hair", "hair_color", "red", 1.0),
    TextTarget("blonde hair", "a person with blonde hair", "hair_color", "blonde", 1.0),
    TextTarget("beard", "a person with a beard", "beard", "beard", 1.0),
    TextTarget("turned left", "a person turned left", "yaw", None, -1.0),
)


def _reading(predictor, images: Tensor, target: TextTarget) -> tuple[Tensor, Tensor]:
    """(target value [N], other continuous factors as shares of their range [N, K])."""
    p = predictor.predict(images)
    spec = _SPECS[target.factor]
    if target.cls is not None:
        value = p.probs[target.factor][:, spec.categories.index(target.cls)].float()
    else:
        value = p.factors[target.factor].float() / (spec.high - spec.low)
    others = [p.factors[s.name].float() / (s.high - s.low) for s in FACTORS
              if s.kind == "continuous" and s.name not in (target.factor, "background_hue")]
    return value, torch.stack(others, dim=1)


@torch.no_grad()
def text_edit_report(predictor, source_images: Tensor, edited_images: Tensor, target: TextTarget) -> dict:
    """{'success': share of sources moved the requested way, 'target_change': mean |change| of the
    target (probability or share of range), 'signed_change': mean change times the requested sign,
    'other_change': mean |change| of the other continuous factors (share of range), 'n'}."""
    v0, o0 = _reading(predictor, source_images, target)
    v1, o1 = _reading(predictor, edited_images, target)
    delta = (v1 - v0) * target.sign
    return {"success": float((delta > 0).float().mean()), "target_change": float(delta.abs().mean()),
            "signed_change": float(delta.mean()), "other_change": float((o1 - o0).abs().mean()),
            "n": int(delta.numel())}


def sources(G, n: int = 50, seed: int = TEXT_EVAL_SEED, psi: float = 0.7) -> Tensor:
    """The benchmark's source latents: ws of n seeded z at truncation psi (StyleCLIP's 0.7)."""
    z = torch.randn([n, G.z_dim], generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        return G.mapping(z, truncation_psi=psi)

