"""Several inversion methods on one photo, side by side: preparation, runs, scores and latent files.

What the Inversion tab does, as pure functions (no gradio here): align or centre-crop the photo to
the generator's resolution (`prepare_target`, FFHQ alignment of NVlabs/ffhq-dataset through
`shared.alignment`), run any set of methods (Image2StyleGAN W / W+ optimisation, Abdal et al. 2019;
W+ and noise, Image2StyleGAN++, Abdal et al. 2020; pSp, e4e, ReStyle encoders; the hybrid; PTI,
Roich et al. 2022) through one loop (`iter_methods`, yielding each method's `MethodRun` as soon as it
finishes, so a UI can show partial results), score each reconstruction (PSNR, a perceptual distance
named by the loss actually used, wall time), and save or read a latent as a `.pt` file.

PTI's tuned generator copy is *not* kept: `iter_methods` drops it from the result right after the
reconstruction is scored, so only the pivot latent survives (memory bounded per request). Editing
that latent with the shared generator gives the pivot's image, not PTI's tuned reconstruction.
"""
from __future__ import annotations

import functools
import os
import pickle
import struct
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from shared import hub, registry
from shared.alignment import AlignedFace, ImageSource, align_face, center_crop
from shared.demo.predictor import PredictorFeatures
from shared.errors import InputError
from shared.inversion.encoder import encode, encode_then_optimize
from shared.inversion.identity import IdentityModel
from shared.inversion.losses import PerceptualLoss, perceptual_loss, psnr
from shared.inversion.optimize import (NoiseOptions, OptimizeOptions, WStats, compute_w_stats, optimize_latent,
                                       optimize_wplus_noise)
from shared.inversion.pti import PTIOptions, pivotal_tuning
from shared.inversion.result import InversionResult, Progress, ShouldStop
from shared.model_cache import ModelCache, default_cache

__all__ = [
    "ALIGN_MODES", "CompareOptions", "ENCODER_RECORDS", "LATENT_FILE_KEYS", "METHOD_LABELS", "METHODS", "MethodRun",
    "check_latent", "default_identity", "default_perceptual", "identity_note", "encoder_availability",
    "encoder_records_for", "iter_methods", "load_encoders",
    "load_latent_file", "prepare_target", "run_methods", "runs_summary", "save_latent_file",
]

# Method keys in the order the UI lists them, and their labels.
METHOD_LABELS: dict[str, str] = {
    "w": "W optimisation (Image2StyleGAN)",
    "w+": "W+ optimisation (Image2StyleGAN)",
    "w+n": "W+ + noise (Image2StyleGAN++)",
    "psp": "pSp encoder",
    "e4e": "e4e encoder",
    "restyle_psp": "ReStyle (pSp)",
    "restyle_e4e": "ReStyle (e4e)",
    "hybrid": "Hybrid (encoder + W+ optimisation)",
    "pti": "PTI (pivotal tuning)",
}
METHODS = tuple(METHOD_LABELS)
ENCODER_RECORDS: dict[str, str] = {"psp": "psp-ffhq-encode", "e4e": "e4e-ffhq-encode",
                                   "restyle_psp": "restyle-psp-ffhq-encode", "restyle_e4e": "restyle-e4e-ffhq-encode"}
HYBRID_ENCODERS = ("e4e", "psp", "restyle_e4e", "restyle_psp")  # the hybrid uses the first one available
ALIGN_MODES = ("ffhq", "ffhq-u", "center")
LATENT_FILE_KEYS = ("ws", "model_id", "method")
MAX_STEPS = 5000
MAX_RESTYLE_ITERATIONS = 20


@dataclass(frozen=True)
class CompareOptions:
    """Per-method settings of one comparison (defaults small enough for a CPU).

    steps:              optimisation steps of W, W+, W+ + noise (phase 1), the hybrid and PTI's pivot.
    lr:                 peak learning rate of W / W+ / W+ + noise (the hybrid and PTI's pivot keep
                        their published 0.01).
    noise_steps:        Image2StyleGAN++ noise-map steps (phase 2).
    pti_steps:          PTI generator-tuning steps.
    restyle_iterations: ReStyle iterations (and those of a ReStyle encoder used by the hybrid).
    seed:               seed of the latent noise and PTI's locality samples.
    """
    steps: int = 100
    lr: float = 0.1
    noise_steps: int = 50
    pti_steps: int = 50
    restyle_iterations: int = 5
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("steps", "noise_steps", "pti_steps"):
            value = getattr(self, name)
            if not 1 <= value <= MAX_STEPS:
                raise InputError(f"{name.replace('_', ' ').capitalize()} must be between 1 and {MAX_STEPS}, "
                                 f"got {value}.")
        if not 0 < self.lr <= 1:
            raise InputError(f"The learning rate must be above 0 and at most 1, got {self.lr}.")
        if not 1 <= self.restyle_iterations <= MAX_RESTYLE_ITERATIONS:
            raise InputError(f"ReStyle iterations must be between 1 and {MAX_RESTYLE_ITERATIONS}, "
                             f"got {self.restyle_iterations}.")


@dataclass(frozen=True, eq=False)
class MethodRun:
    """One method's outcome with its scores (everything on the CPU).

    psnr:            dB against the target; perceptual: the distance of `perceptual_name`
                     (LPIPS when its VGG16 weights are here, else the named fallback); seconds:
                     the method's wall time (model loading excluded); identity: cosine similarity
                     of ArcFace embeddings of reconstruction and target (None without the
                     `arcface-ir-se50` weights).
    """
    key: str
    label: str
    result: InversionResult
    psnr: float
    perceptual: float | None
    perceptual_name: str
    seconds: float
    identity: float | None = None

    def caption(self) -> str:
        """'W+ optimisation · PSNR 21.3 dB · lpips-vgg16 0.412 · ID 0.83 · 3.2 s'."""
        parts = [self.label, f"PSNR {self.psnr:.1f} dB"]
        if self.perceptual is not None:
            parts.append(f"{self.perceptual_name} {self.perceptual:.3f}")
        if self.identity is not None:
            parts.append(f"ID {self.identity:.2f}")
        parts.append(f"{self.seconds:.1f} s")
        return " · ".join(parts)


# ---- preparation ---------------------------------------------------------------------------------
def prepare_target(image: ImageSource, mode: str, size: int) -> AlignedFace:
    """The photo as the generator sees it: FFHQ-aligned ('ffhq'), FFHQ-U-aligned ('ffhq-u', no
    rotation) or centre-cropped ('center'), at `size` px. Raises AlignmentError (a sentence)."""
    if mode not in ALIGN_MODES:
        raise InputError(f"Alignment must be one of {', '.join(ALIGN_MODES)}, got {mode!r}.")
    if mode == "center":
        return center_crop(image, size)
    return align_face(image, output_size=size, rotate=mode == "ffhq")


def _demo_features(models: ModelCache, device: torch.device) -> nn.Module | None:
    """The demo world's predictor as a feature extractor, or None when the registry lists none."""
    predictor_id = registry.companion(registry.DEFAULT_GENERATOR_ID, "predictor")
    if predictor_id is None:
        return None
    return PredictorFeatures(models.get(predictor_id, device=device))


def default_perceptual(device: torch.device | str = "cpu", *, models: ModelCache | None = None) -> PerceptualLoss:
    """The hub's perceptual loss on `device`, from the model cache (`models`, default the process's;
    built once, read-only, shared by every request): LPIPS-VGG16 when the `lpips-vgg16` record's
    weights are on this machine; offline, the demo world's predictor features
    ('features:demo-predictor', shipped in the repository); only without those, LPIPS' heads over a
    seeded random VGG trunk ('lpips-vgg16-random-trunk')."""
    models = models or default_cache()
    device = torch.device(device)
    if hub.cached_path(registry.get("lpips-vgg16")) is not None:
        return models.get("lpips-vgg16", device=device)

    def build() -> PerceptualLoss:
        loss = perceptual_loss(None, fallback=_demo_features(models, device), fallback_name="demo-predictor",
                               generator=torch.Generator().manual_seed(0))
        return loss.to(device).eval().requires_grad_(False)

    return models.derived.get_or_build(("perceptual-offline", "lpips-vgg16", str(device)), build)


def default_identity(device: torch.device | str = "cpu", *, models: ModelCache | None = None) -> IdentityModel | None:
    """ArcFace IR-SE50 from the `arcface-ir-se50` record when its file is on this machine (a local
    file: `HUB_MODEL_PATH_ARCFACE_IR_SE50` or `$HUB_WEIGHTS_DIR/model_ir_se50.pth`), else None.
    From the model cache (`models`, default the process's): loaded once per device; read-only.
    Raises CheckpointError for a wrong file."""
    card = registry.get("arcface-ir-se50")
    try:
        path = hub.cached_path(card)
    except hub.LocalFileMissing:  # the variable names a file that is not there: identity_note says what to set
        return None
    return None if path is None else (models or default_cache()).get(card.id, device=device)


def identity_note(identity: IdentityModel | None) -> str:
    """One sentence for the UI: which identity network scores the runs, or how to get one."""
    if identity is not None:
        return f"Identity similarity: **{identity.name}** (cosine of face embeddings; 1 = same person)."
    card = registry.get("arcface-ir-se50")
    return (f"Identity similarity is off: the ArcFace IR-SE50 weights (`{card.local_sources[0].path}`) are "
            f"not on this machine; set `{card.env_var}` to your `model_ir_se50.pth` to turn it on.")


def encoder_records_for(model_id: str | None) -> dict[str, str]:
    """Method key -> encoder record for a generator: the encoders trained for it when the registry
    pairs some with it (its "encoder" companion: the demo world's e4e), else the official FFHQ encoders."""
    return dict(registry.PAIRED_ENCODERS.get(model_id or "", ENCODER_RECORDS))


def encoder_availability(model_id: str | None = None) -> dict[str, str | None]:
    """For each encoder method (and 'hybrid'): None when weights trained for `model_id`'s generator
    (None: the FFHQ generators) are on this machine, else why not, as a sentence. Never touches
    the network."""
    records = encoder_records_for(model_id)
    out: dict[str, str | None] = {}
    for key in ENCODER_RECORDS:
        record = records.get(key)
        if record is None:
            out[key] = (f"No {METHOD_LABELS[key].removesuffix(' encoder')} encoder is trained for {model_id}; "
                        f"choose another method.")
            continue
        card = registry.get(record)
        try:
            found = hub.cached_path(card)
        except hub.HubError:
            found = None
        out[key] = None if found is not None else (
            f"{METHOD_LABELS[key]} needs the weights of {record}; download them in the Models tab"
            + (f" or get {card.filename} by hand ({card.manual_url})." if card.manual_url else "."))
    out["hybrid"] = (None if any(out[k] is None for k in HYBRID_ENCODERS)
                     else "The hybrid needs one encoder's weights (e4e, pSp or ReStyle); none is on this machine.")
    return out


def load_encoders(methods: Sequence[str], model_id: str | None, *,
                  models: ModelCache | None = None) -> dict[str, Any]:
    """EncoderCheckpoints, from the model cache (`models`, default the process's), of the encoder
    methods asked for (and the hybrid's) whose weights, trained for `model_id`'s generator, are on
    this machine (`encoder_availability`), by method key. Never touches the network."""
    models = models or default_cache()
    wanted = set(methods) & set(ENCODER_RECORDS)
    if "hybrid" in methods:
        wanted |= set(ENCODER_RECORDS)
    available = encoder_availability(model_id)
    records = encoder_records_for(model_id)
    return {key: models.get(records[key]) for key in sorted(wanted) if available.get(key) is None}


# ---- runs ------------------------------------------------------------------------------------------
def _check_methods(methods: Sequence[str], encoders: Mapping[str, Any]) -> list[str]:
    keys = list(dict.fromkeys(methods))
    if not keys:
        raise InputError("Pick at least one inversion method.")
    for key in keys:
        if key not in METHOD_LABELS:
            raise InputError(f"Unknown inversion method {key!r}; choose from {', '.join(METHODS)}.")
        if key in ENCODER_RECORDS and key not in encoders:
            raise InputError(f"{METHOD_LABELS[key]} cannot run: its encoder weights ({ENCODER_RECORDS[key]}) "
                             f"are not loaded on this machine.")
        if key == "hybrid" and not any(k in encoders for k in HYBRID_ENCODERS):
            raise InputError("The hybrid method needs an encoder (e4e, pSp or ReStyle) whose weights are here.")
    return keys


def _run_one(key: str, G: nn.Module, target: torch.Tensor, options: CompareOptions, perceptual: PerceptualLoss | None,
             encoders: Mapping[str, Any], w_stats: WStats, progress: Progress | None,
             should_stop: ShouldStop | None) -> InversionResult:
    common = {"perceptual": perceptual, "w_stats": w_stats, "seed": options.seed, "progress": progress,
              "should_stop": should_stop}
    opt = OptimizeOptions(steps=options.steps, lr=options.lr)
    if key in ("w", "w+"):
        return optimize_latent(G, target, replace(opt, space=key), **common)
    if key == "w+n":
        return optimize_wplus_noise(G, target, opt, NoiseOptions(steps=options.noise_steps), **common)
    if key == "pti":
        pivot = replace(PTIOptions().pivot, steps=options.steps)
        return pivotal_tuning(G, target, PTIOptions(pivot=pivot, steps=options.pti_steps), **common)
    if key in ENCODER_RECORDS:
        ckpt = encoders[key]
        return encode(ckpt.encoder, G, target, ckpt.latent_avg, kind=key, iterations=options.restyle_iterations,
                      resize_to=ckpt.config.input_size, progress=progress, should_stop=should_stop)
    kind = next(k for k in HYBRID_ENCODERS if k in encoders)
    ckpt = encoders[kind]
    return encode_then_optimize(ckpt.encoder, G, target, ckpt.latent_avg, kind=kind,
                                options=OptimizeOptions.hybrid(options.steps), resize_to=ckpt.config.input_size,
                                iterations=options.restyle_iterations, **common)


def iter_methods(G: nn.Module, target: torch.Tensor, methods: Sequence[str], options: CompareOptions = CompareOptions(),
                 *, perceptual: PerceptualLoss | None = None, encoders: Mapping[str, Any] | None = None,
                 w_stats: WStats | None = None, progress: Progress | None = None,
                 should_stop: ShouldStop | None = None, identity: IdentityModel | None = None) -> Iterator[MethodRun]:
    """Run `methods` one after another on `target`, yielding each `MethodRun` when it finishes.

    Args:
        G:           the shared generator (read-only).
        target:      [1, 3, R, R] in [-1, 1], R = G.img_resolution (from `prepare_target`).
        methods:     keys of `METHOD_LABELS` (duplicates dropped, order kept).
        options:     `CompareOptions`.
        perceptual:  the loss used by the optimisers and for scoring (None: pixels only, no score).
        encoders:    method key -> `EncoderCheckpoint` of the encoders whose weights are loaded.
        w_stats:     W statistics of G (computed once here when None).
        progress, should_stop: as in `shared.inversion.result`; the fraction covers all methods.
        identity:    scores each run's identity similarity to the target when given (ArcFace).
    Raises:
        InputError before anything runs (no method, unknown method, missing encoder, bad shape);
        InversionCancelled from the running method (earlier methods were already yielded).
    """
    encoders = dict(encoders or {})
    keys = _check_methods(methods, encoders)
    r = G.img_resolution
    if target.ndim != 4 or tuple(target.shape) != (1, 3, r, r):
        raise InputError(f"The image to invert must be [1, 3, {r}, {r}], got {list(target.shape)}; align it first.")
    if w_stats is None and any(k in ("w", "w+", "w+n", "pti", "hybrid") for k in keys):
        w_stats = compute_w_stats(G, OptimizeOptions().w_avg_samples)
    dev = next(G.parameters()).device
    for i, key in enumerate(keys):
        sub = None if progress is None else functools.partial(_scaled, progress, i, len(keys), METHOD_LABELS[key])
        result = _run_one(key, G, target.to(dev), options, perceptual, encoders, w_stats, sub, should_stop)
        if "generator" in result.extra:  # PTI: the tuned copy is not kept (see the module docstring)
            result = replace(result, extra={k: v for k, v in result.extra.items() if k != "generator"})
        yield _score(key, result, target, perceptual, identity)


def run_methods(*args: Any, **kwargs: Any) -> list[MethodRun]:
    """`iter_methods(...)` collected into a list (same arguments)."""
    return list(iter_methods(*args, **kwargs))


def _scaled(progress: Progress, index: int, count: int, label: str, fraction: float, message: str) -> None:
    progress((index + fraction) / count, f"{label} ({index + 1}/{count}): {message}")


@torch.no_grad()
def _score(key: str, result: InversionResult, target: torch.Tensor, perceptual: PerceptualLoss | None,
           identity: IdentityModel | None = None) -> MethodRun:
    img, tgt = result.image.float().cpu(), target.float().cpu()
    score, name, ident = None, "none", None
    if perceptual is not None:
        dev = _module_device(perceptual)
        score, name = float(perceptual(img.to(dev), tgt.to(dev)).sum()), perceptual.name
    if identity is not None:
        dev = _module_device(identity)
        ident = float(identity.similarity(img.to(dev), tgt.to(dev))[0])
    return MethodRun(key, METHOD_LABELS[key], result, float(psnr(img, tgt)[0]), score, name, float(result.seconds),
                     ident)


def _module_device(module: Any) -> torch.device:
    if isinstance(module, nn.Module):
        return next(module.parameters(), torch.empty(0)).device
    return torch.device("cpu")


# ---- latent files ----------------------------------------------------------------------------------
def save_latent_file(path: str | os.PathLike, ws: torch.Tensor | np.ndarray, model_id: str, method: str) -> Path:
    """Write `{'ws': float32 [1, num_ws, w_dim], 'model_id', 'method'}` with `torch.save`."""
    ws = torch.as_tensor(np.asarray(ws), dtype=torch.float32)
    if ws.ndim != 3 or ws.shape[0] != 1:
        raise InputError(f"A latent must be [1, num_ws, w_dim], got {list(ws.shape)}.")
    path = Path(path)
    torch.save({"ws": ws.contiguous().clone(), "model_id": str(model_id), "method": str(method)}, path)
    return path


def load_latent_file(path: str | os.PathLike) -> tuple[torch.Tensor, str, str]:
    """Read a file written by `save_latent_file` (safely: `weights_only=True`).

    Returns (ws float32 [1, num_ws, w_dim], model_id, method); a bare [num_ws, w_dim] is given
    the batch axis. Raises InputError with a sentence for anything else.
    """
    name = Path(path).name
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, EOFError, ValueError, TypeError, AttributeError, pickle.UnpicklingError,
            KeyError, IndexError, struct.error, AssertionError) as e:  # the last four: damaged streams (fuzzed)
        raise InputError(f"{name} is not a latent file saved by this hub (a .pt with ws, model_id and method).") from e
    if not isinstance(data, dict) or not isinstance(data.get("ws"), torch.Tensor) \
            or not isinstance(data.get("model_id"), str):
        raise InputError(f"{name} is not a latent file saved by this hub: it needs a 'ws' tensor and a "
                         f"'model_id' string.")
    ws = data["ws"].detach().float()
    if ws.ndim == 2:
        ws = ws.unsqueeze(0)
    if ws.ndim != 3 or ws.shape[0] != 1:
        raise InputError(f"The latent in {name} has shape {list(data['ws'].shape)}; expected [1, num_ws, w_dim].")
    if not torch.isfinite(ws).all():
        raise InputError(f"The latent in {name} holds NaN or infinite values.")
    return ws, data["model_id"], str(data.get("method", "uploaded"))


def check_latent(ws: torch.Tensor, G: nn.Module, model_id: str) -> None:
    """InputError unless `ws` [1, num_ws, w_dim] fits generator `G` (registry id `model_id`)."""
    want = (1, int(G.num_ws), int(G.w_dim))
    if tuple(ws.shape) != want:
        raise InputError(f"This latent is {list(ws.shape)} but {model_id} needs {list(want)}; pick the model it "
                         f"was made with.")


def runs_summary(runs: Iterable[MethodRun]) -> str:
    """One Markdown table row per run (method, PSNR, perceptual score, identity when scored, time)."""
    runs = list(runs)
    with_id = any(run.identity is not None for run in runs)
    rows = ["| method | PSNR (dB) | perceptual |" + (" identity |" if with_id else "") + " time (s) |",
            "|---|---|---|" + ("---|" if with_id else "") + "---|"]
    for run in runs:
        perc = "-" if run.perceptual is None else f"{run.perceptual:.3f} ({run.perceptual_name})"
        ident = ("" if not with_id else " - |" if run.identity is None else f" {run.identity:.3f} |")
        rows.append(f"| {run.label} | {run.psnr:.2f} | {perc} |{ident} {run.seconds:.2f} |")
    return "\n".join(rows)
