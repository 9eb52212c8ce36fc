"""How well latent edits work on the demo world, with the demo predictor as the judge (issue 7,
item 6): for each direction, over n fresh latents, the share of latents whose target factor moves
the requested way, the mean change of the target factor, and the mean change of every other
continuous factor (as a share of its range: disentanglement).
"""
from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from shared.portraits import FACTORS

__all__ = ["EDIT_EVAL_SEED", "SUCCESS_TARGET", "direction_report", "labelled_edit_report"]

EDIT_EVAL_SEED = 7_400_000
SUCCESS_TARGET = 0.9
_SPECS = {s.name: s for s in FACTORS}


def _reader(G, predictor) -> Callable[[Tensor], tuple[dict[str, Tensor], dict[str, Tensor]]]:
    @torch.no_grad()
    def read(ws: Tensor):
        p = predictor.predict(G.synthesis(ws, noise_mode="const"))
        return {k: p.factors[k].float() for k in _SPECS}, p.probs
    return read


@torch.no_grad()
def direction_report(G, predictor, ds, *, n: int = 100, change: float = 0.25, seed: int = EDIT_EVAL_SEED,
                     names: list[str] | None = None) -> dict[str, dict]:
    """For each direction of `ds` (a `shared.demo.directions.DirectionSet`) that the generator
    follows (slope > 0): edit n latents by `ds.step_for(name, change * size)` where size is the
    factor's range (continuous) or 1 (a class probability), up and down, and report
    {'success': share of (latent, sign) edits that move the target the requested way,
     'target_change': mean |change| of the target (share of range, or probability),
     'other_change': mean |change| of the other continuous factors (share of range), 'step': |step|}."""
    read = _reader(G, predictor)
    ws = G.mapping(torch.randn([n, G.z_dim], generator=torch.Generator().manual_seed(seed)))
    base, base_p = read(ws)
    out = {}
    for name in names or ds.names():
        d = ds[name]
        if d.slope <= 0:
            continue
        factor, _, cls = name.partition("=")
        spec = _SPECS[factor]
        size = 1.0 if cls else spec.high - spec.low
        step = ds.step_for(name, change * size).to(ws)
        ok, target, other = 0, 0.0, 0.0
        for sign in (1.0, -1.0):
            f, p = read(ws + sign * step[None, None, :] if step.ndim == 1 else ws + sign * step)
            if cls:
                k = spec.categories.index(cls)
                delta = p[factor][:, k] - base_p[factor][:, k]
            else:
                delta = (f[factor] - base[factor]) / size
            ok += int((sign * delta > 0).sum())
            target += float(delta.abs().mean()) / 2
            others = [((f[o] - base[o]) / (s.high - s.low)).abs().mean() for o, s in _SPECS.items()
                      if s.kind == "continuous" and o != factor]
            other += float(torch.stack(others).mean()) / 2
        out[name] = {"success": ok / (2 * n), "target_change": target, "other_change": other,
                     "step": float(step.norm())}
    return out


@torch.no_grad()
def labelled_edit_report(G, predictor, edits: dict[str, Callable[[Tensor, float], Tensor]], *, n: int = 100,
                         seed: int = EDIT_EVAL_SEED) -> dict[str, dict]:
    """For unsupervised edits (GANSpace / SeFa components, StyleSpace channels): each edit
    `fn(ws, sign) -> images` is applied up (+1) and down (-1) to n latents; the continuous factor
    it moves most (mean |change| as a share of the range, background hue excluded: circular) is its
    label, and the report gives, for that factor, the share of latents moved the same way as the
    mean change ('success', the sign being the edit's own), the mean target change and the mean
    change of the other continuous factors."""
    conts = [s for s in FACTORS if s.kind == "continuous" and s.name != "background_hue"]
    ws = G.mapping(torch.randn([n, G.z_dim], generator=torch.Generator().manual_seed(seed)))

    def read(img: Tensor) -> Tensor:
        f = predictor.predict(img).factors
        return torch.stack([f[s.name].float() / (s.high - s.low) for s in conts], dim=1)

    base = read(G.synthesis(ws, noise_mode="const"))
    out = {}
    for name, fn in edits.items():
        up, down = read(fn(ws, 1.0)) - base, read(fn(ws, -1.0)) - base
        mag = (up.abs().mean(0) + down.abs().mean(0)) / 2
        j = int(mag.argmax())
        direction = 1.0 if float(up[:, j].mean() - down[:, j].mean()) >= 0 else -1.0
        success = float(((direction * up[:, j] > 0).float().mean() + (-direction * down[:, j] > 0).float().mean()) / 2)
        others = torch.cat([mag[:j], mag[j + 1:]]).mean()
        out[name] = {"factor": conts[j].name, "sign": direction, "success": success, "target_change": float(mag[j]),
                     "other_change": float(others)}
    return out
