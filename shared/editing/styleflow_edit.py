"""StyleFlow attribute edits (Abdal, Zhu, Mitra, Wonka, "StyleFlow: Attribute-conditioned
Exploration of StyleGAN-Generated Images using Conditional Continuous Normalizing Flows", ACM TOG
2021; RameenAbdal/StyleFlow at 53a8c54, whose editor `main.py` `real_time_editing` this follows).

A conditional CNF (`shared.archs.styleflow.StyleFlow`) maps every W+ row w to z given a condition
vector c (the image's attributes). An edit changes one attribute at a time, as the official
editor's sliders do: z = flow(ws | c), c' = c with that attribute set to its target,
ws' = flow^-1(z | c'), and only the W+ rows that belong to the attribute take the new values
(the others keep the current ones); the next attribute starts from the result. The official row
table for the 18-row FFHQ generator (rows edited; its editor keeps the rest):

| attribute | rows | | attribute | rows |
|---|---|---|---|---|
| Gender | 0-7 | | Baldness | 0-5 |
| Glasses | 2-3 | | Beard | 5-9 |
| Yaw, Pitch | 0-3 | | Age | 4-7 |
| Expression | 4-5 | | lighting | 7-11 |

The official editor also amplifies each requested change by a per-attribute gain before it
enters the condition (Gender 1.5, Glasses 2.5, Yaw 1, Pitch 1, Baldness 2, Beard 1.7, Age 0.93,
Expression 1), and reads its sliders over Gender/Glasses/Baldness/Beard/Expression 0..1,
Yaw/Pitch -20..20 degrees, Age 0..65 years; `official_flow_model` records the same. FFHQ
attributes come from the user (the official ones were read by the Microsoft Face API, lighting by
DPR's 9 spherical-harmonic coefficients); the defaults are the means of the 1,000 attribute and
lighting vectors the official repository ships (`data/attributes.npy`, `data/light.npy`). The
demo world's flow (`shared.demo.flow`, trained by `training.demo.train_flow`) reads its attributes
with the demo predictor and records its own rows. A generator's flow is its "flow" companion
record, loaded through the model cache (`flow_for`). Pure functions; nothing here imports gradio or
touches a global RNG (the edit is deterministic: adaptive Dormand-Prince solves).
"""
from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from shared import hub, registry
from shared.archs.styleflow import StyleFlow, load_styleflow
from shared.errors import InputError

__all__ = ["FlowAttribute", "FlowModel", "FlowEdit", "OFFICIAL_LIGHTING", "apply_styleflow", "edit_ws",
           "flow_attributes", "flow_for", "official_attributes", "official_flow_model", "parse_values",
           "with_lighting"]

Progress = Callable[[float, str], object]

#: mean of the official repository's 1,000 DPR lighting estimates (data/light.npy), rounded
OFFICIAL_LIGHTING = (0.85, -0.15, 0.28, -0.04, -0.02, -0.01, -0.16, -0.01, 0.12)


@dataclass(frozen=True)
class FlowAttribute:
    """One entry of a flow's condition vector, in the order the flow reads them.

    The flow sees (value - mean) / std; `low`..`high` is the slider range in `unit`; `rows` are
    the W+ rows an edit of this attribute writes (None: all rows); `gain` amplifies a requested
    change (the official editor's per-attribute degree); `editable` False marks entries held at
    the source's value (the official flow's lighting coefficients)."""
    name: str
    unit: str
    low: float
    high: float
    default: float = 0.0
    mean: float = 0.0
    std: float = 1.0
    rows: tuple[int, ...] | None = None
    gain: float = 1.0
    editable: bool = True


@dataclass(frozen=True, eq=False)
class FlowModel:
    """A StyleFlow prior with the meaning of its condition: `attributes` in condition order,
    `num_ws` the W+ row count the row table refers to, `label` for messages."""
    flow: StyleFlow
    attributes: tuple[FlowAttribute, ...]
    num_ws: int
    label: str

    def __post_init__(self) -> None:
        if len(self.attributes) != self.flow.context_dim:
            raise ValueError(f"{self.label}: {len(self.attributes)} attributes for a flow conditioned on "
                             f"{self.flow.context_dim} values")

    def names(self) -> list[str]:
        return [a.name for a in self.attributes]

    def editable(self) -> list[FlowAttribute]:
        return [a for a in self.attributes if a.editable]

    def index(self, name: str) -> int:
        names = self.names()
        if name not in names:
            have = ", ".join(a.name for a in self.editable())
            raise InputError(f"{self.label} has no attribute {name!r}; it has {have}.")
        return names.index(name)

    def normalise(self, values: Tensor) -> Tensor:
        """Raw attribute values [N, K] (their units) -> the flow's condition [N, K]."""
        mean = torch.tensor([a.mean for a in self.attributes], dtype=values.dtype, device=values.device)
        std = torch.tensor([a.std for a in self.attributes], dtype=values.dtype, device=values.device)
        return (values - mean) / std


@dataclass(frozen=True, eq=False)
class FlowEdit:
    """ws [N, num_ws, w_dim] after the edit (CPU float32); `steps`: per edited attribute, its
    name, the requested values [N] (after the gain) and the rows written; `source` / `target`
    the raw attribute matrices [N, K] before and after; `image` [N, 3, H, W] in [-1, 1] (CPU)
    when rendered by `apply_styleflow`, else None."""
    ws: Tensor
    steps: tuple[tuple[str, Tensor, tuple[int, ...]], ...]
    source: Tensor
    target: Tensor
    image: Tensor | None = None


def parse_values(model: FlowModel, values: Mapping[str, float | Tensor] | Tensor | Sequence[float] | None, n: int,
                 base: Tensor | None = None) -> Tensor:
    """Attribute values as a float32 matrix [n, K] in the flow's condition order: a tensor [K] or
    [n, K], a sequence of K numbers, or a mapping name -> number or [n] tensor (missing names
    from `base`, else the attribute's default)."""
    k = len(model.attributes)
    if base is None:
        base = torch.tensor([a.default for a in model.attributes], dtype=torch.float32).expand(n, k)
    out = base.detach().to("cpu", torch.float32).clone()
    if values is None:
        return out
    if isinstance(values, Mapping):
        for name, v in values.items():
            j = model.index(name)
            out[:, j] = torch.as_tensor(v, dtype=torch.float32).reshape(-1).expand(n)
    else:
        t = torch.as_tensor(values, dtype=torch.float32)
        if t.ndim == 1:
            t = t.expand(n, -1)
        if tuple(t.shape) != (n, k):
            raise InputError(f"{model.label} takes {k} attribute values per image ({', '.join(model.names())}), "
                             f"got shape {list(t.shape)}.")
        out = t.clone()
    if not torch.isfinite(out).all():
        raise InputError("Attribute values must be finite numbers.")
    return out


def _rows(model: FlowModel, attr: FlowAttribute, num_ws: int, rows: str) -> tuple[int, ...]:
    if rows == "all" or attr.rows is None:
        return tuple(range(num_ws))
    if rows != "attribute":
        raise InputError(f"rows must be 'attribute' (each attribute's own W+ rows) or 'all', got {rows!r}.")
    if num_ws != model.num_ws:
        raise InputError(f"{model.label}'s row table is for {model.num_ws}-row W+ codes, this generator has {num_ws} "
                         f"rows; edit all rows instead.")
    return attr.rows


def _solve(flow: StyleFlow, x: Tensor, cond: Tensor, reverse: bool) -> Tensor:
    """The flow on ws [N, R, D]; when all rows of every code are equal (codes straight from the
    mapping network) it runs on one row and copies the result (the same map, R times cheaper)."""
    if x.shape[1] > 1 and torch.equal(x, x[:, :1].expand_as(x)):
        out = flow.reverse(x[:, :1], cond) if reverse else flow(x[:, :1], cond)
        return out.expand_as(x).clone()
    return flow.reverse(x, cond) if reverse else flow(x, cond)


@torch.no_grad()
def edit_ws(model: FlowModel, ws: Tensor, source: Mapping | Tensor | Sequence[float] | None,
            target: Mapping | Tensor | Sequence[float], *, rows: str = "attribute",
            progress: Progress | None = None) -> FlowEdit:
    """StyleFlow's edit of W+ codes (no rendering).

    Args:
        model: the flow and its attributes.
        ws: [N, num_ws, w_dim] W+ codes (any device; computed on the flow's device, float32).
        source: the codes' current attribute values (see `parse_values`; None: the defaults).
        target: the requested values; attributes equal to the source (or not editable) stay.
        rows: 'attribute' (each attribute writes its own W+ rows, the official editor's table)
            or 'all'.
        progress: called with (fraction, text) after each solve.
    Returns:
        FlowEdit with the edited ws on the CPU (float32).
    """
    ws = torch.as_tensor(ws)
    if ws.ndim != 3 or ws.shape[-1] != model.flow.input_dim:
        raise InputError(f"{model.label} edits W+ codes [N, num_ws, {model.flow.input_dim}], got {list(ws.shape)}; "
                         f"it belongs to another generator.")
    n, num_ws = int(ws.shape[0]), int(ws.shape[1])
    src = parse_values(model, source, n)
    req = parse_values(model, target, n, base=src)
    changed = [(j, a) for j, a in enumerate(model.attributes)
               if a.editable and bool((req[:, j] - src[:, j]).abs().max() > 1e-6)]
    dev = model.flow.chain[0].weight.device
    cur_ws, cur = ws.detach().to(dev, torch.float32), src.clone()
    steps = []
    for i, (j, attr) in enumerate(changed):
        nxt = cur.clone()
        nxt[:, j] = cur[:, j] + attr.gain * (req[:, j] - cur[:, j])
        z = _solve(model.flow, cur_ws, model.normalise(cur).to(dev), reverse=False)
        new = _solve(model.flow, z, model.normalise(nxt).to(dev), reverse=True)
        keep = _rows(model, attr, num_ws, rows)
        mask = torch.zeros(num_ws, dtype=torch.bool, device=dev)
        mask[list(keep)] = True
        cur_ws = torch.where(mask[None, :, None], new, cur_ws)
        cur = nxt
        steps.append((attr.name, nxt[:, j].clone(), keep))
        if progress is not None:
            progress((i + 1) / len(changed), f"{attr.name}: {i + 1} of {len(changed)} attribute(s)")
    return FlowEdit(cur_ws.float().cpu(), tuple(steps), src, cur)


@torch.no_grad()
def apply_styleflow(G: nn.Module, model: FlowModel, ws: Tensor, source: Mapping | Tensor | Sequence[float] | None,
                    target: Mapping | Tensor | Sequence[float], *, rows: str = "attribute",
                    progress: Progress | None = None) -> FlowEdit:
    """`edit_ws`, then render the edited codes with G (noise 'const').
    Returns: FlowEdit with `image` [N, 3, H, W] float32 in [-1, 1] on the CPU."""
    if int(G.w_dim) != model.flow.input_dim:
        raise InputError(f"{model.label} is a flow over {model.flow.input_dim}-dim W; this generator's W has "
                         f"{int(G.w_dim)} dims.")
    edit = edit_ws(model, ws, source, target, rows=rows, progress=progress)
    dev = next(G.parameters()).device
    img = G.synthesis(edit.ws.to(dev), noise_mode="const").float().cpu().clamp(-1, 1)
    return FlowEdit(edit.ws, edit.steps, edit.source, edit.target, img)


# ---- the official FFHQ flow ------------------------------------------------------------------------
_OFFICIAL = (  # name, unit, low, high, default (mean of data/attributes.npy), rows, gain
    ("Gender", "0 female .. 1 male", 0.0, 1.0, 0.43, tuple(range(0, 8)), 1.5),
    ("Glasses", "0 .. 1", 0.0, 1.0, 0.17, (2, 3), 2.5),
    ("Yaw", "degrees", -20.0, 20.0, -0.04, (0, 1, 2, 3), 1.0),
    ("Pitch", "degrees", -20.0, 20.0, -2.94, (0, 1, 2, 3), 1.0),
    ("Baldness", "0 .. 1", 0.0, 1.0, 0.07, tuple(range(0, 6)), 2.0),
    ("Beard", "0 .. 1", 0.0, 1.0, 0.08, tuple(range(5, 10)), 1.7),
    ("Age", "years", 0.0, 65.0, 30.5, (4, 5, 6, 7), 0.93),
    ("Expression", "0 neutral .. 1 smile", 0.0, 1.0, 0.74, (4, 5), 1.0),
)


def official_flow_model(path: str | os.PathLike | None, lighting: Sequence[float] = OFFICIAL_LIGHTING, *,
                        device: torch.device | str = "cpu") -> FlowModel:
    """The official `modellarge10k.pt` (registry record `styleflow-ffhq`) as a FlowModel: 9
    lighting coefficients (held, default `lighting`) then the 8 attributes, with the official row
    table and gains. Reads the file each call: the app gets the record once through the model
    cache (`models.get("styleflow-ffhq")`) and sets the lighting with `with_lighting`.
    Raises InputError when `path` is None or missing, CheckpointError when it is not the prior."""
    if path is None or not Path(path).is_file():
        raise InputError("StyleFlow's official flow (modellarge10k.pt, registry record styleflow-ffhq) is not on this "
                         "machine: download flow_weight/modellarge10k.pt from https://github.com/RameenAbdal/StyleFlow "
                         "and put it at $HUB_WEIGHTS_DIR/modellarge10k.pt or set HUB_MODEL_PATH_STYLEFLOW_FFHQ to it.")
    if len(lighting) != 9:
        raise InputError(f"The official flow takes 9 lighting coefficients, got {len(lighting)}.")
    flow = load_styleflow(Path(path)).to(device)
    return FlowModel(flow, official_attributes(lighting), 18, "StyleFlow's FFHQ flow")


def _official_flow_card(flow_id: str):
    card = registry.get(flow_id)
    return card if card.format == "torch-state-dict" else None


def flow_attributes(models, model_id: str | None) -> list[FlowAttribute] | None:
    """The editable attributes of the flow made for `model_id` (its "flow" companion), or None when
    it has none. The official FFHQ flow's come without loading its file; the demo flow is loaded
    through `models` (a `ModelCache`)."""
    flow_id = registry.companion(model_id, "flow")
    if flow_id is None:
        return None
    if _official_flow_card(flow_id) is not None:
        return [a for a in official_attributes() if a.editable]
    return models.get(flow_id).editable()


def flow_for(models, model_id: str, lighting: Sequence[float] | None = None) -> FlowModel:
    """The flow made for `model_id` (its "flow" companion) from `models` (a `ModelCache`), with the
    official flow's 9 held lighting coefficients set to `lighting` (None: `OFFICIAL_LIGHTING`).
    Raises InputError when the model has no flow or the official file is not on this machine."""
    flow_id = registry.companion(model_id, "flow")
    if flow_id is None:
        raise InputError(f"StyleFlow has a flow for the demo model and for StyleGAN2 FFHQ 1024 only, not {model_id}.")
    card = _official_flow_card(flow_id)
    if card is None:
        return models.get(flow_id)
    if hub.cached_path(card) is None:
        official_flow_model(None)                      # raises the sentence that says where to get the file
    return with_lighting(models.get(flow_id), OFFICIAL_LIGHTING if lighting is None else lighting)


def with_lighting(model: FlowModel, lighting: Sequence[float]) -> FlowModel:
    """The official flow `model` (shared, not copied) with its 9 held lighting coefficients set to `lighting`."""
    if len(lighting) != 9:
        raise InputError(f"The official flow takes 9 lighting coefficients, got {len(lighting)}.")
    return FlowModel(model.flow, official_attributes(lighting), model.num_ws, model.label)


def official_attributes(lighting: Sequence[float] = OFFICIAL_LIGHTING) -> tuple[FlowAttribute, ...]:
    """The official flow's 17 condition entries (9 held lighting coefficients, then the 8
    attributes with their slider ranges, dataset-mean defaults, rows and gains); no file needed."""
    light = tuple(FlowAttribute(f"light_sh{i}", "SH coefficient", -2.0, 2.0, float(v), rows=tuple(range(7, 12)),
                                editable=False) for i, v in enumerate(lighting))
    return light + tuple(FlowAttribute(n, u, lo, hi, d, rows=r, gain=g) for n, u, lo, hi, d, r, g in _OFFICIAL)
