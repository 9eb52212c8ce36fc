"""The record types of the model registry: one frozen `ModelCard` per model, with its sources.

Modelled on timm's `PretrainedCfg` (huggingface/pytorch-image-models `_registry.py`): a flat,
declarative description of where a weight file lives (Hub repo + file + revision, fallback repos,
a local file, or weights made in code), how to verify it (sha256, size), what it is (family,
architecture and its config, file format, tasks), under which licence it may be used, and which
records were made for it (`companions`: a generator's encoder, predictor, CLIP, flow, mappers...).
Nothing here touches the network or imports torch.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Union

__all__ = [
    "ARCHS", "COMPANION_KINDS", "FORMATS", "PLURAL_COMPANIONS", "TASKS", "BuiltinSource", "HubSource",
    "LocalSource", "ModelCard", "Source",
    "env_var_for",
]

# File formats the loaders understand (`format` field).
FORMATS = frozenset({
    "rosinality-pt",          # torch.save({'g_ema': state_dict, 'latent_avg': [w_dim]})
    "nvlabs-pkl",             # NVlabs persistence pickle ({'G_ema': ..., ...})
    "tf-pkl",                 # NVlabs TensorFlow pickle: (G, D, Gs) dnnlib.tflib Networks (stylegan, stylegan2)
    "psp-pt",                 # pSp / e4e / ReStyle: {'state_dict', 'opts', 'latent_avg'}
    "safetensors",            # our own format: safetensors weights + JSON config
    "builtin",                # weights made deterministically in code (no file)
    "dlib-dat",               # dlib serialised shape predictor
    "open-clip-safetensors",  # open_clip state dict in safetensors
    "timm-safetensors",       # timm state dict in safetensors
    "torch-state-dict",       # a plain torch.save(state_dict) file (read with weights_only=True)
    "latent-direction",       # a W / W+ direction: .npy [1, w_dim] or [1, num_ws, w_dim], or a torch tensor
    "styleclip-mapper-pt",    # StyleCLIP mapper: torch.save({'state_dict': mapper.* (+decoder.*), 'opts'})
    "npy",                    # a plain NumPy array file (StyleCLIP's fs3.npy relevance matrix)
    "numpy-pickle",           # a pickle of NumPy arrays only (StyleCLIP's S_mean_std), read with a restricted unpickler
    "posewithstyle-pt",       # Pose with Style: torch.save({'g_ema': ...} or {'g': ...}), read with weights_only=True
})

# Architectures a record may name (`arch` field).
ARCHS = frozenset({
    "stylegan1", "stylegan2", "stylegan3", "stylenerf", "eg3d",
    "e4e", "psp", "restyle-psp", "restyle-e4e",
    "dlib-shape-predictor", "vgg16", "clip-vit", "open-clip", "arcface-ir-se",
    "styleflow-cnf", "latent-direction",
    "styleclip-levels-mapper", "styleclip-single-mapper", "styleclip-relevance", "stylespace-stats",
    "demo-predictor", "direction-set",
    "posewithstyle", "posewithstyle-ccm", "densepose-uv-lookup", "densepose-uv-parts",
    "rignet",
})

# Companion kinds a generator record may name (`companions` field): the records made for it.
COMPANION_KINDS = frozenset({
    "encoder",           # an encoder trained for this generator (inversion)
    "predictor",         # an attribute / part predictor of its images (the demo world's judge)
    "clip",              # the CLIP its text edits use by default
    "flow",              # a StyleFlow prior over its W
    "directions",        # a fitted set of named W directions
    "mappers",           # StyleCLIP latent mappers trained for it (several)
    "relevance",         # a StyleCLIP channel relevance matrix made for it
    "stylespace-stats",  # StyleSpace channel statistics measured on it
    "ccm",               # the coordinate-completion model a Pose with Style generator needs
    "uv-lookup",         # the DensePose UV lookup table its IUV inputs are read with
    "uv-parts",          # the UV atlas's part map (Pose with Style garment transfer)
})
PLURAL_COMPANIONS = frozenset({"mappers"})

# Task tags (`tasks` field); the tabs ask the registry for models by these.
TASKS = frozenset({
    "generation", "inversion", "mixing", "local-editing", "reposing", "3d-rendering", "text-editing",
    "encoding", "face-landmarks", "perceptual-loss", "text-image-embedding", "face-identity",
    "attribute-prediction",
})

_HEX40 = re.compile(r"[0-9a-f]{40}")
_HEX64 = re.compile(r"[0-9a-f]{64}")
_ID = re.compile(r"[a-z0-9][a-z0-9.\-]*[a-z0-9]")


def env_var_for(model_id: str) -> str:
    """Name of the environment variable that points a model at a local file.

    `stylegan3-t-ffhq-1024` -> `HUB_MODEL_PATH_STYLEGAN3_T_FFHQ_1024`.
    """
    return "HUB_MODEL_PATH_" + re.sub(r"[^A-Za-z0-9]", "_", model_id).upper()


@dataclass(frozen=True)
class HubSource:
    """A file in a Hugging Face Hub repository, optionally pinned to a commit."""
    repo_id: str                 # "owner/name"
    filename: str                # path inside the repo, "models/x.pkl"
    revision: str | None         # 40-hex commit (pinned) or None for the default branch
    repo_type: str = "model"     # "model" | "dataset" | "space"

    def __post_init__(self) -> None:
        if self.repo_id.count("/") != 1:
            raise ValueError(f"repo_id must look like 'owner/name', got {self.repo_id!r}")
        if self.repo_type not in ("model", "dataset", "space"):
            raise ValueError(f"repo_type must be model, dataset or space, got {self.repo_type!r}")

    @property
    def pinned(self) -> bool:
        return self.revision is not None and _HEX40.fullmatch(self.revision) is not None

    def repo_url(self, endpoint: str = "https://huggingface.co") -> str:
        """Web page of the repository (for messages)."""
        prefix = "" if self.repo_type == "model" else f"{self.repo_type}s/"
        return f"{endpoint.rstrip('/')}/{prefix}{self.repo_id}"

    def url(self, endpoint: str = "https://huggingface.co") -> str:
        """Direct download URL of the file (for messages)."""
        return f"{self.repo_url(endpoint)}/resolve/{self.revision or 'main'}/{self.filename}"

    def __str__(self) -> str:
        rev = f"@{self.revision[:7]}" if self.revision else ""
        return f"hf:{self.repo_id}/{self.filename}{rev}"


@dataclass(frozen=True)
class LocalSource:
    """A file on this machine. May hold `~`, `$VARS`, and `$HUB_WEIGHTS_DIR` (defaults to
    `~/.cache/stylegan-hub/weights`); relative paths are relative to the repository root."""
    path: str

    def __str__(self) -> str:
        return f"local:{self.path}"


@dataclass(frozen=True)
class BuiltinSource:
    """Weights made deterministically in code from a seed (untrained; no file)."""
    seed: int

    def __str__(self) -> str:
        return f"builtin:seed={self.seed}"


Source = Union[HubSource, LocalSource, BuiltinSource]


@dataclass(frozen=True)
class ModelCard:
    """One model: what it is, where its weights come from, how to verify them, its licence."""
    id: str                          # "<arch>-<dataset>-<res>[-variant]", unique
    family: str                      # registry file it lives in: stylegan2, encoders, ...
    arch: str                        # one of ARCHS
    arch_config: dict | None = field(hash=False)  # architecture config (JSON-like, read-only)
    format: str                      # one of FORMATS
    tasks: tuple[str, ...]           # subset of TASKS
    sources: tuple[Source, ...]      # tried in order
    sha256: str | None               # 64-hex; None = record the first download's hash
    size: int | None                 # bytes, when known
    license: str                     # shown next to the model everywhere
    paper: str                       # citation
    official_repo: str               # URL of the official code
    resolution: int | None           # output resolution in px (generators)
    description: str                 # one or two sentences for the Models tab
    untrained: bool = False          # random weights: the UI must say so
    manual_url: str | None = None    # where a user gets the file by hand (NGC, Drive, ...)
    # companion kind -> record id (a tuple of ids for the plural kinds, `PLURAL_COMPANIONS`): the
    # records made for this one, e.g. {"encoder": ..., "predictor": ..., "mappers": (...)}
    companions: dict = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        if not _ID.fullmatch(self.id):
            raise ValueError(f"model id must be lower-case letters, digits, '-' or '.', got {self.id!r}")
        if self.format not in FORMATS:
            raise ValueError(f"{self.id}: unknown format {self.format!r}")
        if self.arch not in ARCHS:
            raise ValueError(f"{self.id}: unknown arch {self.arch!r}")
        object.__setattr__(self, "tasks", tuple(self.tasks))
        object.__setattr__(self, "sources", tuple(self.sources))
        unknown = set(self.tasks) - TASKS
        if unknown:
            raise ValueError(f"{self.id}: unknown tasks {sorted(unknown)}")
        if not self.sources:
            raise ValueError(f"{self.id}: a record needs at least one source")
        if self.sha256 is not None and not _HEX64.fullmatch(self.sha256):
            raise ValueError(f"{self.id}: sha256 must be 64 lower-case hex digits")
        if (self.format == "builtin") != any(isinstance(s, BuiltinSource) for s in self.sources):
            raise ValueError(f"{self.id}: format 'builtin' goes with a BuiltinSource and only with it")
        if not self.license.strip():
            raise ValueError(f"{self.id}: licence missing")
        companions = {}
        for kind, value in dict(self.companions).items():
            if kind not in COMPANION_KINDS:
                raise ValueError(f"{self.id}: unknown companion kind {kind!r}")
            plural = kind in PLURAL_COMPANIONS
            if plural != isinstance(value, (tuple, list)):
                raise ValueError(f"{self.id}: companion {kind!r} takes "
                                 f"{'a tuple of record ids' if plural else 'one record id'}")
            companions[kind] = tuple(value) if plural else value
        object.__setattr__(self, "companions", companions)

    @property
    def hub_sources(self) -> tuple[HubSource, ...]:
        return tuple(s for s in self.sources if isinstance(s, HubSource))

    @property
    def local_sources(self) -> tuple[LocalSource, ...]:
        return tuple(s for s in self.sources if isinstance(s, LocalSource))

    @property
    def builtin(self) -> BuiltinSource | None:
        return next((s for s in self.sources if isinstance(s, BuiltinSource)), None)

    @property
    def env_var(self) -> str:
        """Environment variable that overrides every source with a local file."""
        return env_var_for(self.id)

    @property
    def filename(self) -> str | None:
        """Base name of the weights file (for messages), None for built-in weights."""
        for s in self.sources:
            if isinstance(s, HubSource):
                return s.filename.rsplit("/", 1)[-1]
            if isinstance(s, LocalSource):
                return s.path.replace("\\", "/").rsplit("/", 1)[-1]
        return None
