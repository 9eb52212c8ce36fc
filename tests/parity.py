"""Helpers for reading the official parity vectors in ../shared/parity (see its README)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from tests.conftest import PARITY_DIR


def load_vector(name: str) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], dict]:
    """(weights without the `sd.` prefix, all other tensors, JSON) of a parity vector; clones the
    tensors because safetensors' memory is not 64-byte aligned (README: BLAS picks other kernels)."""
    path = PARITY_DIR / f"{name}.safetensors"
    if not path.exists():
        pytest.skip(f"parity vector {path} not present")
    t = {k: v.clone() for k, v in load_file(str(path)).items()}
    sd = {k[3:]: v for k, v in t.items() if k.startswith("sd.")}
    rest = {k: v for k, v in t.items() if not k.startswith("sd.")}
    return sd, rest, json.loads((PARITY_DIR / f"{name}.json").read_text())


def rel_err(ours: torch.Tensor, expected: torch.Tensor) -> float:
    """max|ours - expected| / max(1, max|expected|), the README's pass criterion."""
    assert ours.shape == expected.shape, (ours.shape, expected.shape)
    return float((ours.float() - expected).abs().max() / max(1.0, float(expected.abs().max())))


IMG_TOL = 1e-4   # README: images
WS_TOL = 1e-5    # README: latents, ws, encoder codes


def recipe_state_dict(entries: list[dict]) -> dict[str, torch.Tensor]:
    """The README's weight recipe for vectors that store no weights: float32 numpy arithmetic per
    entry (seeded normal, optional abs, scale, offset), integer entries zero."""
    sd = {}
    for e in entries:
        if e["dtype"].startswith("int"):
            sd[e["key"]] = torch.zeros(e["shape"], dtype=getattr(torch, e["dtype"]))
            continue
        g = np.random.RandomState(e["seed"]).standard_normal(e["shape"]).astype(np.float32)
        if e["abs"]:
            g = np.abs(g)
        sd[e["key"]] = torch.from_numpy(g * np.float32(e["scale"]) + np.float32(e["offset"]))
    return sd
