"""The strengths a Local editing request is asked in: the strip of strengths from −s to +s, and the
demo world's InterFaceGAN unit (Shen et al., "Interpreting the Latent Space of GANs for Semantic
Face Editing", CVPR 2020; genforce/interfacegan): a tenth of the factor's range (classes: a tenth
of probability), through the slope measured for each fitted direction.
"""
from __future__ import annotations

import numpy as np
from torch import Tensor

from shared.errors import InputError
from shared.portraits import FACTORS

__all__ = ["interfacegan_step", "strength_ladder"]


def strength_ladder(strength: float, count: int = 5) -> list[float]:
    """`count` strengths evenly from -strength to +strength (the strips of Local editing)."""
    s = float(strength)
    return [s * t for t in np.linspace(-1, 1, count)]


def interfacegan_step(directions, name: str | None) -> Tensor:
    """The W offset [w_dim] of one strength unit along the demo direction `name` ('smile',
    'hair_color=red') of `directions` (a `shared.demo.directions.DirectionSet`): a tenth of the
    factor's range, or of a class's probability."""
    if name not in directions.names():
        raise InputError(f"Pick one of the demo directions ({', '.join(directions.names()[:5])}, ...).")
    if directions[name].slope <= 0:
        raise InputError(f"The demo generator does not follow the {name} direction (measured slope "
                         f"{directions[name].slope:.3g}); pick another one.")
    factor, _, cls = name.partition("=")
    spec = next(s for s in FACTORS if s.name == factor)
    return directions.step_for(name, 0.1 * (1.0 if cls else spec.high - spec.low))
