"""StyleCLIP global directions (Patashnik et al., ICCV 2021, orpatashnik/StyleCLIP
`global_directions/`), written in PyTorch for any StyleGAN2 generator and any CLIP.

Relevance matrix (the paper's Sec. 6, the official `fs3`): for every style channel outside the
toRGB layers, over a set of sampled latents, the channel is moved by +σ and by -σ standard
deviations (`StyleStats`), both images are embedded with CLIP, the difference of the two unit
embeddings is normalised per latent, averaged over the latents and normalised again: one unit
row per channel, [C, D] (the paper uses 100 latents and σ = 5). It is computed
in chunks with a progress callback, checkpointed to disk after every chunk (a restarted build
resumes) and cached per (generator, CLIP, settings).

Edit: r = R·Δt (Δt from `shared.styleclip.prompts.text_direction`); channels with |r| < β are
dropped, the rest are divided by max|r| and scaled by each channel's std, and α times that is added
to the styles. The official FFHQ config-f assets (`fs3.npy` [6048, 512], `S_mean_std`) load
through `load_official_relevance` / `load_official_stats`.
"""
from __future__ import annotations

import hashlib
import json
import os
import pickle
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from shared.editing.stylespace import StyleStats, style_stats
from shared.errors import InputError
from shared.model_cache import DerivedCache, default_cache

__all__ = ["GlobalEdit", "Relevance", "RelevanceSettings", "cached_relevance", "channel_layout", "computed_dir",
           "global_edit", "load_official_relevance", "load_official_stats", "load_relevance", "relevance_file",
           "relevance_matrix", "save_relevance", "select_channels"]

Progress = Callable[[float, str], object]


def computed_dir() -> Path:
    """Folder for computed assets (relevance matrices): `$HUB_COMPUTED_DIR`, else
    ~/.cache/stylegan-hub/computed."""
    return Path(os.environ.get("HUB_COMPUTED_DIR") or "~/.cache/stylegan-hub/computed").expanduser()


@dataclass(frozen=True)
class RelevanceSettings:
    """How a relevance matrix is measured: latents (count, seed, truncation ψ), the perturbation in
    channel standard deviations, and the StyleStats sample count that defines those deviations."""
    samples: int = 8
    sigma: float = 5.0
    seed: int = 0
    psi: float = 0.7
    stats_samples: int = 2_000
    batch: int = 256

    def key(self) -> str:
        d = {k: v for k, v in self.__dict__.items() if k != "batch"}
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:12]


@dataclass(frozen=True, eq=False)
class Relevance:
    """Unit relevance rows [C, D] (float32 CPU) for the channels `layout` lists, in order."""
    matrix: Tensor
    layout: tuple[tuple[int, int], ...]     # (style layer index, channels) of each non-toRGB layer
    source: str                             # 'computed <settings>' or 'official fs3.npy'
    seconds: float = 0.0                    # build time (0 when loaded)


def channel_layout(G: nn.Module) -> tuple[tuple[int, int], ...]:
    """(style layer index, channels) of the layers the relevance matrix covers (toRGB excluded), in
    the generator's order, which is the order of the rows of `fs3.npy` for config-f."""
    if getattr(G, "arch", None) != "stylegan2":
        raise InputError("Global directions need a StyleGAN2 generator (they edit StyleSpace channels).")
    return tuple((layer.index, layer.channels) for layer in G.style_layers if not layer.is_torgb)


def _jobs(layout) -> list[tuple[int, int]]:
    return [(layer, c) for layer, n in layout for c in range(n)]


@torch.no_grad()
def relevance_matrix(G: nn.Module, clip, *, settings: RelevanceSettings = RelevanceSettings(),
                     stats: StyleStats | None = None, checkpoint: Path | None = None,
                     progress: Progress | None = None, should_stop: Callable[[], bool] | None = None,
                     limit: int | None = None) -> Relevance:
    """Measure the relevance rows of every non-toRGB channel (the first `limit` only, when given;
    for spot checks) as the module docstring says. With
    `checkpoint`, the rows done so far are saved there after every chunk and a later call resumes
    from them; `should_stop()` true ends the call early with InputError (the work done is kept)."""
    layout = channel_layout(G)
    jobs = _jobs(layout)[:limit]
    stats = stats or style_stats(G, samples=settings.stats_samples, seed=settings.seed)
    dev = next(G.parameters()).device
    g = torch.Generator().manual_seed(int(settings.seed))
    z = torch.randn([settings.samples, G.z_dim], generator=g).to(dev)
    ws = G.mapping(z, truncation_psi=settings.psi)
    base = G.synthesis.styles(ws)
    done, rows = 0, None
    if checkpoint is not None and checkpoint.is_file():
        saved = torch.load(checkpoint, weights_only=True)
        if saved.get("key") == settings.key() and saved.get("channels") == len(jobs):
            done, rows = int(saved["done"]), saved["rows"]
    per = max(1, settings.batch // (2 * settings.samples))            # channels per forward pass
    start_t = time.perf_counter()
    for start in range(done, len(jobs), per):
        chunk = jobs[start:start + per]
        edited = [s.repeat(2 * len(chunk), 1) for s in base]          # [(chunk, sign, sample), ...]
        for i, (layer, c) in enumerate(chunk):
            step = float(settings.sigma) * float(stats.std[layer][c])
            lo = 2 * i * settings.samples
            edited[layer][lo:lo + settings.samples, c] += step
            edited[layer][lo + settings.samples:lo + 2 * settings.samples, c] -= step
        img = G.synthesis.from_styles(edited, noise_mode="const").float().clamp(-1, 1)
        emb = clip.encode_image(img).cpu().view(len(chunk), 2, settings.samples, -1)
        per_image = F.normalize(emb[:, 0] - emb[:, 1], dim=-1)        # [chunk, samples, D]
        diff = F.normalize(per_image.mean(1), dim=-1)                  # [chunk, D]
        rows = diff if rows is None else torch.cat([rows, diff])
        done = start + len(chunk)
        if checkpoint is not None:
            checkpoint.parent.mkdir(parents=True, exist_ok=True)
            tmp = checkpoint.with_suffix(".tmp")
            torch.save({"key": settings.key(), "channels": len(jobs), "done": done, "rows": rows}, tmp)
            os.replace(tmp, checkpoint)
        if progress is not None:
            progress(done / len(jobs), f"relevance: {done} of {len(jobs)} channels")
        if should_stop is not None and should_stop() and done < len(jobs):
            raise InputError(f"Stopped after {done} of {len(jobs)} channels; building again resumes from there.")
    return Relevance(rows.float(), layout, f"computed {settings}", time.perf_counter() - start_t)


def relevance_file(model_id: str, clip_id: str, settings: RelevanceSettings, folder: Path) -> Path:
    """Where a relevance matrix for (model, CLIP, settings) is kept in `folder`."""
    return Path(folder) / f"relevance-{model_id}-{clip_id}-{settings.key()}.safetensors"


def save_relevance(rel: Relevance, path: Path, settings: RelevanceSettings, *, dtype: torch.dtype = torch.float32,
                   extra: dict | None = None) -> None:
    """Write a relevance matrix as safetensors (matrix) with its settings, layout and build time
    in the header; atomically."""
    from safetensors.torch import save_file
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {"settings": json.dumps(settings.__dict__), "key": settings.key(),
            "layout": json.dumps([list(x) for x in rel.layout]), "seconds": f"{rel.seconds:.1f}",
            **{k: str(v) for k, v in (extra or {}).items()}}
    tmp = path.with_name(path.name + ".tmp")
    save_file({"matrix": rel.matrix.to(dtype).contiguous()}, str(tmp), metadata=meta)
    os.replace(tmp, path)


def load_relevance(path: Path, layout, settings: RelevanceSettings) -> Relevance | None:
    """A saved relevance matrix if it was made with `settings` for this channel layout, else None."""
    from safetensors import safe_open
    with safe_open(str(path), "pt") as fh:
        meta = fh.metadata() or {}
        if meta.get("key") != settings.key() or tuple(map(tuple, json.loads(meta.get("layout", "[]")))) != layout:
            return None
        matrix = fh.get_tensor("matrix").float()
    return Relevance(F.normalize(matrix, dim=1), layout, f"computed {settings} (cached)", float(meta.get("seconds", 0)))


def cached_relevance(model_id: str, G: nn.Module, clip, *, settings: RelevanceSettings = RelevanceSettings(),
                     stats: StyleStats | None = None, progress: Progress | None = None,
                     should_stop: Callable[[], bool] | None = None, folder: Path | None = None,
                     shipped: tuple[Path, ...] = (), cache: DerivedCache | None = None) -> Relevance:
    """`relevance_matrix` computed once per (model, CLIP, settings): kept in memory and on disk
    (`folder`, default `computed_dir()/styleclip`); read-only `shipped` folders are looked in first
    (the demo world's matrix ships with the repository). A partial build resumes from its
    checkpoint; two concurrent callers build it once. In memory it lives in the derived-data
    cache (`cache`, default the process model cache's)."""
    store = cache if cache is not None else default_cache().derived
    folder = Path(folder) if folder is not None else computed_dir() / "styleclip"
    path = relevance_file(model_id, clip.model_id, settings, folder)

    def build() -> Relevance:
        layout = channel_layout(G)
        for candidate in [relevance_file(model_id, clip.model_id, settings, d) for d in shipped] + [path]:
            if candidate.is_file():
                rel = load_relevance(candidate, layout, settings)
                if rel is not None:
                    return rel
        partial = path.with_suffix(".partial")
        rel = relevance_matrix(G, clip, settings=settings, stats=stats, checkpoint=partial, progress=progress,
                               should_stop=should_stop)
        save_relevance(rel, path, settings)
        partial.unlink(missing_ok=True)
        return rel

    return store.get_or_build(("relevance", model_id, clip.model_id, settings.key()), build)


def load_official_relevance(path: str | os.PathLike, G: nn.Module) -> Relevance:
    """StyleCLIP's `fs3.npy` ([channels without toRGB, CLIP dim], rows in generator order) for `G`
    (read with allow_pickle=False)."""
    layout = channel_layout(G)
    arr = np.load(Path(path), allow_pickle=False)
    channels = sum(n for _, n in layout)
    if arr.ndim != 2 or arr.shape[0] != channels:
        raise InputError(f"{Path(path).name} has shape {list(arr.shape)}; this generator needs [{channels}, D] "
                         "(one row per non-toRGB style channel). Use the file made for this generator.")
    return Relevance(torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32)), layout, "official fs3.npy")


class _NumpyOnly(pickle.Unpickler):
    """Unpickler that builds NumPy arrays and plain containers and nothing else."""
    _ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
                ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"),
                ("numpy._core.multiarray", "scalar")}

    def find_class(self, module: str, name: str):
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"{module}.{name} is not allowed in a StyleSpace statistics file")


def load_official_stats(path: str | os.PathLike, G: nn.Module) -> StyleStats:
    """StyleCLIP's `S_mean_std` (a pickle of [means, stds], each a list of one array per style layer,
    toRGB included) as StyleStats, read with a NumPy-only unpickler (no code runs)."""
    with open(path, "rb") as fh:
        try:
            data = _NumpyOnly(fh, encoding="latin1").load()
        except (pickle.UnpicklingError, EOFError, AttributeError, ValueError) as e:
            raise InputError(f"{Path(path).name} is not a StyleSpace statistics pickle of NumPy arrays ({e}).") from e
    if not (isinstance(data, (list, tuple)) and len(data) == 2):
        raise InputError(f"{Path(path).name} should hold [means, stds]; it holds {type(data).__name__}.")
    means, stds = ([torch.as_tensor(np.asarray(a, dtype=np.float32)).reshape(-1) for a in part] for part in data)
    want = [layer.channels for layer in G.style_layers]
    if [m.numel() for m in means] != want or [s.numel() for s in stds] != want:
        raise InputError(f"{Path(path).name} has layers of {[m.numel() for m in means]} channels; this generator "
                         f"has {want}.")
    return StyleStats(means, stds, samples=0)


@dataclass(frozen=True)
class GlobalEdit:
    """A global-direction edit: the per-layer style offsets (already × α) and what was selected."""
    offsets: list[Tensor]           # per style layer [channels] (toRGB zero)
    channels: int                   # channels with |r| >= β
    top: list[tuple[int, int, float]]   # (layer, channel, r) of the strongest channels, by |r|


def select_channels(relevance: Relevance, dt: Tensor, stats: StyleStats, *, alpha: float, beta: float,
                    layers: int, top: int = 10) -> GlobalEdit:
    """r = R·Δt; channels with |r| < β are zero, the rest are divided by max|r|, multiplied by their
    std and by α. `layers` is the generator's style-layer count (offsets for toRGB stay zero)."""
    r = relevance.matrix @ dt.to(relevance.matrix).reshape(-1)
    if r.shape[0] != sum(n for _, n in relevance.layout):
        raise InputError("The relevance matrix does not match this generator.")
    keep = r.abs() >= float(beta)
    n = int(keep.sum())
    if n == 0:
        raise InputError(f"No channel has relevance |r| ≥ β = {beta:.3f} (the largest is {float(r.abs().max()):.3f}); "
                         "lower β.")
    scaled = torch.where(keep, r, torch.zeros_like(r)) / r.abs().max()
    offsets = [torch.zeros(len(s)) for s in stats.std]
    ranked = []
    at = 0
    for layer, count in relevance.layout:
        part = scaled[at:at + count]
        offsets[layer] = float(alpha) * part * stats.std[layer]
        ranked += [(layer, c, float(r[at + c])) for c in torch.nonzero(keep[at:at + count]).flatten().tolist()]
        at += count
    if len(offsets) != layers:
        raise InputError("The style statistics do not match this generator.")
    ranked.sort(key=lambda t: abs(t[2]), reverse=True)
    return GlobalEdit(offsets, n, ranked[:top])


@torch.no_grad()
def global_edit(G: nn.Module, ws: Tensor, edit: GlobalEdit, *, noise_mode: str = "const",
                strengths: Tensor | None = None) -> tuple[Tensor, list[Tensor]]:
    """Render ws [N, num_ws, w_dim] with the edit's offsets added to the styles. `strengths` [N]
    rescales the offsets per image (e.g. a strip over α). Returns (images [N,3,H,W] in [-1,1] CPU,
    the edited styles on CPU)."""
    ws = torch.as_tensor(ws, dtype=torch.float32)
    if ws.ndim != 3 or tuple(ws.shape[1:]) != (G.num_ws, G.w_dim):
        raise InputError(f"The latent must be [N, {G.num_ws}, {G.w_dim}], got {list(ws.shape)}.")
    dev = next(G.parameters()).device
    styles = G.synthesis.styles(ws.to(dev))
    k = torch.ones(ws.shape[0], 1, device=dev) if strengths is None else strengths.to(dev).float().view(-1, 1)
    edited = [s + k * o.to(dev)[None] for s, o in zip(styles, edit.offsets)]
    img = G.synthesis.from_styles(edited, noise_mode=noise_mode)
    return img.float().cpu().clamp(-1, 1), [s.cpu() for s in edited]
