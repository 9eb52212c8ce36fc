"""The demo world's factor-coordinate latents: z ~ N(0, I) maps to the renderer's prior, and
factors_to_z inverts z_to_factors."""
from __future__ import annotations

import pytest
import torch

from shared.demo.factor_latents import LAYOUT, Z_DIM, category_offsets, factors_to_z, z_to_factors
from shared.portraits import FACTORS, sample_factors


def test_layout_covers_every_factor_once():
    assert [e.spec.name for e in LAYOUT] == [s.name for s in FACTORS]
    dims = [d for e in LAYOUT for d in range(e.start, e.start + e.size)]
    assert dims == list(range(Z_DIM))
    assert Z_DIM == sum(1 if s.kind == "continuous" else len(s.categories) for s in FACTORS)


@pytest.mark.parametrize("probs", [(0.75, 0.25), (0.5, 0.3, 0.2), (0.12, 0.3, 0.3, 0.14, 0.14), (0.25,) * 4])
def test_category_offsets_give_the_probabilities(probs):
    b = torch.tensor(category_offsets(probs))
    x = torch.randn([400_000, len(probs)], generator=torch.Generator().manual_seed(0))
    freq = torch.bincount(torch.argmax(x + b, dim=1), minlength=len(probs)).double() / len(x)
    # 4 standard errors of a binomial share at n = 400k
    tol = 4 * torch.sqrt(torch.tensor(probs, dtype=torch.float64) * (1 - torch.tensor(probs)) / len(x))
    assert torch.all((freq - torch.tensor(probs, dtype=torch.float64)).abs() < tol)


def test_standard_normal_z_maps_to_the_renderer_prior():
    n = 200_000
    f = z_to_factors(torch.randn([n, Z_DIM], generator=torch.Generator().manual_seed(1)))
    for s in FACTORS:
        v = f[s.name]
        if s.kind == "continuous":
            u = (v.double() - s.low) / (s.high - s.low)
            assert 0 <= float(u.min()) and float(u.max()) <= 1
            # uniform: every decile holds 10 % (+- 4 s.e.)
            counts = torch.histc(u, bins=10, min=0, max=1) / n
            assert torch.all((counts - 0.1).abs() < 4 * (0.09 / n) ** 0.5), s.name
        else:
            freq = torch.bincount(v, minlength=len(s.categories)).double() / n
            p = torch.tensor(s.probs, dtype=torch.float64)
            assert torch.all((freq - p).abs() < 4 * torch.sqrt(p * (1 - p) / n)), s.name


def test_factors_to_z_inverts_z_to_factors():
    f = sample_factors(500, 3)
    z = factors_to_z(f, torch.Generator().manual_seed(4))
    assert z.shape == (500, Z_DIM) and torch.isfinite(z).all()
    back = z_to_factors(z)
    for s in FACTORS:
        if s.kind == "continuous":
            assert torch.allclose(back[s.name], f[s.name], atol=1e-4 * (s.high - s.low)), s.name
        else:
            assert torch.equal(back[s.name], f[s.name]), s.name
    again = factors_to_z(f, torch.Generator().manual_seed(4))
    assert torch.equal(z, again)


def test_wrong_shape_is_refused():
    with pytest.raises(ValueError, match=str(Z_DIM)):
        z_to_factors(torch.zeros([2, Z_DIM + 1]))
