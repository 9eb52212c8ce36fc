"""Your photo in 3D (`shared.inversion.view3d`) on the tiny random-weight EG3D and StyleNeRF of
tests/tiny3d.py: the 2D interface over a camera, the camera search, the W fit, PTI's private copy,
cancellation and input checks."""
from __future__ import annotations

import pytest
import torch

from shared.errors import InputError
from shared.inversion import InversionCancelled, OptimizeOptions, PTIOptions
from shared.inversion.view3d import Photo3DOptions, ViewGenerator, invert_in_3d
from shared.rendering3d import View, latent_for_seed, render_image
from tests.tiny3d import tiny_eg3d, tiny_stylenerf

torch.set_num_threads(1)
FAST = OptimizeOptions(steps=40, lr=0.05, space="w", w_avg_samples=300)


@pytest.fixture(scope="module")
def nerf():
    return tiny_stylenerf()


@pytest.fixture(scope="module")
def eg3d():
    return tiny_eg3d()


def _photo(G, seed: int, view: View) -> tuple[torch.Tensor, torch.Tensor]:
    ws = latent_for_seed(G, seed, 0.7)
    with torch.no_grad():
        return render_image(G, ws, view)[0], ws


@pytest.mark.parametrize("which", ["nerf", "eg3d"])
def test_view_generator_is_the_3d_render_at_its_camera(which, request):
    G = request.getfixturevalue(which)
    ws = latent_for_seed(G, 1, 0.7)
    wrapped = ViewGenerator(G, View(20, -5))
    with torch.no_grad():
        assert torch.equal(wrapped.synthesis(ws), render_image(G, ws, View(20, -5))[0])
        z = torch.randn([2, G.z_dim], generator=torch.Generator().manual_seed(0))
        assert wrapped.mapping(z).shape == (2, G.num_ws, G.w_dim)
    assert (wrapped.num_ws, wrapped.w_dim, wrapped.img_resolution) == (G.num_ws, G.w_dim, G.img_resolution)


def test_w_fit_at_the_given_camera_beats_the_mean_face(nerf):
    view = View(15, 0)
    target, _ = _photo(nerf, 3, view)
    with torch.no_grad():
        start = render_image(nerf, nerf.w_avg.reshape(1, 1, -1).expand(1, nerf.num_ws, -1), view)[0]
    start_psnr = float(10 * torch.log10(4 / (start - target).square().mean()))
    fit = invert_in_3d(nerf, target, Photo3DOptions(latent=FAST, view=view), seed=0)
    assert fit.view == view and fit.camera_losses == {} and not fit.tuned and fit.generator is nerf
    assert fit.ws.shape == (1, nerf.num_ws, nerf.w_dim)
    assert torch.allclose(fit.ws, fit.ws[:, :1].expand_as(fit.ws))      # W, one vector on every row
    assert fit.psnr > start_psnr + 3, (fit.psnr, start_psnr)
    assert "camera given" in fit.summary() and "W fit" in fit.summary()


def test_camera_search_finds_the_photos_yaw(nerf):
    target, _ = _photo(nerf, 3, View(15, 0))
    options = Photo3DOptions(latent=FAST, search_steps=5, candidates=((-15.0, 0.0), (0.0, 0.0), (15.0, 0.0)))
    fit = invert_in_3d(nerf, target, options, seed=0)
    assert set(fit.camera_losses) == {(-15.0, 0.0), (0.0, 0.0), (15.0, 0.0)}
    assert (fit.view.yaw, fit.view.pitch) == (15.0, 0.0)
    assert "camera estimated" in fit.summary()


def test_pti_tunes_a_private_copy_and_gets_closer(eg3d):
    view = View(0, 0)
    target, _ = _photo(eg3d, 5, view)
    before = {k: v.clone() for k, v in eg3d.state_dict().items()}
    plain = invert_in_3d(eg3d, target, Photo3DOptions(latent=FAST, view=view), seed=0)
    tuned = invert_in_3d(eg3d, target, Photo3DOptions(latent=FAST, view=view,
                                                      pti=PTIOptions(steps=15, locality=False,
                                                                     perceptual_threshold=0)), seed=0)
    assert tuned.tuned and tuned.generator is not eg3d and tuned.psnr > plain.psnr
    assert all(torch.equal(v, eg3d.state_dict()[k]) for k, v in before.items())   # shared G untouched
    # the tuned copy renders other views of the same person
    with torch.no_grad():
        side = render_image(tuned.generator, tuned.ws, View(30, 0))[0]
    assert side.shape == target.shape and torch.isfinite(side).all()


def test_stop_cancels(nerf):
    target, _ = _photo(nerf, 3, View())
    calls = []

    def stop() -> bool:
        calls.append(1)
        return len(calls) > 3

    with pytest.raises(InversionCancelled):
        invert_in_3d(nerf, target, Photo3DOptions(latent=FAST, view=View()), should_stop=stop)


def test_refuses_2d_models_and_wrong_shapes(nerf, sg2):
    with pytest.raises(InputError, match="StyleNeRF or EG3D"):
        invert_in_3d(sg2, torch.zeros(1, 3, sg2.img_resolution, sg2.img_resolution))
    with pytest.raises(InputError, match=r"\[1, 3, 32, 32\]"):
        invert_in_3d(nerf, torch.zeros(1, 3, 64, 64))
    with pytest.raises(InputError):
        Photo3DOptions(candidates=())
    with pytest.raises(InputError, match="Yaw"):
        invert_in_3d(nerf, torch.zeros(1, 3, 32, 32), Photo3DOptions(view=View(200, 0)))
