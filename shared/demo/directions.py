"""Linear edit directions in W for the demo generator, one per factor of the portrait world: the
file format and its loading (fitting them: `training.demo.directions`).

InterFaceGAN (Shen et al., "Interpreting the Latent Space of GANs for Semantic Face Editing",
2020; genforce/interfacegan) takes the normal of a linear boundary in latent space as the edit
direction. Each direction is stored unit-norm with `slope`: how much the predicted factor (or
class probability) moves per unit step along it, measured by editing fresh latents and reading the
results with the demo predictor, so an edit can be asked for in the factor's own units.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from safetensors import safe_open
from torch import Tensor

__all__ = ["FORMAT", "Direction", "DirectionSet", "load_directions"]

FORMAT = "stylegan-hub-demo-directions/1"


@dataclass(frozen=True)
class Direction:
    """name: the factor ("smile") or factor=class ("hair_color=red"); vector [w_dim] unit-norm;
    slope: measured change of the predicted factor (continuous: its units; class: probability)
    per unit step along `vector` (may be <= 0 where the generator does not follow); fit: held-out R^2
    (continuous) or balanced accuracy of the linear boundary."""
    name: str
    vector: Tensor
    slope: float
    fit: float


@dataclass(frozen=True)
class DirectionSet:
    directions: dict[str, Direction]
    w_std: float            # mean per-dimension std of W: the scale of a "unit" edit
    info: dict

    def __getitem__(self, name: str) -> Direction:
        if name not in self.directions:
            raise KeyError(f"no direction {name!r}; known: {', '.join(self.directions)}")
        return self.directions[name]

    def names(self) -> list[str]:
        return list(self.directions)

    def step_for(self, name: str, change: float) -> Tensor:
        """The W offset that should move factor `name` by `change` (its units; classes: probability).
        Raises ValueError for a direction the generator does not follow (slope <= 0)."""
        d = self[name]
        if d.slope <= 0:
            raise ValueError(f"the generator does not follow the {name} direction (measured slope {d.slope:.3g})")
        return d.vector * (change / d.slope)


def load_directions(path: Path | str) -> DirectionSet:
    with safe_open(str(path), "pt") as f:
        meta = f.metadata() or {}
        if meta.get("format") != FORMAT:
            raise ValueError(f"{path} is not a demo directions file (format {meta.get('format')!r}).")
        vectors = f.get_tensor("vectors").float()
    names = json.loads(meta["names"])
    slopes, fits = json.loads(meta["slopes"]), json.loads(meta["fits"])
    dirs = {n: Direction(n, vectors[i], float(slopes[i]), float(fits[i])) for i, n in enumerate(names)}
    return DirectionSet(dirs, float(json.loads(meta["w_std"])), json.loads(meta["info"]))
