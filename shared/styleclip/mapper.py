"""StyleCLIP's latent mappers (Patashnik et al., ICCV 2021, orpatashnik/StyleCLIP@f87a47f7
`mapper/latent_mappers.py: LevelsMapper, SingleMapper`), their checkpoints, and the edit
w' = w + 0.1·M(w).

The mapper is three small MLPs on the rows of W+: rows 0-3 (coarse), 4-7 (medium) and 8-end
(fine); the same boundaries are used for generators with fewer rows (the demo generator has 10).
Each level is PixelNorm followed by `layers` × EqualLinear(w_dim, w_dim, lr_mul=0.01) with a fused
leaky ReLU (bias added first, slope 0.2, gain √2). Two quirks of the official code are kept because
official checkpoints were trained with them (and the parity vector pins them): PixelNorm
normalises over dim 1 of the [N, rows, w_dim] slice, i.e. across the *rows*, and the bias of the
fused leaky ReLU broadcasts over the last dim. A level switched off (official `no_coarse_mapper`,
`no_medium_mapper`, `no_fine_mapper`) outputs zeros for its rows. State-dict keys are the
official ones (`course_mapping` sic, `medium_mapping`, `fine_mapping`, `.mapping.{1..layers}`).

The second official architecture, `mapper_type='SingleMapper'`, is one such MLP over all rows of
W+ at once (so its PixelNorm spans every row); its keys are `mapping.mapping.{1..layers}.*`
(`mapper.mapping.mapping.*` in a full checkpoint). `MapperConfig.mapper_type` says which one.

Files: official checkpoints, `torch.save({'state_dict': {'mapper.*', 'decoder.*'}, 'opts'})`, are
read with `torch.load(weights_only=True)`; `opts` is normally `vars(argparse options)` (plain
values), and a checkpoint whose `opts` is an `argparse.Namespace` itself is read with only that
class allow-listed, nothing else. `decoder.*` is ignored. Our own files are safetensors with a JSON
header (`config`, `prompt`, `training`). Training lives in `training.styleclip.train_mapper`:

    python -m training.styleclip.train_mapper train --prompt "a person wearing glasses" --out mapper.safetensors
"""
from __future__ import annotations

import argparse
import json
import math
import os
import pickle
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from shared import hub, registry
from shared.errors import CheckpointError, InputError
from shared.loaders import file_format, read_headed_safetensors, torch_load_weights

__all__ = ["LEVELS", "MAPPER_TYPES", "LevelsMapper", "MapperConfig", "SingleMapper", "apply_mapper", "build_mapper",
           "companion_mappers", "demo_mappers", "edit_with_mapper", "load_mapper", "load_mapper_record", "mapper_from_checkpoint", "mapper_from_state_dict",
           "save_mapper"]

#: level name, official module name, first row, end row (None: to the last row)
LEVELS: tuple[tuple[str, str, int, int | None], ...] = (
    ("coarse", "course_mapping", 0, 4), ("medium", "medium_mapping", 4, 8), ("fine", "fine_mapping", 8, None))
OFFICIAL_STRENGTH = 0.1          # mapper/scripts/inference.py: w + 0.1 * mapper(w)
HEADER_KEY = "stylegan_hub_mapper"
FORMAT_VERSION = 1
_KEY = re.compile(r"^(course|medium|fine)_mapping\.mapping\.(\d+)\.(weight|bias)$")
_SINGLE_KEY = re.compile(r"^mapping\.mapping\.(\d+)\.(weight|bias)$")
MAPPER_TYPES = ("LevelsMapper", "SingleMapper")   # the official `--mapper_type` values


@dataclass(frozen=True)
class MapperConfig:
    """Shape of a mapper. The official LevelsMapper is `MapperConfig()` (512-d, 4 layers, 3 levels);
    the official SingleMapper is `MapperConfig(mapper_type="SingleMapper")` (levels then unused)."""
    w_dim: int = 512                                    # latent width
    layers: int = 4                                     # EqualLinear layers per level
    levels: tuple[str, ...] = ("coarse", "medium", "fine")   # levels that have a sub-mapper
    lr_mul: float = 0.01                                # EqualLinear learning-rate multiplier
    mapper_type: str = "LevelsMapper"                   # one of MAPPER_TYPES

    def __post_init__(self) -> None:
        if self.mapper_type not in MAPPER_TYPES:
            raise ValueError(f"mapper_type must be one of {MAPPER_TYPES}, got {self.mapper_type!r}")
        if self.mapper_type == "SingleMapper":
            object.__setattr__(self, "levels", ("coarse", "medium", "fine"))   # every row is mapped
        object.__setattr__(self, "levels", tuple(self.levels))
        unknown = set(self.levels) - {name for name, *_ in LEVELS}
        if unknown or not self.levels:
            raise ValueError(f"levels must be a non-empty subset of coarse, medium, fine; got {self.levels}")
        if int(self.w_dim) < 1 or int(self.layers) < 1 or not self.lr_mul > 0:
            raise ValueError(f"w_dim and layers must be >= 1 and lr_mul > 0; got {self}")

    def to_dict(self) -> dict:
        return {**asdict(self), "levels": list(self.levels)}

    @classmethod
    def from_dict(cls, d: Mapping) -> MapperConfig:
        known = {"w_dim", "layers", "levels", "lr_mul", "mapper_type"}
        return cls(**{k: (tuple(v) if k == "levels" else v) for k, v in d.items() if k in known})

    def official_opts(self) -> dict:
        """The official `no_*_mapper` flags of this config (a SingleMapper ignores them: all False)."""
        return {f"no_{name}_mapper": name not in self.levels for name, *_ in LEVELS}


def fused_leaky_relu(x: Tensor, bias: Tensor, slope: float = 0.2, gain: float = math.sqrt(2)) -> Tensor:
    """leaky_relu(x + bias) · gain with the bias broadcast over the last dim of x [..., C]."""
    return F.leaky_relu(x + bias, negative_slope=slope) * gain


class PixelNorm(nn.Module):
    """x / sqrt(mean(x², dim=1) + 1e-8). For the mapper's [N, rows, w_dim] slices dim 1 is the
    row axis: that is what the official mapper does (see the module docstring)."""

    def forward(self, x: Tensor) -> Tensor:
        return x * torch.rsqrt(x.square().mean(dim=1, keepdim=True) + 1e-8)


class EqualLinear(nn.Module):
    """rosinality's EqualLinear with `activation='fused_lrelu'`: the stored weight [out, in] and
    bias [out] are scaled at run time by lr_mul/√in and lr_mul (equalised learning rate)."""

    def __init__(self, in_dim: int, out_dim: int, lr_mul: float = 0.01):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(out_dim, in_dim))
        self.bias = nn.Parameter(torch.zeros(out_dim))
        self.lr_mul = float(lr_mul)
        self.scale = self.lr_mul / math.sqrt(in_dim)

    def forward(self, x: Tensor) -> Tensor:
        return fused_leaky_relu(F.linear(x, self.weight * self.scale), self.bias * self.lr_mul)


@torch.no_grad()
def _official_init(module: nn.Module, generator: torch.Generator) -> None:
    """rosinality's EqualLinear init for every layer of `module`: weight ~ N(0, 1) / lr_mul, bias 0."""
    for m in module.modules():
        if isinstance(m, EqualLinear):
            m.weight.copy_(torch.randn(m.weight.shape, generator=generator) / m.lr_mul)
            m.bias.zero_()


class _Level(nn.Module):
    """One level: `mapping` = Sequential(PixelNorm, EqualLinear × layers) (official key layout)."""

    def __init__(self, w_dim: int, layers: int, lr_mul: float):
        super().__init__()
        self.mapping = nn.Sequential(PixelNorm(), *[EqualLinear(w_dim, w_dim, lr_mul) for _ in range(layers)])

    def forward(self, x: Tensor) -> Tensor:
        return self.mapping(x)


class LevelsMapper(nn.Module):
    """StyleCLIP's LevelsMapper: ws [N, num_ws, w_dim] -> residual [N, num_ws, w_dim].

    Args:
        config:    MapperConfig (width, layers per level, which levels exist, lr_mul).
        generator: torch.Generator for the official initialisation (weights randn / lr_mul, biases 0);
                   None uses a fixed seed 0, so construction never touches the global RNG.
    """

    def __init__(self, config: MapperConfig = MapperConfig(), *, generator: torch.Generator | None = None):
        super().__init__()
        if config.mapper_type != "LevelsMapper":
            raise ValueError(f"LevelsMapper needs mapper_type 'LevelsMapper', got {config.mapper_type!r}")
        self.config = config
        for name, module_name, _, _ in LEVELS:
            if name in config.levels:
                setattr(self, module_name, _Level(config.w_dim, config.layers, config.lr_mul))
        self.reset_parameters(generator if generator is not None else torch.Generator().manual_seed(0))

    @property
    def w_dim(self) -> int:
        return self.config.w_dim

    def reset_parameters(self, generator: torch.Generator) -> None:
        """Official initialisation from `generator`: weight ~ N(0, 1) / lr_mul, bias = 0."""
        _official_init(self, generator)

    def forward(self, ws: Tensor) -> Tensor:
        if ws.ndim != 3 or ws.shape[2] != self.w_dim:
            raise InputError(f"The mapper needs latents [N, num_ws, {self.w_dim}], got {list(ws.shape)}.")
        parts = []
        for name, module_name, start, end in LEVELS:
            rows = ws[:, start:end]                                  # [N, n, w_dim]
            if name in self.config.levels and rows.shape[1] > 0:
                parts.append(getattr(self, module_name)(rows))
            else:
                parts.append(torch.zeros_like(rows))
        return torch.cat(parts, dim=1)


class SingleMapper(nn.Module):
    """StyleCLIP's SingleMapper: one PixelNorm + EqualLinear MLP over all rows, ws [N, num_ws, w_dim]
    -> residual [N, num_ws, w_dim]. `mapping` is the official `Mapper` (keys `mapping.mapping.<i>.*`).

    Args:
        config:    MapperConfig with mapper_type "SingleMapper".
        generator: torch.Generator for the official initialisation; None uses a fixed seed 0.
    """

    def __init__(self, config: MapperConfig = MapperConfig(mapper_type="SingleMapper"), *,
                 generator: torch.Generator | None = None):
        super().__init__()
        if config.mapper_type != "SingleMapper":
            raise ValueError(f"SingleMapper needs mapper_type 'SingleMapper', got {config.mapper_type!r}")
        self.config = config
        self.mapping = _Level(config.w_dim, config.layers, config.lr_mul)
        _official_init(self, generator if generator is not None else torch.Generator().manual_seed(0))

    @property
    def w_dim(self) -> int:
        return self.config.w_dim

    def forward(self, ws: Tensor) -> Tensor:
        if ws.ndim != 3 or ws.shape[2] != self.w_dim:
            raise InputError(f"The mapper needs latents [N, num_ws, {self.w_dim}], got {list(ws.shape)}.")
        return self.mapping(ws)


def build_mapper(config: MapperConfig, *, generator: torch.Generator | None = None) -> nn.Module:
    """The mapper class `config.mapper_type` names (LevelsMapper or SingleMapper), initialised."""
    cls = SingleMapper if config.mapper_type == "SingleMapper" else LevelsMapper
    return cls(config, generator=generator)


def apply_mapper(mapper: nn.Module, ws: Tensor, strength: float = OFFICIAL_STRENGTH) -> Tensor:
    """The mapper edit ws + strength · mapper(ws) (official inference: strength 0.1).

    Args:
        ws: [N, num_ws, w_dim] on the mapper's device. Returns the edited ws, same shape.
    """
    return ws + float(strength) * mapper(ws)


@torch.no_grad()
def edit_with_mapper(G: nn.Module, mapper: nn.Module, ws: Tensor,
                     strength: float = OFFICIAL_STRENGTH) -> tuple[Tensor, Tensor]:
    """Edit source latents with a mapper and render them.

    Args:
        G:        generator with `num_ws`, `w_dim` and `synthesis(ws, noise_mode=...)`.
        mapper:   a LevelsMapper for G's w_dim (on any device; it is used where its weights are).
        ws:       source latents [N, G.num_ws, G.w_dim].
        strength: multiplier of the mapper's residual (0.1 = the paper's; 0 = no edit).
    Returns:
        images [N, 3, H, W] float32 in [-1, 1] on the CPU, and the edited ws [N, num_ws, w_dim] on the CPU.
    """
    ws = torch.as_tensor(ws, dtype=torch.float32)
    if ws.ndim != 3 or tuple(ws.shape[1:]) != (G.num_ws, G.w_dim):
        raise InputError(f"The latent must be [N, {G.num_ws}, {G.w_dim}], got {list(ws.shape)}.")
    if getattr(mapper, "w_dim", G.w_dim) != G.w_dim:
        raise InputError(f"That mapper works on {mapper.w_dim}-dimensional latents; this generator's are {G.w_dim}.")
    if not math.isfinite(float(strength)):
        raise InputError(f"The strength must be a finite number, got {strength}.")
    mapper_dev = next(mapper.parameters()).device
    edited = apply_mapper(mapper, ws.to(mapper_dev), strength)
    g_dev = next(G.parameters()).device
    images = G.synthesis(edited.to(g_dev), noise_mode="const").float().clamp(-1, 1)
    return images.cpu(), edited.cpu()


# ---- state dicts and official checkpoints ----------------------------------------------------------
def _config_from_keys(sd: Mapping[str, Tensor], name: str) -> MapperConfig:
    single = any(_SINGLE_KEY.match(k) for k in sd)
    layers: dict[str, set[int]] = {}
    w_dim = None
    for key, value in sd.items():
        m = _SINGLE_KEY.match(key) if single else _KEY.match(key)
        if m is None:
            raise CheckpointError(
                f"{name}: unexpected mapper weight {key!r} (a " + (
                    "SingleMapper has mapping.mapping.<i>.weight/bias only)." if single else
                    "LevelsMapper has course_/medium_/fine_mapping.mapping.<i>.weight/bias)."))
        groups = ("all",) + m.groups() if single else m.groups()
        level = "coarse" if groups[0] == "course" else groups[0]
        layers.setdefault(level, set()).add(int(groups[1]))
        if groups[2] == "weight":
            if value.ndim != 2 or value.shape[0] != value.shape[1]:
                raise CheckpointError(f"{name}: {key} has shape {list(value.shape)}; the mapper's layers are square.")
            w_dim = w_dim or int(value.shape[1])
    if not layers or w_dim is None:
        raise CheckpointError(f"{name} holds no StyleCLIP LevelsMapper or SingleMapper weights.")
    counts = {len(v) for v in layers.values()}
    if len(counts) != 1 or any(v != set(range(1, len(v) + 1)) for v in layers.values()):
        raise CheckpointError(f"{name}: the levels have different or gapped layer lists {sorted(layers.items())}.")
    if single:
        return MapperConfig(w_dim=w_dim, layers=counts.pop(), mapper_type="SingleMapper")
    return MapperConfig(w_dim=w_dim, layers=counts.pop(), levels=tuple(n for n, *_ in LEVELS if n in layers))


def mapper_from_state_dict(sd: Mapping[str, Tensor], opts: Mapping | None = None, *,
                           name: str = "the checkpoint") -> nn.Module:
    """Build a LevelsMapper or SingleMapper from official state-dict keys (with or without the
    `mapper.` prefix of a full StyleCLIPMapper; `decoder.*` and other modules are ignored). The
    type, width, depth and levels are read off the keys; `opts` (official options), when given,
    must agree with them (`mapper_type`, and the `no_*_mapper` flags for a LevelsMapper)."""
    if any(k.startswith("mapper.") for k in sd):
        sd = {k[len("mapper."):]: v for k, v in sd.items() if k.startswith("mapper.")}
    else:
        sd = {k: v for k, v in sd.items() if _KEY.match(k) or not k.startswith(("decoder.", "latent_avg"))}
    config = _config_from_keys(sd, name)
    if opts:
        opts_type = opts.get("mapper_type", "LevelsMapper")
        if opts_type not in MAPPER_TYPES:
            raise CheckpointError(f"{name}: opts.mapper_type is {opts_type!r}; supported: {', '.join(MAPPER_TYPES)}.")
        if opts_type != config.mapper_type:
            raise CheckpointError(f"{name}: opts.mapper_type is {opts_type!r} but the weights are a "
                                  f"{config.mapper_type}.")
        for flag, off in (config.official_opts().items() if config.mapper_type == "LevelsMapper" else ()):
            if flag in opts and bool(opts[flag]) != off:
                raise CheckpointError(f"{name}: opts.{flag}={opts[flag]} but the weights "
                                      f"{'lack' if off else 'have'} that level.")
    mapper = build_mapper(config)
    own = mapper.state_dict()
    missing = sorted(set(own) - set(sd))
    if missing:
        raise CheckpointError(f"{name}: the {config.mapper_type} weights lack {missing[0]}"
                              f"{f' and {len(missing) - 1} more' if len(missing) > 1 else ''}; the file is incomplete.")
    for key, value in sd.items():
        if tuple(value.shape) != tuple(own[key].shape):
            raise CheckpointError(f"{name}: {key} has shape {list(value.shape)}, expected {list(own[key].shape)}.")
    mapper.load_state_dict({k: v.float() for k, v in sd.items()}, strict=True)
    return mapper.eval()


def _plain(value):
    """JSON-able copy of an opts value (anything else becomes its repr)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    return repr(value)


def mapper_from_checkpoint(ckpt: Mapping, name: str = "the checkpoint") -> tuple[nn.Module, dict]:
    """An official checkpoint object `{'state_dict', 'opts'}` -> (mapper, meta). meta holds the
    prompt (`opts['description']`), the official level flags and the plain opts."""
    if not isinstance(ckpt, Mapping) or not isinstance(ckpt.get("state_dict"), Mapping):
        raise CheckpointError(f"{name} is not a StyleCLIP mapper checkpoint (no 'state_dict').")
    opts = ckpt.get("opts") or {}
    if isinstance(opts, argparse.Namespace):
        opts = vars(opts)
    if not isinstance(opts, Mapping):
        raise CheckpointError(f"{name}: 'opts' is a {type(opts).__name__}, not a dict of options.")
    mapper = mapper_from_state_dict(ckpt["state_dict"], opts, name=name)
    meta = {"format": "styleclip-mapper-pt", "prompt": opts.get("description") or "",
            "mapper_type": mapper.config.mapper_type, "config": mapper.config.to_dict(), **mapper.config.official_opts(), "opts": _plain(dict(opts))}
    return mapper, meta


def _torch_load_mapper(path: Path, kind: str):
    try:
        return torch_load_weights(path, kind)
    except CheckpointError as e:
        if not isinstance(e.__cause__, pickle.UnpicklingError) or "Namespace" not in str(e.__cause__):
            raise
    # Older scripts save opts as the argparse.Namespace itself: allow that one class (it only holds
    # attributes), nothing else.
    with torch.serialization.safe_globals([argparse.Namespace]):
        return torch_load_weights(path, kind)


# ---- our own files ---------------------------------------------------------------------------------
def save_mapper(mapper: nn.Module, path: str | os.PathLike, *, prompt: str, training: Mapping | None = None,
                extra: Mapping | None = None, dtype: torch.dtype = torch.float32) -> Path:
    """Write `mapper` as safetensors (tensors as `dtype`) with a JSON header: format version, arch,
    config, prompt, training record and `extra`. Written through a temporary file. Returns the path."""
    from safetensors.torch import save_file
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arch = "styleclip-single-mapper" if mapper.config.mapper_type == "SingleMapper" else "styleclip-levels-mapper"
    header = {"format_version": FORMAT_VERSION, "arch": arch,
              "config": mapper.config.to_dict(), "prompt": str(prompt), "training": dict(training or {}),
              **dict(extra or {})}
    tensors = {k: v.detach().to("cpu", dtype).contiguous() for k, v in mapper.state_dict().items()}
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, str(tmp), metadata={HEADER_KEY: json.dumps(header, sort_keys=True)})
    os.replace(tmp, path)
    return path


def _load_ours(path: Path) -> tuple[nn.Module, dict]:
    tensors, header = read_headed_safetensors(path, HEADER_KEY, what="mapper",
                                              make="python -m training.styleclip.train_mapper train",
                                              format_version=FORMAT_VERSION)
    try:
        config = MapperConfig.from_dict(header["config"])
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{path.name}: the mapper header is malformed ({e}).") from e
    mapper = mapper_from_state_dict(tensors, {**config.official_opts(), "mapper_type": config.mapper_type},
                                    name=path.name)
    if mapper.config != config:
        raise CheckpointError(f"{path.name}: the weights do not match the header's config {config}.")
    return mapper, {"format": "safetensors", **header}


def load_mapper(path_or_card) -> tuple[nn.Module, dict]:
    """Load a mapper file: an official StyleCLIP `.pt` checkpoint or our safetensors file.

    Args:
        path_or_card: a path, or a registry record of format 'styleclip-mapper-pt' whose file is on
                      this machine.
    Returns:
        (LevelsMapper or SingleMapper in eval mode, float32, on the CPU; meta dict with at least
        'prompt' and 'config').
    Raises:
        CheckpointError: missing, corrupt or foreign file (one sentence).
    """
    if hasattr(path_or_card, "sources"):
        path = hub.cached_path(path_or_card)
        if path is None:
            raise CheckpointError(f"{path_or_card.id} is not on this machine; get it from "
                                  f"{path_or_card.manual_url} and set {path_or_card.env_var} to its path.")
    else:
        path = Path(path_or_card)
    kind = file_format(path)
    if kind == "safetensors":
        return _load_ours(path)
    if kind in ("zip", "legacy-torch"):
        mapper, meta = mapper_from_checkpoint(_torch_load_mapper(path, kind), path.name)
        if not meta["prompt"] and hasattr(path_or_card, "arch_config"):
            meta["prompt"] = (path_or_card.arch_config or {}).get("prompt", "")
        return mapper, meta
    raise CheckpointError(f"{path.name} is not a mapper file (found {kind}); expected a StyleCLIP .pt "
                          "checkpoint or a .safetensors mapper from this hub.")


def load_mapper_record(card, path: Path) -> tuple[nn.Module, dict]:
    """The model cache's loader for mapper records: `load_mapper(path)`, with the record's prompt
    (`arch_config['prompt']`) where the file names none (official checkpoints without 'description')."""
    mapper, meta = load_mapper(path)
    if not meta.get("prompt"):
        meta["prompt"] = (card.arch_config or {}).get("prompt", "")
    return mapper, meta


def companion_mappers(model_id: str | None) -> dict[str, str]:
    """The mapper records made for `model_id` (its "mappers" companions), as {prompt: record id},
    in the registry's order (file-name order for the demo world's)."""
    out: dict[str, str] = {}
    for mapper_id in registry.companions(model_id, "mappers"):
        out[(registry.get(mapper_id).arch_config or {}).get("prompt", mapper_id)] = mapper_id
    return out


def demo_mappers() -> dict[str, Path]:
    """The mappers shipped for the demo generator (its "mappers" companion records, the bundle's
    `mapper_*.safetensors`), by the prompt each was trained for, in file-name order."""
    out: dict[str, Path] = {}
    for prompt, mapper_id in companion_mappers(registry.DEFAULT_GENERATOR_ID).items():
        path = hub.cached_path(registry.get(mapper_id))
        if path is not None:
            out[prompt] = path
    return out
