"""The official parity vectors in ../shared/parity (see its README): where they are, the rule for when
they are absent, and helpers for reading them.

The vectors are outputs of the official implementations (rosinality/stylegan2-pytorch, NVlabs
stylegan2-ada-pytorch and stylegan3, pSp/e4e/ReStyle, StyleCLIP, StyleFlow) run on random weights;
they live in the ../shared/parity folder beside the checkout (or `HUB_PARITY_DIR`), not in the
repository. Tests reach them only through the `parity_dir` fixture (tests/conftest.py), which applies
`require` once: absent, a test skips with a sentence saying where they come from; under CI
(`CI=true`) absence is a failure."""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

ROOT = Path(__file__).resolve().parents[1]
PARITY_DIR = Path(os.environ.get("HUB_PARITY_DIR", ROOT.parent / "shared" / "parity"))
SOURCE = ("the parity vectors come from the ../shared/parity folder beside the checkout (or HUB_PARITY_DIR): "
          "outputs of the official implementations on random weights, see its README")


def under_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() == "true"


def require(path: Path) -> Path:
    """`path` if it exists; otherwise skip with a sentence saying where the vectors come from, or fail
    under CI, where the vectors must be present."""
    if path.exists():
        return path
    sentence = f"{path} is missing: {SOURCE}."
    if under_ci():
        pytest.fail(f"{sentence} CI=true, so the parity tests must run.", pytrace=False)
    pytest.skip(sentence)


def load_vector(parity_dir: Path, name: str) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], dict]:
    """(weights without the `sd.` prefix, all other tensors, JSON) of a parity vector; clones the
    tensors because safetensors' memory is not 64-byte aligned (README: BLAS picks other kernels)."""
    path = require(parity_dir / f"{name}.safetensors")
    t = {k: v.clone() for k, v in load_file(str(path)).items()}
    sd = {k[3:]: v for k, v in t.items() if k.startswith("sd.")}
    rest = {k: v for k, v in t.items() if not k.startswith("sd.")}
    return sd, rest, json.loads(require(parity_dir / f"{name}.json").read_text())


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
