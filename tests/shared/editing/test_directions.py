"""Latent directions (shared.editing.directions): SeFa, GANSpace, applying a direction to chosen rows,
and direction files in the official InterFaceGAN layouts, on small random generators."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from shared import registry
from shared.editing.directions import apply_direction, edit_strip, ganspace, load_direction_file, sefa, style_affines
from shared.errors import InputError
from shared.latents import ws_from_seeds
from shared.mixing import style_mix_images

torch.set_num_threads(1)
DEMO = registry.DEFAULT_GENERATOR_ID


# ---- SeFa ---------------------------------------------------------------------------------------------
def test_sefa_directions_are_orthonormal_eigenvectors(sg2):
    basis = sefa(sg2, k=8)
    v = basis.vectors.double()
    assert v.shape == (8, sg2.w_dim)
    assert torch.allclose(v @ v.T, torch.eye(8, dtype=torch.float64), atol=1e-5)
    a = torch.cat([w for _, w in style_affines(sg2)]).double()
    a = a / a.norm(dim=0, keepdim=True)
    ata = a.T @ a
    for i in range(8):  # A^T A v = lambda v, lambda = scale^2, in decreasing order
        assert torch.allclose(ata @ v[i], basis.scales[i].double() ** 2 * v[i], atol=1e-4)
    assert (basis.scales[:-1] >= basis.scales[1:]).all()
    assert torch.equal(sefa(sg2, k=8).vectors, basis.vectors)          # deterministic, signs fixed
    coarse = sefa(sg2, rows=[0, 1], k=4)
    assert coarse.info["layers"] < basis.info["layers"] and not torch.allclose(coarse.vectors, basis.vectors[:4])


def test_sefa_on_stylegan3_and_bad_rows(sg3, sg2):
    basis = sefa(sg3, k=4)
    assert basis.vectors.shape == (4, sg3.w_dim)
    with pytest.raises(InputError, match="No style layer"):
        sefa(sg2, rows=[99])


# ---- GANSpace -----------------------------------------------------------------------------------------
def test_ganspace_is_the_pca_of_w(sg2):
    basis = ganspace(sg2, samples=4000, k=4, seed=3)
    g = torch.Generator().manual_seed(3)
    w = torch.cat([sg2.mapping(torch.randn([2000, sg2.z_dim], generator=g))[:, 0] for _ in range(2)]).double()
    cov = torch.cov(w.T)
    for i in range(4):
        v = basis.vectors[i].double()
        assert torch.allclose(cov @ v, basis.scales[i].double() ** 2 * v, atol=1e-4 * float(cov.abs().max()))
    proj = (w - w.mean(0)) @ basis.vectors.double().T
    assert torch.allclose(proj.std(0), basis.scales.double(), rtol=1e-3)
    assert torch.equal(ganspace(sg2, samples=4000, k=4, seed=3).vectors, basis.vectors)


# ---- applying directions -------------------------------------------------------------------------------
def test_apply_direction_rows_and_strip(sg2):
    ws = ws_from_seeds(sg2, [1])
    d = torch.randn(sg2.w_dim, generator=torch.Generator().manual_seed(0))
    out = apply_direction(sg2, ws, d, 2.0, rows=[0, 1])
    assert torch.allclose(out[:, :2] - ws[:, :2], 2 * d.expand(2, -1)[None])
    assert torch.equal(out[:, 2:], ws[:, 2:])
    imgs, edited = edit_strip(sg2, ws, d, [-1.0, 0.0, 1.0])
    assert imgs.shape == (3, 3, 32, 32) and torch.equal(edited[1:2], ws)
    same = style_mix_images(sg2, ws, ws, list(range(sg2.num_ws)))
    assert torch.allclose(imgs[1:2], same, atol=1e-5)  # batched (unfused) vs single-image (fused) convolution
    with pytest.raises(InputError, match="Row 40 does not exist"):
        apply_direction(sg2, ws, d, 1.0, rows=[40])
    with pytest.raises(InputError, match="1 to 11 strengths"):
        edit_strip(sg2, ws, d, list(range(12)))


@pytest.mark.parametrize("shape", [(1, 32), (32,), (1, 8, 32)])
@pytest.mark.parametrize("suffix", [".npy", ".pt"])
def test_direction_files_in_the_official_layouts(sg2, tmp_path, shape, suffix):
    """InterFaceGAN boundaries are [1, 512] .npy; e4e's `interfacegan_directions/*.pt` are [1, 512]
    tensors; StyleCLIP-style per-layer offsets are [1, 18, 512]."""
    arr = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    path = tmp_path / f"d{suffix}"
    np.save(path, arr) if suffix == ".npy" else torch.save(torch.from_numpy(arr), path)
    d = load_direction_file(path, sg2)
    assert d.shape == (1, sg2.num_ws, sg2.w_dim)
    want = torch.from_numpy(arr).reshape(-1, sg2.w_dim)
    assert torch.allclose(d[0], want.expand(sg2.num_ws, -1) if want.shape[0] == 1 else want)


def test_bad_direction_files(sg2, tmp_path):
    np.save(tmp_path / "wrong.npy", np.zeros((1, 7), np.float32))
    with pytest.raises(InputError, match=r"shape \[7\]|shape \[1, 7\]"):
        load_direction_file(tmp_path / "wrong.npy", sg2)
    (tmp_path / "junk.pt").write_bytes(b"junk")
    with pytest.raises(InputError, match="could not be read"):
        load_direction_file(tmp_path / "junk.pt", sg2)
    with pytest.raises(InputError, match="No direction file"):
        load_direction_file(tmp_path / "missing.npy", sg2)
