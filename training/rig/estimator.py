"""The differentiable "face model" of StyleRig's self-supervised training (Tewari et al., CVPR 2020,
section 4: a differentiable 3DMM fit plays this role there): a function from images to a `Reading`
of the rig's controls, the factors that must stay, and optionally an identity embedding.

On the demo world it is the demo predictor (`shared.demo.predictor`), run through its `forward`
(not `predict`, whose inference mode and arg-max cut the gradient): its continuous regression
outputs are linear in each factor's units and differentiable with respect to the image; the part
pooling inside it detaches only the soft part masks, so gradients still reach the image through the
pooled features and the global branch. For FFHQ any differentiable estimator fits the same shape
(see `training.rig.train`'s docstring).
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from shared.demo.predictor import CIRCULAR, CONTINUOUS, MASKED, RESOLUTION, Predictor
from shared.portraits import FACTORS
from shared.rig import RigConfig

__all__ = ["Estimator", "Reading", "predictor_estimator"]


@dataclass(frozen=True)
class Reading:
    """What a face model reads off a batch of N images.

    controls: [N, C] the rig's controls in normalised units (-1..1 over each control's range);
    others: factor -> [N, K] readings that an edit must leave alone, in shares of the factor's range
        (a continuous factor as u in [0, 1], a categorical one as its K class probabilities), so a
        change of 0.05 is 5 % of the range;
    identity: optional [N, F] embedding that no control should move (e.g. ArcFace on FFHQ).
    """
    controls: Tensor
    others: dict[str, Tensor]
    identity: Tensor | None = None


Estimator = Callable[[Tensor], Reading]   # img [N, 3, H, W] in [-1, 1] -> Reading (differentiable)


def predictor_estimator(predictor: Predictor, config: RigConfig) -> Estimator:
    """The demo predictor as the rig's face model for `config.controls` (continuous factor names).

    The predictor is put in eval mode and frozen (its batch-norm statistics stay the trained ones);
    images of another size are resized to 64 px (antialiased bilinear). Circular factors
    (background_hue) are read as (cos, sin) / 2 pi, whose change is about the hue's change as a
    share of its range; `glasses_color` probabilities are weighted by the probability of glasses,
    since without glasses the colour is invisible and free.
    """
    predictor.eval().requires_grad_(False)
    cols, j = {}, 0
    for s in CONTINUOUS:
        cols[s.name] = (j, j + 2) if s.name in CIRCULAR else (j, j + 1)
        j = cols[s.name][1]
    specs = {s.name: s for s in FACTORS}
    for c in config.controls:
        if c.name not in cols or c.name in CIRCULAR:
            raise ValueError(f"{c.name!r} is not a non-circular continuous factor the demo predictor reads")
    names = set(config.names)

    def read(img: Tensor) -> Reading:
        if tuple(img.shape[-2:]) != (RESOLUTION, RESOLUTION):
            img = F.interpolate(img, size=(RESOLUTION, RESOLUTION), mode="bilinear", align_corners=False,
                                antialias=True)
        out = predictor(img)
        reg = out.reg                                                    # [N, n_reg], -1..1 per range
        controls = []
        for c in config.controls:
            s = specs[c.name]
            units = s.low + (reg[:, cols[c.name][0]] + 1) * 0.5 * (s.high - s.low)
            controls.append(c.normalise(units))
        others: dict[str, Tensor] = {}
        for s in CONTINUOUS:
            if s.name in names:
                continue
            a, b = cols[s.name]
            others[s.name] = reg[:, a:b] / (2 * math.pi) if s.name in CIRCULAR else (reg[:, a:b] + 1) * 0.5
        probs = {k: v.softmax(1) for k, v in out.logits.items()}
        for k, p in probs.items():
            if k in MASKED:
                gate, hidden = MASKED[k]
                p = p * (1 - probs[gate][:, hidden:hidden + 1])
            others[k] = p
        return Reading(torch.stack(controls, 1), others)

    return read
