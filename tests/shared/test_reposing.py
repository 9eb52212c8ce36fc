"""`shared.reposing` on tiny random generators (tests/shared/conftest.py) with a synthetic pose
reader, so every property is checked exactly: rows, units, calibration, component labelling, the
StyleGAN3 input transform and the sentences for bad requests."""
from __future__ import annotations

import math

import pytest
import torch

from shared.editing.directions import DirectionBasis, sefa
from shared.errors import InputError
from shared.latents import resolve_rows, ws_from_seeds
from shared.reposing import (PoseBasis, PoseAxis, calibrate_basis, component_pose_basis, file_pose_basis,
                             label_pose_components, pose_strip, repose, repose_image, transform_image)

torch.set_num_threads(1)


def linear_reader(weights: torch.Tensor):
    """A 'pose reader' that is a fixed linear function of the image: (yaw, pitch) = weights @ pixels."""
    def read(images: torch.Tensor) -> torch.Tensor:
        flat = images.float().flatten(1)
        return flat @ weights.T
    return read


def test_repose_moves_only_the_chosen_rows_in_the_vectors_units(sg2):
    ws = ws_from_seeds(sg2, [1, 2], 0.7)
    v = torch.randn(sg2.w_dim, generator=torch.Generator().manual_seed(0))
    basis = file_pose_basis(sg2, v, rows="coarse")
    out = repose(sg2, ws, basis, {"yaw": 2.5})
    coarse = set(resolve_rows(sg2, "coarse"))
    for r in range(sg2.num_ws):
        expected = ws[:, r] + (2.5 * v if r in coarse else 0)
        assert torch.allclose(out[:, r], expected, atol=1e-6)
    assert basis.axes["yaw"].unit == "×" and "rows 0-" in basis.describe()
    assert torch.equal(repose(sg2, ws, basis, {"yaw": 0.0, "pitch": 0.0}), ws)   # zero asks nothing


def _ascent(G, reader, axis: int = 0) -> torch.Tensor:
    """The mean gradient of the reader's `axis` over W (a direction that turns most faces one way)."""
    ws = ws_from_seeds(G, list(range(200, 216)), 0.7)[:, :1].clone().requires_grad_(True)
    out = reader(G.synthesis(ws.expand(-1, G.num_ws, -1), noise_mode="const"))[:, axis].sum()
    (grad,) = torch.autograd.grad(out, ws)
    return grad.mean(0)[0] / grad.mean(0)[0].norm()


def test_calibration_makes_one_unit_one_reader_degree(sg2):
    pixels = 3 * sg2.img_resolution ** 2
    reader = linear_reader(100 * torch.randn(2, pixels, generator=torch.Generator().manual_seed(1)) / pixels ** 0.5)
    v = _ascent(sg2, reader) * 0.2
    calibrated, slopes, refused = calibrate_basis(sg2, file_pose_basis(sg2, v, rows=None), reader, samples=64)
    assert refused == {} and calibrated.axes["yaw"].unit == "°" and slopes["yaw"] > 1
    ws = ws_from_seeds(sg2, list(range(100, 164)), 0.7)      # other latents than the calibration's
    with torch.no_grad():
        base = reader(sg2.synthesis(ws, noise_mode="const"))[:, 0].mean()
        moved = reader(repose_image(sg2, ws, calibrated, {"yaw": 1.0})[0])[:, 0].mean()
    assert math.isclose(float(moved - base), 1.0, rel_tol=0.25), float(moved - base)
    # the same direction turned around is refused on the other axis only when it does not move it
    both = PoseBasis({"yaw": PoseAxis("yaw", v, "×", "v"), "pitch": PoseAxis("pitch", v * 1e-4, "×", "tiny")}, None)
    kept, _, refused = calibrate_basis(sg2, both, reader, samples=16)
    assert set(kept.axes) == {"yaw"} and "pitch direction (tiny) does not turn" in refused["pitch"]


def test_calibration_leaves_out_an_axis_the_model_does_not_follow(sg2):
    reader = linear_reader(torch.zeros(2, 3 * sg2.img_resolution ** 2))   # reads 0 whatever the image
    basis = file_pose_basis(sg2, torch.ones(sg2.w_dim), rows=None)
    with pytest.raises(InputError, match="No pose direction turns"):
        calibrate_basis(sg2, basis, reader, samples=4)


def test_labelling_picks_the_components_the_reader_responds_to(sg2):
    pixels = 3 * sg2.img_resolution ** 2
    reader = linear_reader(torch.randn(2, pixels, generator=torch.Generator().manual_seed(3)) / pixels ** 0.5)
    comps = sefa(sg2, None, k=6)
    picks, slopes, readings = label_pose_components(sg2, comps, reader, samples=4, rows=None)
    assert len(readings) == 6 and picks["yaw"] != picks["pitch"]
    best_yaw = max(readings, key=lambda r: abs(r.yaw_slope) - abs(r.pitch_slope)).index
    assert picks["yaw"] == best_yaw and slopes["yaw"] == readings[best_yaw].yaw_slope
    basis = component_pose_basis(sg2, comps, picks, slopes=slopes, rows=None)
    assert basis.axes["yaw"].unit == "°" and "sefa component" in basis.axes["yaw"].source


def test_strip_and_bad_requests(sg2):
    ws = ws_from_seeds(sg2, [1], 0.7)
    basis = PoseBasis({"yaw": PoseAxis("yaw", torch.ones(sg2.w_dim) * 0.01, "°", "test")}, None)
    images, edited = pose_strip(sg2, ws, basis, "yaw", [-10, 0, 10])
    assert images.shape == (3, 3, sg2.img_resolution, sg2.img_resolution) and edited.shape[0] == 3
    assert torch.allclose(edited[1], ws[0])
    with pytest.raises(InputError, match="between -90° and 90°"):
        repose(sg2, ws, basis, {"yaw": 120})
    with pytest.raises(InputError, match="finite"):
        repose(sg2, ws, basis, {"yaw": float("nan")})
    with pytest.raises(InputError, match="no pitch control"):
        repose(sg2, ws, basis, {"pitch": 5})
    with pytest.raises(InputError, match="no pitch control"):
        pose_strip(sg2, ws, basis, "pitch", [1.0])
    with pytest.raises(InputError, match="yaw or pitch"):
        component_pose_basis(sg2, DirectionBasis("sefa", torch.eye(sg2.w_dim)[:2], torch.ones(2), {}), {"roll": 0})


def test_stylegan3_input_transform(sg3, sg2):
    ws = ws_from_seeds(sg3, [4], 0.7)
    before = {k: v.clone() for k, v in sg3.named_buffers() if k.endswith("transform")}
    plain = transform_image(sg3, ws, (0.0, 0.0), 0.0)
    moved = transform_image(sg3, ws, (0.2, 0.0), 30.0)
    assert plain.shape == moved.shape and (plain - moved).abs().mean() > 1e-3
    assert all(torch.equal(v, dict(sg3.named_buffers())[k]) for k, v in before.items())   # put back
    with pytest.raises(InputError, match="StyleGAN3"):
        transform_image(sg2, ws_from_seeds(sg2, [4], 0.7), (0.1, 0.0), 0.0)
    with pytest.raises(InputError, match="Rotate"):
        transform_image(sg3, ws, (0.0, 0.0), 400.0)
