"""Linear latent directions: InterFaceGAN boundaries, GANSpace and SeFa.

- InterFaceGAN (Shen et al., CVPR 2020 / TPAMI 2020; genforce/interfacegan): a linear boundary's
  unit normal in W is the edit direction. The demo world ships its own (`shared.demo.directions`,
  fitted with the demo predictor, slopes measured); official direction files (`[1, 512]` or
  `[1, 18, 512]`, `.npy` or `.pt`, e.g. genforce/interfacegan `boundaries/` or the ones in
  omertov/encoder4editing `editings/interfacegan_directions/`) load with `load_direction_file`.
- GANSpace (Härkönen et al., NeurIPS 2020; harskish/ganspace): principal components of W over
  sampled latents; an edit moves along component k for a range of ws rows, in units of the
  component's standard deviation.
- SeFa (Shen & Zhou, "Closed-Form Factorization of Latent Semantics in GANs", CVPR 2021;
  genforce/sefa): eigenvectors of A^T A where A stacks the style affines' weight matrices of the
  chosen layers (each column normalised), computed from the generator alone.

All functions take W+ codes ws [N, num_ws, w_dim] and return new tensors; nothing touches the
shared generator's weights.
"""
from __future__ import annotations

import os
import pickle
import struct
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from shared.errors import InputError
from shared.model_cache import DerivedCache, default_cache
from shared.mixing import style_mix_images

__all__ = ["DirectionBasis", "apply_direction", "cached_ganspace", "edit_strip", "fit_direction", "ganspace",
           "load_direction_file", "read_direction_file", "sefa", "style_affines"]

MAX_STRIP = 11


@dataclass(frozen=True, eq=False)
class DirectionBasis:
    """Directions in W (unit rows of `vectors` [K, w_dim]), with a scale per direction: the std of
    W along it (GANSpace), the factorisation's singular value (SeFa), or 1."""
    method: str
    vectors: torch.Tensor   # [K, w_dim] float32 CPU, unit norm
    scales: torch.Tensor    # [K] float32
    info: dict


def style_affines(G: nn.Module) -> list[tuple[int, torch.Tensor]]:
    """(ws row, affine weight [C, w_dim]) of each style layer that modulates a convolution (toRGB
    and StyleGAN3's input transform left out), in synthesis order; effective-scale factors
    omitted (SeFa normalises the columns)."""
    arch = getattr(G, "arch", None)
    out: list[tuple[int, torch.Tensor]] = []
    if arch == "stylegan2":
        for layer, mod in zip(G.style_layers, G._style_modules()):
            if not layer.is_torgb:
                out.append((layer.ws_index, mod.modulation.weight.detach().float().cpu()))
    elif arch == "stylegan3":
        names = list(G.synthesis.layer_names)
        for i, name in enumerate(names[:-1]):  # the last layer is ToRGB
            out.append((i + 1, getattr(G.synthesis, name).affine.weight.detach().float().cpu()))
    else:
        raise InputError(f"Latent directions work with StyleGAN2 and StyleGAN3 models, not {arch or 'this model'}.")
    return out


def sefa(G: nn.Module, rows: Iterable[int] | None = None, k: int = 16) -> DirectionBasis:
    """SeFa: the top-k eigenvectors of A^T A, A = the column-normalised affine weights of the style
    layers fed by `rows` (None: all) stacked [sum C, w_dim]. Returns unit directions with their
    singular values as `scales`; deterministic (sign fixed so the largest entry is positive)."""
    affines = style_affines(G)
    wanted = None if rows is None else set(int(r) for r in rows)
    mats = [w for row, w in affines if wanted is None or row in wanted]
    if not mats:
        raise InputError("No style layer is fed by the chosen rows; choose other rows.")
    a = torch.cat(mats).double()                                   # [sum C, w_dim]
    a = a / a.norm(dim=0, keepdim=True).clamp_min(1e-12)           # genforce/sefa normalises each column
    eigval, eigvec = torch.linalg.eigh(a.T @ a)                    # ascending
    order = torch.argsort(eigval, descending=True)[:max(1, min(int(k), a.shape[1]))]
    vecs = eigvec[:, order].T                                      # [K, w_dim]
    sign = torch.sign(vecs.gather(1, vecs.abs().argmax(dim=1, keepdim=True)))
    vecs = vecs * sign
    return DirectionBasis("sefa", vecs.float().contiguous(), eigval[order].clamp_min(0).sqrt().float(),
                          {"rows": sorted(wanted) if wanted is not None else "all", "layers": len(mats)})


def ganspace(G: nn.Module, *, samples: int = 20_000, k: int = 16, seed: int = 0, batch: int = 2_000,
             progress: Callable[[float, str], object] | None = None) -> DirectionBasis:
    """GANSpace: PCA of w = mapping(z) over `samples` z drawn from `seed` (psi 1). Returns the top-k
    principal directions (unit, sign fixed) with their standard deviations as `scales` and the
    mean in `info['mean']`. Same generator and arguments, same result."""
    if not 2 <= samples <= 1_000_000 or not 1 <= k:
        raise InputError("GANSpace needs 2 to 1,000,000 samples and at least one component.")
    g = torch.Generator().manual_seed(int(seed))
    dev = next(G.parameters()).device
    total = torch.zeros(G.w_dim, dtype=torch.float64)
    outer = torch.zeros(G.w_dim, G.w_dim, dtype=torch.float64)
    c = None
    if int(getattr(G, "c_dim", 0) or 0):
        c = torch.zeros(1, G.c_dim, device=dev)
        c[:, 0] = 1
    with torch.inference_mode():
        for start in range(0, samples, batch):
            n = min(batch, samples - start)
            z = torch.randn([n, G.z_dim], generator=g).to(dev)
            w = G.mapping(z, None if c is None else c.expand(n, -1))[:, 0].double().cpu()
            total += w.sum(0)
            outer += w.T @ w
            if progress is not None:
                progress((start + n) / samples, f"GANSpace: {start + n:,} of {samples:,} latents")
    mean = total / samples
    cov = (outer - samples * torch.outer(mean, mean)) / (samples - 1)
    eigval, eigvec = torch.linalg.eigh(cov)
    order = torch.argsort(eigval, descending=True)[:min(int(k), G.w_dim)]
    vecs = eigvec[:, order].T
    vecs = vecs * torch.sign(vecs.gather(1, vecs.abs().argmax(dim=1, keepdim=True)))
    return DirectionBasis("ganspace", vecs.float().contiguous(), eigval[order].clamp_min(0).sqrt().float(),
                          {"mean": mean.float(), "samples": samples, "seed": seed,
                           "explained": (eigval[order] / eigval.sum()).float().tolist()})


def cached_ganspace(model_id: str, G: nn.Module, *, samples: int = 20_000, k: int = 16, seed: int = 0,
                    progress: Callable[[float, str], object] | None = None,
                    cache: DerivedCache | None = None) -> DirectionBasis:
    """`ganspace` computed once per (model id, samples, k, seed), kept in the derived-data cache
    (`cache`, default the process model cache's; a few MB each)."""
    store = cache if cache is not None else default_cache().derived
    key = ("ganspace", model_id, int(samples), int(k), int(seed))
    return store.get_or_build(key, lambda: ganspace(G, samples=samples, k=k, seed=seed, progress=progress))


def read_direction_file(path: str | os.PathLike) -> torch.Tensor:
    """The tensor a direction file holds (float32, CPU), unchecked: `.npy`, or `.pt` read with
    `weights_only=True` (nothing executes). The model cache's loader for direction records."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"No direction file at {p}.")
    try:
        if p.suffix == ".npy":
            arr = torch.from_numpy(np.load(p, allow_pickle=False).astype(np.float32))
        else:
            obj = torch.load(p, map_location="cpu", weights_only=True)
            arr = obj if isinstance(obj, torch.Tensor) else torch.as_tensor(np.asarray(obj), dtype=torch.float32)
    except (ValueError, RuntimeError, OSError, EOFError, pickle.UnpicklingError, struct.error) as e:
        raise InputError(f"{p.name} could not be read as a direction tensor ({e}).") from e
    return arr.detach().float()


def fit_direction(arr: torch.Tensor, G: nn.Module, name: str = "The direction") -> torch.Tensor:
    """A stored direction as a W+ offset [1, num_ws, w_dim] for G: [w_dim] or [1, w_dim] (the same
    vector for every row), [1, num_ws, w_dim] or [num_ws, w_dim] (per row); used as stored."""
    arr = arr.detach().float().squeeze(0) if arr.ndim == 3 else arr.detach().float()
    num_ws, w_dim = int(G.num_ws), int(G.w_dim)
    if arr.ndim == 1 and arr.shape[0] == w_dim or arr.ndim == 2 and tuple(arr.shape) == (1, w_dim):
        return arr.reshape(1, 1, w_dim).expand(1, num_ws, w_dim).clone()
    if arr.ndim == 2 and tuple(arr.shape) == (num_ws, w_dim):
        return arr[None].clone()
    raise InputError(f"{name} holds a direction of shape {list(arr.shape)}; this model needs [1, {w_dim}] or "
                     f"[1, {num_ws}, {w_dim}].")


def load_direction_file(path: str | os.PathLike, G: nn.Module) -> torch.Tensor:
    """A direction file as a W+ offset [1, num_ws, w_dim]: `.npy` or `.pt` holding [w_dim], [1, w_dim]
    (the same vector for every row) or [1, num_ws, w_dim] / [num_ws, w_dim] (per row). `.pt` is read
    with `weights_only=True` (nothing executes); the vector is used as stored (not re-normalised)."""
    return fit_direction(read_direction_file(path), G, Path(path).name)


def _offset(G: nn.Module, direction: torch.Tensor, rows: Sequence[int] | None) -> torch.Tensor:
    d = torch.as_tensor(direction, dtype=torch.float32).cpu()
    num_ws, w_dim = int(G.num_ws), int(G.w_dim)
    if d.ndim == 1:
        d = d.reshape(1, 1, w_dim).expand(1, num_ws, w_dim)
    if d.ndim != 3 or tuple(d.shape[1:]) != (num_ws, w_dim):
        raise InputError(f"A direction must be [{w_dim}] or [1, {num_ws}, {w_dim}], got {list(d.shape)}.")
    if rows is not None:
        keep = torch.zeros(1, num_ws, 1)
        for r in rows:
            if not 0 <= int(r) < num_ws:
                raise InputError(f"Row {r} does not exist; this model has rows 0 to {num_ws - 1}.")
            keep[:, int(r)] = 1
        d = d * keep
    return d


def apply_direction(G: nn.Module, ws: torch.Tensor, direction: torch.Tensor, strength: float,
                    rows: Sequence[int] | None = None) -> torch.Tensor:
    """ws + strength * direction on `rows` (None: all). ws [N, num_ws, w_dim]; direction [w_dim] or
    [1, num_ws, w_dim]. Returns a new float32 CPU tensor."""
    ws = torch.as_tensor(ws, dtype=torch.float32).cpu()
    if ws.ndim != 3 or tuple(ws.shape[1:]) != (G.num_ws, G.w_dim):
        raise InputError(f"The latent must be [N, {G.num_ws}, {G.w_dim}], got {list(ws.shape)}.")
    if not np.isfinite(float(strength)):
        raise InputError("The strength must be a finite number.")
    return ws + float(strength) * _offset(G, direction, rows)


def edit_strip(G: nn.Module, ws: torch.Tensor, direction: torch.Tensor, strengths: Sequence[float],
               rows: Sequence[int] | None = None, *, noise_mode: str = "const") -> tuple[torch.Tensor, torch.Tensor]:
    """Images of one latent ([1, num_ws, w_dim]) edited at each strength: (images [S, 3, H, W] in
    [-1, 1] CPU, edited ws [S, num_ws, w_dim]); at most 11 strengths."""
    if not 1 <= len(strengths) <= MAX_STRIP:
        raise InputError(f"Ask for 1 to {MAX_STRIP} strengths, not {len(strengths)}.")
    ws = torch.as_tensor(ws, dtype=torch.float32).cpu()
    if ws.shape[0] != 1:
        raise InputError("Edit one latent at a time.")
    edited = torch.cat([apply_direction(G, ws, direction, s, rows) for s in strengths])
    every = list(range(G.num_ws))
    return style_mix_images(G, edited, edited, every, noise_mode=noise_mode), edited
