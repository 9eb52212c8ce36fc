"""Reposing a face in a 2D StyleGAN through its latent space: yaw and pitch along pose directions in
W, with the identity rows held fixed, and StyleGAN3's input transform (translate, rotate).

- InterFaceGAN (Shen et al., CVPR 2020; genforce/interfacegan): a linear boundary's normal in W is
  an edit direction; its official FFHQ `pose` boundary (shipped by omertov/encoder4editing as
  `pose.pt`) turns the head (yaw). The demo world's boundaries are fitted on its factors and
  carry a measured slope, so its yaw and pitch are asked for in degrees.
- GANSpace (Härkönen et al., NeurIPS 2020; harskish/ganspace) and SeFa (Shen & Zhou, CVPR 2021;
  genforce/sefa): unsupervised components, some of which turn the head when applied to the
  coarse rows only; `label_pose_components` finds them by reading the pose off the edited images
  (the demo predictor on the demo world).
- GANSpace's edits turn the head on the first rows only and leave the later ones (colour, texture,
  and with them much of the identity) alone; `POSE_ROWS` is that choice, per layer group.
- StyleGAN3 (Karras et al., NeurIPS 2021; NVlabs/stylegan3): translating and rotating the input
  grid moves the whole canvas (`shared.generation.input_transform`).

Everything is a pure function over tensors; nothing imports gradio.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from shared.errors import InputError
from shared.editing.directions import DirectionBasis, apply_direction, edit_strip
from shared.generation import input_transform
from shared.latents import resolve_rows

__all__ = ["POSE_AXES", "POSE_ROWS", "ComponentReading", "PoseAxis", "PoseBasis", "calibrate_basis", "component_pose_basis",
           "demo_pose_basis", "file_pose_basis", "label_pose_components", "pose_strip", "predictor_pose_reader",
           "repose", "repose_image",
           "transform_image"]

POSE_AXES = ("yaw", "pitch")
POSE_ROWS = "coarse"             # the rows pose edits touch by default (the others keep the identity)
MAX_DEGREES = 90.0
TRANSLATE_LIMIT, ROTATE_LIMIT = 1.0, 180.0

#: reads (yaw, pitch) in degrees [N, 2] off images [N, 3, H, W] in [-1, 1]
PoseReader = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class PoseAxis:
    """One pose control: the W offset per unit of the control and what the unit is."""
    name: str                 # 'yaw' or 'pitch'
    vector: torch.Tensor      # [w_dim] (or [1, num_ws, w_dim]) offset per unit
    unit: str                 # '°' (calibrated) or '×' (multiples of a stored or component vector)
    source: str               # where the direction comes from, for the status line


@dataclass(frozen=True)
class PoseBasis:
    """The pose controls of one generator and the rows they act on (None: all rows)."""
    axes: Mapping[str, PoseAxis]
    rows: tuple[int, ...] | None

    def describe(self) -> str:
        parts = [f"{a.name} from {a.source} (unit {a.unit})" for a in self.axes.values()]
        rows = "all rows" if self.rows is None else f"rows {self.rows[0]}-{self.rows[-1]}"
        return "; ".join(parts) + f"; edits {rows}"


def _rows(G: nn.Module, rows: str | Sequence[int] | None) -> tuple[int, ...] | None:
    return None if rows is None else tuple(resolve_rows(G, rows))


def demo_pose_basis(G: nn.Module, directions, rows: str | Sequence[int] | None = POSE_ROWS) -> PoseBasis:
    """Yaw and pitch in degrees from the demo world's fitted directions (`DirectionSet`): the W
    offset that moves the predicted angle by one degree. Refuses directions the generator does not follow."""
    axes = {}
    for name in POSE_AXES:
        try:
            vector = directions.step_for(name, 1.0)
        except (KeyError, ValueError) as e:
            raise InputError(f"The demo model's {name} direction cannot be used: {e}.") from None
        axes[name] = PoseAxis(name, vector, "°", f"the demo world's fitted {name} boundary")
    return PoseBasis(axes, _rows(G, rows))


def file_pose_basis(G: nn.Module, vector: torch.Tensor, *, name: str = "yaw", source: str = "a direction file",
                    rows: str | Sequence[int] | None = POSE_ROWS) -> PoseBasis:
    """One control from a stored direction (InterFaceGAN's `pose.pt` turns the head: yaw), in
    multiples of the stored vector."""
    if name not in POSE_AXES:
        raise InputError(f"A pose direction controls yaw or pitch, not {name!r}.")
    return PoseBasis({name: PoseAxis(name, torch.as_tensor(vector, dtype=torch.float32), "×", source)}, _rows(G, rows))


def component_pose_basis(G: nn.Module, basis: DirectionBasis, picks: Mapping[str, int], *,
                         slopes: Mapping[str, float] | None = None,
                         rows: str | Sequence[int] | None = POSE_ROWS) -> PoseBasis:
    """Controls from GANSpace / SeFa components: `picks` maps 'yaw'/'pitch' to a component index.
    With `slopes` (degrees per unit of the component's scale, from `label_pose_components`) the
    control is in degrees; without, in multiples of the component's scale."""
    axes = {}
    k_max = basis.vectors.shape[0]
    for name, k in picks.items():
        if name not in POSE_AXES:
            raise InputError(f"A pose component controls yaw or pitch, not {name!r}.")
        if not 0 <= int(k) < k_max:
            raise InputError(f"Pick a component number from 0 to {k_max - 1}.")
        vector = basis.vectors[int(k)] * basis.scales[int(k)]
        unit = "×"
        slope = None if slopes is None else slopes.get(name)
        if slope is not None and abs(slope) > 1e-6:
            vector, unit = vector / float(slope), "°"
        axes[name] = PoseAxis(name, vector, unit, f"{basis.method} component {int(k)}")
    return PoseBasis(axes, _rows(G, rows))


def _check_amounts(basis: PoseBasis, amounts: Mapping[str, float]) -> dict[str, float]:
    out = {}
    for name, value in amounts.items():
        value = float(value)
        if not math.isfinite(value):
            raise InputError(f"The {name} must be a finite number.")
        if value == 0:
            continue
        if name not in basis.axes:
            raise InputError(f"This model has no {name} control here; its controls: {', '.join(basis.axes)}.")
        unit = basis.axes[name].unit
        if unit == "°" and abs(value) > MAX_DEGREES:
            raise InputError(f"Ask for a {name} between -{MAX_DEGREES:g}° and {MAX_DEGREES:g}°, not {value:g}°.")
        out[name] = value
    return out


def repose(G: nn.Module, ws: torch.Tensor, basis: PoseBasis, amounts: Mapping[str, float]) -> torch.Tensor:
    """ws [N, num_ws, w_dim] turned by `amounts` ({'yaw': 20, 'pitch': -5}, in each axis' unit) on
    the basis' rows; a new float32 CPU tensor."""
    out = torch.as_tensor(ws, dtype=torch.float32).cpu()
    for name, value in _check_amounts(basis, amounts).items():
        out = apply_direction(G, out, basis.axes[name].vector, value, basis.rows)
    return out


@torch.inference_mode()
def repose_image(G: nn.Module, ws: torch.Tensor, basis: PoseBasis, amounts: Mapping[str, float]
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """(image [1, 3, H, W] in [-1, 1] on the CPU, the reposed ws) for one latent."""
    edited = repose(G, ws, basis, amounts)
    dev = next(G.parameters()).device
    return G.synthesis(edited.to(dev), noise_mode="const").float().cpu(), edited


def pose_strip(G: nn.Module, ws: torch.Tensor, basis: PoseBasis, axis: str, values: Sequence[float]
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """One latent turned along `axis` at each of `values`: (images [S, 3, H, W], ws [S, num_ws, w_dim])."""
    if axis not in basis.axes:
        raise InputError(f"This model has no {axis} control here; its controls: {', '.join(basis.axes)}.")
    _check_amounts(basis, {axis: max(values, key=abs)} if values else {})
    return edit_strip(G, ws, basis.axes[axis].vector, list(values), basis.rows)


@torch.inference_mode()
def transform_image(G: nn.Module, ws: torch.Tensor, translate: tuple[float, float], rotate: float) -> torch.Tensor:
    """A StyleGAN3 image of ws [1, num_ws, w_dim] with its input grid translated (in units of the
    canvas) and rotated (degrees); InputError for other architectures or out-of-range values."""
    if getattr(G, "arch", None) != "stylegan3":
        raise InputError("Translate and rotate are StyleGAN3's input transform; pick a StyleGAN3 model.")
    for v in translate:
        if not (math.isfinite(float(v)) and abs(float(v)) <= TRANSLATE_LIMIT):
            raise InputError(f"Translate by -{TRANSLATE_LIMIT:g} to {TRANSLATE_LIMIT:g} canvas widths, not {v}.")
    if not (math.isfinite(float(rotate)) and abs(float(rotate)) <= ROTATE_LIMIT):
        raise InputError(f"Rotate by -{ROTATE_LIMIT:g}° to {ROTATE_LIMIT:g}°, not {rotate}.")
    dev = next(G.parameters()).device
    with input_transform(G, (float(translate[0]), float(translate[1])), float(rotate)):
        return G.synthesis(torch.as_tensor(ws, dtype=torch.float32).to(dev), noise_mode="const").float().cpu()


def predictor_pose_reader(predictor: nn.Module) -> PoseReader:
    """The demo predictor as a `PoseReader`: (yaw, pitch) in degrees [N, 2] of images resized to its 64 px."""
    def read(images: torch.Tensor) -> torch.Tensor:
        if images.shape[-1] != 64:
            images = torch.nn.functional.interpolate(images.float(), size=(64, 64), mode="area")
        f = predictor.predict(images).factors
        return torch.stack([f["yaw"], f["pitch"]], dim=1).float()
    return read


@torch.inference_mode()
def calibrate_basis(G: nn.Module, basis: PoseBasis, read_pose: PoseReader, *, samples: int = 16,
                    seed: int = 0) -> tuple[PoseBasis, dict[str, float], dict[str, str]]:
    """The basis rescaled so that one unit of each axis turns the head by one degree on its rows,
    as `read_pose` measures on `samples` latents (central difference over ±10 units of an axis in
    degrees, ±1 of one in multiples); also the measured degrees per old unit. An axis the generator
    does not follow (under a tenth of its nominal degrees, or no turn at all) is refused."""
    dev = next(G.parameters()).device
    gen = torch.Generator().manual_seed(int(seed))
    ws = G.mapping(torch.randn([int(samples), G.z_dim], generator=gen).to(dev), None, truncation_psi=0.7)
    ws = ws.float().cpu()
    axes, slopes, refused = {}, {}, {}
    for name, axis in basis.axes.items():
        i = POSE_AXES.index(name)
        step = 10.0 if axis.unit == "°" else 1.0
        plus = apply_direction(G, ws, axis.vector, step, basis.rows).to(dev)
        minus = apply_direction(G, ws, axis.vector, -step, basis.rows).to(dev)
        d = read_pose(G.synthesis(plus, noise_mode="const")) - read_pose(G.synthesis(minus, noise_mode="const"))
        turns = d[:, i].float() / (2 * step)
        slope = float(turns.mean())
        slopes[name] = slope
        agree = float((torch.sign(turns) == math.copysign(1.0, slope)).float().mean())
        weak = slope < 0.1 if axis.unit == "°" else abs(slope) < 1.0
        if weak or agree < 0.75:
            refused[name] = (f"the {name} direction ({axis.source}) does not turn this model's heads consistently "
                             f"on these rows ({slope * step:+.1f}° on average for {step:g}{axis.unit}, the same way "
                             f"in {agree:.0%} of {int(samples)} faces)")
            continue
        axes[name] = PoseAxis(name, axis.vector / slope, "°", f"{axis.source}, calibrated")
    if not axes:
        raise InputError("No pose direction turns this model's heads on these rows: " + "; ".join(refused.values())
                         + ". Try all rows, or another method.")
    return PoseBasis(axes, basis.rows), slopes, refused


@dataclass(frozen=True)
class ComponentReading:
    """How much one component turns the head, read off edited images: degrees of yaw and pitch
    per unit of the component's scale (mean over the probe latents)."""
    index: int
    yaw_slope: float
    pitch_slope: float


@torch.inference_mode()
def label_pose_components(G: nn.Module, basis: DirectionBasis, read_pose: PoseReader, *, samples: int = 8,
                          step: float = 1.0, seed: int = 0, rows: str | Sequence[int] | None = POSE_ROWS
                          ) -> tuple[dict[str, int], dict[str, float], list[ComponentReading]]:
    """Which components turn the head: each is applied at ±`step` (its scale) to `samples` latents
    and `read_pose` reads yaw and pitch off the images. Returns ({'yaw': k, 'pitch': k}, the slopes in
    degrees per unit, every component's reading). The two picks are different components."""
    dev = next(G.parameters()).device
    gen = torch.Generator().manual_seed(int(seed))
    z = torch.randn([int(samples), G.z_dim], generator=gen).to(dev)
    ws = G.mapping(z, None, truncation_psi=0.7).float().cpu()
    row_ids = _rows(G, rows)
    readings = []
    for k in range(basis.vectors.shape[0]):
        vec = basis.vectors[k] * basis.scales[k]
        plus = apply_direction(G, ws, vec, step, row_ids).to(dev)
        minus = apply_direction(G, ws, vec, -step, row_ids).to(dev)
        d = (read_pose(G.synthesis(plus, noise_mode="const")) - read_pose(G.synthesis(minus, noise_mode="const")))
        d = d.float().cpu().mean(0) / (2 * step)
        readings.append(ComponentReading(k, float(d[0]), float(d[1])))
    yaw = max(readings, key=lambda r: abs(r.yaw_slope) - abs(r.pitch_slope))
    rest = [r for r in readings if r.index != yaw.index]
    pitch = max(rest, key=lambda r: abs(r.pitch_slope) - abs(r.yaw_slope))
    return ({"yaw": yaw.index, "pitch": pitch.index}, {"yaw": yaw.yaw_slope, "pitch": pitch.pitch_slope}, readings)
