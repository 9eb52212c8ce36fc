"""A StyleRig-style rig: semantic controls (pose, expression, light) to W+ latent edits.

Reproduces the RigNet of StyleRig (Tewari et al., "StyleRig: Rigging StyleGAN for 3D Control over
Portrait Images", CVPR 2020; no public code, so this is our own implementation of its section 4): for
every row of W+ an encoder maps the latent w_i to a low-dimensional code, the target control
parameters are concatenated to it, and a decoder maps code and targets back to an offset d_i; the
edited latent is w_i + d_i. Each row has its own encoder and decoder of two fully connected layers,
as in the paper (which calls them linear two-layer perceptrons; we put an ELU between the two layers
so the offset can depend non-linearly on w and the targets). Other differences, all documented
here: one RigNet carries all controls at once (the paper trains one per parameter group: pose,
expression, illumination); the controls are named, bounded scalars read by a differentiable
estimator (on the demo world the demo predictor's yaw, pitch, smile, mouth_open, light_azimuth,
light_elevation) instead of 3DMM coefficients; latents are standardised by stored W statistics
(`w_mean`, `w_std`) on the way in and offsets are scaled by `w_std` on the way out; only the rows
named in `RigConfig.rows` are edited.

The network sees each control in normalised units, u = 2 (v - low) / (high - low) - 1, the same
space the demo predictor regresses continuous factors in. `rig_edit` takes values in each control's
own units; `default_controls` turns the predictor's reading of a source into the values that fill
its sliders. Training (self-supervised, build time) lives in `training.rig.train`.

Files are safetensors with a JSON header under `stylegan_hub_rig` (format version, arch "rignet",
config); `load_rig` reads them without executing anything (the model cache's loader for
`arch="rignet"` records, called with the file's path).
"""
from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from shared.errors import CheckpointError, InputError
from shared.portraits import FACTORS

__all__ = ["ARCH", "DEMO_CONTROLS", "FORMAT_VERSION", "HEADER_KEY", "RigConfig", "RigControl", "RigNet",
           "controls_tensor", "default_controls", "demo_controls", "load_rig", "read_rig_header", "rig_edit",
           "save_rig"]

ARCH = "rignet"
HEADER_KEY = "stylegan_hub_rig"
FORMAT_VERSION = 1
DEMO_CONTROLS = ("yaw", "pitch", "smile", "mouth_open", "light_azimuth", "light_elevation")
_UNITS = {"yaw": "degrees (+: face turns to the image right)", "pitch": "degrees (+: looks up)",
          "smile": "-1 frown .. 1 broad smile", "mouth_open": "0 closed .. 1 wide open",
          "light_azimuth": "degrees (+: light from the right)", "light_elevation": "degrees above the horizon"}


@dataclass(frozen=True)
class RigControl:
    """One control: its name (the estimator's factor name), its range and its unit."""
    name: str
    low: float
    high: float
    unit: str = ""

    def __post_init__(self) -> None:
        if not self.high > self.low:
            raise ValueError(f"control {self.name!r} needs high > low, got [{self.low}, {self.high}]")

    def normalise(self, v: Tensor) -> Tensor:
        """Control units -> [-1, 1] over [low, high] (not clamped)."""
        return 2 * (v - self.low) / (self.high - self.low) - 1

    def denormalise(self, u: Tensor) -> Tensor:
        """[-1, 1] -> control units."""
        return self.low + (u + 1) * 0.5 * (self.high - self.low)


def demo_controls(names: Sequence[str] = DEMO_CONTROLS) -> tuple[RigControl, ...]:
    """The demo world's controls with the ranges of `shared.portraits.FACTORS`."""
    specs = {s.name: s for s in FACTORS}
    bad = [n for n in names if n not in specs or specs[n].kind != "continuous"]
    if bad:
        raise ValueError(f"{bad} are not continuous factors of the demo world")
    return tuple(RigControl(n, specs[n].low, specs[n].high, _UNITS.get(n, "")) for n in names)


@dataclass(frozen=True)
class RigConfig:
    """Shape of a RigNet. The paper's (FFHQ, 18 x 512): code_dim=32."""
    w_dim: int                                        # latent width
    num_ws: int                                       # rows of the generator's W+
    controls: tuple[RigControl, ...]                  # what the decoder is told (in this order)
    hidden: int = 128                                 # width of each row's encoder/decoder hidden layer
    code_dim: int = 32                                # the per-row low-dimensional code
    rows: tuple[int, ...] | None = None               # rows that receive an offset (None: all)

    def __post_init__(self) -> None:
        object.__setattr__(self, "controls", tuple(
            c if isinstance(c, RigControl) else RigControl(**c) for c in self.controls))
        if self.rows is not None:
            object.__setattr__(self, "rows", tuple(int(r) for r in self.rows))
        if min(self.w_dim, self.num_ws, self.hidden, self.code_dim) < 1:
            raise ValueError("w_dim, num_ws, hidden and code_dim must be positive")
        if not self.controls:
            raise ValueError("a rig needs at least one control")
        names = [c.name for c in self.controls]
        if len(set(names)) != len(names):
            raise ValueError(f"control names must be unique, got {names}")
        rows = self.edit_rows
        if not rows or len(set(rows)) != len(rows) or min(rows) < 0 or max(rows) >= self.num_ws:
            raise ValueError(f"rows must be distinct indices in 0..{self.num_ws - 1}, got {self.rows}")

    @property
    def edit_rows(self) -> tuple[int, ...]:
        return tuple(range(self.num_ws)) if self.rows is None else self.rows

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.controls)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["controls"] = [asdict(c) for c in self.controls]
        d["rows"] = None if self.rows is None else list(self.rows)
        return d

    @classmethod
    def from_dict(cls, d: Mapping) -> RigConfig:
        known = {"w_dim", "num_ws", "controls", "hidden", "code_dim", "rows"}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown RigConfig fields {sorted(unknown)}")
        rows = d.get("rows")
        return cls(w_dim=int(d["w_dim"]), num_ws=int(d["num_ws"]),
                   controls=tuple(RigControl(**c) for c in d["controls"]), hidden=int(d.get("hidden", 128)),
                   code_dim=int(d.get("code_dim", 32)), rows=None if rows is None else tuple(rows))


class _RowLinear(nn.Module):
    """R independent linear layers, one per row: [N, R, cin] -> [N, R, cout]."""

    def __init__(self, rows: int, cin: int, cout: int, generator: torch.Generator | None) -> None:
        super().__init__()
        bound = cin ** -0.5                            # nn.Linear's default uniform range
        self.weight = nn.Parameter((torch.rand(rows, cin, cout, generator=generator) * 2 - 1) * bound)
        self.bias = nn.Parameter(torch.zeros(rows, cout))

    def forward(self, x: Tensor) -> Tensor:
        return torch.einsum("nri,rio->nro", x, self.weight) + self.bias


class RigNet(nn.Module):
    """StyleRig's RigNet over the rows `config.edit_rows` of W+.

    forward(ws [N, num_ws, w_dim], targets [N, C] in normalised units) -> edited ws, same shape.
    The decoder's last layer starts at zero, so a fresh rig is the identity; the other weights are
    drawn from `generator` (a CPU torch.Generator; default: a fixed seed, 0).
    """

    def __init__(self, config: RigConfig, *, generator: torch.Generator | None = None) -> None:
        super().__init__()
        self.config = config
        g = generator if generator is not None else torch.Generator().manual_seed(0)
        r, c = len(config.edit_rows), len(config.controls)
        self.enc1 = _RowLinear(r, config.w_dim, config.hidden, g)
        self.enc2 = _RowLinear(r, config.hidden, config.code_dim, g)
        self.dec1 = _RowLinear(r, config.code_dim + c, config.hidden, g)
        self.dec2 = _RowLinear(r, config.hidden, config.w_dim, g)
        nn.init.zeros_(self.dec2.weight)
        self.register_buffer("rows", torch.tensor(config.edit_rows, dtype=torch.long))
        self.register_buffer("w_mean", torch.zeros(config.w_dim))   # W statistics (set by the trainer)
        self.register_buffer("w_std", torch.ones(config.w_dim))

    def offsets(self, ws: Tensor, targets: Tensor) -> Tensor:
        """The offsets d [N, R, w_dim] for the edited rows (latent units)."""
        cfg = self.config
        if ws.ndim != 3 or tuple(ws.shape[1:]) != (cfg.num_ws, cfg.w_dim):
            raise ValueError(f"ws must be [N, {cfg.num_ws}, {cfg.w_dim}], got {tuple(ws.shape)}")
        if targets.shape != (ws.shape[0], len(cfg.controls)):
            raise ValueError(f"targets must be [{ws.shape[0]}, {len(cfg.controls)}], got {tuple(targets.shape)}")
        x = (ws[:, self.rows] - self.w_mean) / self.w_std                          # [N, R, w_dim]
        code = self.enc2(F.elu(self.enc1(x)))                                     # [N, R, code_dim]
        t = targets.to(code.dtype)[:, None].expand(-1, code.shape[1], -1)         # [N, R, C]
        return self.dec2(F.elu(self.dec1(torch.cat([code, t], dim=2)))) * self.w_std

    def forward(self, ws: Tensor, targets: Tensor) -> Tensor:
        return ws.index_add(1, self.rows, self.offsets(ws, targets))

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())


# ---- run time -----------------------------------------------------------------------------------
def controls_tensor(config: RigConfig, controls: Mapping[str, float] | Tensor, n: int) -> Tensor:
    """Control values in their units (a dict with every control, or a tensor [C] or [n, C]) ->
    normalised targets [n, C] float32 on the CPU. Raises InputError naming what is missing or
    out of range (a small margin beyond each range is accepted)."""
    if isinstance(controls, Mapping):
        missing = [c.name for c in config.controls if c.name not in controls]
        extra = sorted(set(controls) - set(config.names))
        if missing or extra:
            raise InputError(f"The rig needs a value for each of {', '.join(config.names)}"
                             + (f"; missing {', '.join(missing)}" if missing else "")
                             + (f"; it has no control {', '.join(extra)}" if extra else "") + ".")
        vals = torch.tensor([[float(controls[c.name]) for c in config.controls]], dtype=torch.float32)
    else:
        vals = controls.detach().to("cpu", torch.float32)
        if vals.ndim == 1:
            vals = vals[None]
        if vals.ndim != 2 or vals.shape[1] != len(config.controls):
            raise InputError(f"Control values must be [N, {len(config.controls)}] "
                             f"({', '.join(config.names)}), got {tuple(controls.shape)}.")
    if not torch.isfinite(vals).all():
        raise InputError("Control values must be finite numbers.")
    u = torch.stack([c.normalise(vals[:, j]) for j, c in enumerate(config.controls)], 1)
    bad = [c for j, c in enumerate(config.controls) if u[:, j].abs().max() > 1.1]
    if bad:
        c = bad[0]
        raise InputError(f"{c.name} must be within {c.low:g}..{c.high:g} ({c.unit or 'its units'}).")
    if u.shape[0] == 1 and n != 1:
        u = u.expand(n, -1)
    if u.shape[0] != n:
        raise InputError(f"Got control values for {u.shape[0]} latents but {n} latents to edit.")
    return u.contiguous()


@torch.inference_mode()
def rig_edit(rig: RigNet, ws: Tensor, controls: Mapping[str, float] | Tensor) -> Tensor:
    """Edit latents so the rendered faces show the requested controls.

    Args:
        rig: a RigNet (read-only; not mutated).
        ws: [N, num_ws, w_dim] latents on the rig's device.
        controls: the target value of every control in its own units: a dict by name (all names
            of `rig.config.controls`) or a tensor [C] / [N, C] in `rig.config.controls` order.
    Returns:
        edited ws [N, num_ws, w_dim], same dtype and device as `ws`; rows outside
        `rig.config.edit_rows` are returned unchanged.
    """
    targets = controls_tensor(rig.config, controls, ws.shape[0]).to(ws.device)
    p = next(rig.parameters())
    return rig(ws.to(p.dtype), targets).to(ws.dtype)


def default_controls(prediction, config: RigConfig, index: int = 0) -> dict[str, float]:
    """The slider values for one source: the estimator's reading of its image, by control name, in
    each control's units and clamped to its range. `prediction` is anything whose `factors[name]`
    is a [N] tensor in the factor's units, such as `shared.demo.predictor.Prediction`."""
    out = {}
    for c in config.controls:
        v = float(prediction.factors[c.name][index])
        out[c.name] = min(max(v, c.low), c.high)
    return out


# ---- files --------------------------------------------------------------------------------------
def save_rig(rig: RigNet, path: str | os.PathLike, *, training: Mapping | None = None,
             dtype: torch.dtype = torch.float32) -> Path:
    """Write `rig` as safetensors (floating tensors as `dtype`) with a JSON header: format version,
    arch, config and the training record. Written through a temporary file. Returns the path."""
    from safetensors.torch import save_file
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    header = {"format_version": FORMAT_VERSION, "arch": ARCH, "config": rig.config.to_dict(),
              "training": dict(training or {})}
    tensors = {k: (v.detach().to("cpu", dtype) if v.is_floating_point() else v.detach().cpu()).contiguous()
               for k, v in rig.state_dict().items()}
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, str(tmp), metadata={HEADER_KEY: json.dumps(header, sort_keys=True)})
    os.replace(tmp, path)
    return path


def read_rig_header(path: str | os.PathLike) -> dict:
    """The JSON header of a rig file (format_version, arch, config, training)."""
    return _read(Path(path))[1]


def _read(path: Path) -> tuple[dict[str, Tensor], dict]:
    from shared.loaders import read_headed_safetensors
    if not path.is_file():
        raise CheckpointError(f"No rig file at {path}; train one with `python -m training.rig.train`.")
    tensors, header = read_headed_safetensors(path, HEADER_KEY, what="rig", make="python -m training.rig.train",
                                              format_version=FORMAT_VERSION)
    if not isinstance(header, dict) or header.get("arch") != ARCH:
        raise CheckpointError(f"{path.name} holds a {header.get('arch')!r} model, not a {ARCH}.")
    return tensors, header


def load_rig(path: str | os.PathLike) -> RigNet:
    """Load a rig file: RigNet on the CPU, float32, eval mode, no gradients.

    Raises:
        CheckpointError: missing, foreign or damaged file, or weights that do not fit the header's
            config (one sentence)."""
    path = Path(path)
    tensors, header = _read(path)
    try:
        config = RigConfig.from_dict(header["config"])
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{path.name}: the rig header's config is malformed ({e}).") from e
    rig = RigNet(config)
    own = rig.state_dict()
    if set(own) != set(tensors) or any(own[k].shape != tensors[k].shape for k in own):
        raise CheckpointError(f"{path.name}: the weights do not fit the header's config "
                              f"({len(config.controls)} controls, rows {list(config.edit_rows)}).")
    rig.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in tensors.items()}, strict=True)
    if not torch.equal(rig.rows, torch.tensor(config.edit_rows)):
        raise CheckpointError(f"{path.name}: the stored rows do not match the header's config.")
    return rig.eval().requires_grad_(False)
