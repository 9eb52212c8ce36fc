"""The demo world's StyleFlow prior at run time: its conditions and the loading of the shipped flow
(StyleFlow: Abdal et al., ACM TOG 2021, RameenAbdal/StyleFlow; training: `training.demo.train_flow`).

The flow is `shared.archs.styleflow.StyleFlow` at a small size: W of the demo generator (128
dims) conditioned on 8 attributes the demo predictor reads reliably on generated faces, chosen to
mirror StyleFlow's own: yaw, pitch, smile (its Expression), the light's azimuth and elevation (its
lighting), and the probabilities of glasses, of a bald head (its Baldness) and of a beard.
Weights ship as float16 safetensors with the config and attributes in the header.
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import safe_open
from torch import Tensor

from shared.archs.styleflow import StyleFlow
from shared.editing.styleflow_edit import FlowAttribute, FlowModel
from shared.portraits import FACTORS

__all__ = ["CONDITIONS", "DEFAULT_PATH", "FORMAT", "Condition", "conditions_from_labels", "load_demo_flow",
           "read_attributes", "read_conditions"]

DEMO_SOLVER_TOL = 1e-6   # dopri5 atol = rtol for the demo flow (see load_demo_flow)
DEFAULT_PATH = Path(__file__).resolve().parent / "bundle" / "flow.safetensors"
FORMAT = "shared.demo.flow/1"
_SPECS = {s.name: s for s in FACTORS}


@dataclass(frozen=True)
class Condition:
    """One conditioning value: a continuous factor as the predictor reads it (its units), or the
    summed predicted probability of `classes` of a categorical factor."""
    name: str
    factor: str
    classes: tuple[str, ...] = ()
    unit: str = ""

    @property
    def low(self) -> float:
        return 0.0 if self.classes else _SPECS[self.factor].low

    @property
    def high(self) -> float:
        return 1.0 if self.classes else _SPECS[self.factor].high


CONDITIONS: tuple[Condition, ...] = (
    Condition("yaw", "yaw", unit="degrees (+: face turns to the image right)"),
    Condition("pitch", "pitch", unit="degrees (+: looks up)"),
    Condition("smile", "smile", unit="-1 frown .. 1 broad smile"),
    Condition("light_azimuth", "light_azimuth", unit="degrees (+: light from the right)"),
    Condition("light_elevation", "light_elevation", unit="degrees above the horizon"),
    Condition("glasses", "glasses", ("round", "square"), unit="probability of glasses"),
    Condition("bald", "hair_style", ("bald",), unit="probability of a bald head"),
    Condition("beard", "beard", ("beard",), unit="probability of a beard"),
)


def conditions_from_labels(labels: Mapping[str, Tensor]) -> Tensor:
    """Predictor labels (continuous factor -> [N] values, categorical -> [N, K] probabilities)
    -> the conditions [N, len(CONDITIONS)] (float32, raw units)."""
    cols = []
    for c in CONDITIONS:
        if c.classes:
            cats = _SPECS[c.factor].categories
            cols.append(sum(labels[c.factor][:, cats.index(k)] for k in c.classes))
        else:
            cols.append(labels[c.factor])
    return torch.stack([x.float().cpu() for x in cols], 1)


def read_conditions(prediction) -> Tensor:
    """`Predictor.predict` output -> conditions [N, len(CONDITIONS)] (float32, CPU, raw units)."""
    labels = {s.name: (prediction.probs[s.name] if s.kind == "categorical" else prediction.factors[s.name])
              for s in FACTORS}
    return conditions_from_labels(labels)


@torch.no_grad()
def read_attributes(G, ws: Tensor, predictor) -> Tensor:
    """The conditions [N, len(CONDITIONS)] (raw units, CPU) that `predictor` (the demo world's) reads
    on the images of `ws` [N, num_ws, w_dim] rendered by `G` (constant noise)."""
    return read_conditions(predictor.predict(G.synthesis(ws, noise_mode="const")))


def load_demo_flow(path: Path | str = DEFAULT_PATH) -> FlowModel:
    """The shipped demo-world flow (CPU, float32, eval) with its attributes and rows."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No demo flow at {path}; train it with "
                                f"`python -m training.demo.train_flow --out {path}`.")
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
        if meta.get("format") != FORMAT:
            raise ValueError(f"{path} is not a demo flow file (format {meta.get('format')!r}).")
        state = {k: f.get_tensor(k) for k in f.keys()}
    cfg = json.loads(meta["config"])
    flow = StyleFlow(cfg["input_dim"], tuple(cfg["hidden"]), cfg["context_dim"])
    flow.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in state.items()})
    # The demo flow is stiffer than the official one (its kinetic term is ~170): at the official
    # atol = rtol = 1e-5, dopri5's forward-reverse round trip drifts 6e-3 in w; 1e-6 keeps it near 2e-4
    # (0.15 s for 16 latents on 2 CPU threads). The official flow keeps the official tolerances.
    flow.atol = flow.rtol = DEMO_SOLVER_TOL
    attrs = tuple(FlowAttribute(**{**a, "rows": None if a["rows"] is None else tuple(a["rows"])})
                  for a in json.loads(meta["attributes"]))
    return FlowModel(flow.eval().requires_grad_(False), attrs, int(cfg["num_ws"]), "the demo world's flow")
