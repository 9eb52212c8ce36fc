"""Tests of shared/mixing.py: style mixing (StyleGAN paper Fig. 3) and interpolation, on tiny random generators."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from shared import latents as L
from shared import mixing as M
from shared.errors import InputError
from shared.generation import generate_images

torch.set_num_threads(1)


def test_mix_styles_takes_rows_from_the_right_source(G):
    a, b = L.ws_from_seeds(G, [1, 2]), L.ws_from_seeds(G, [5, 6])
    for name, rng in L.layer_ranges(G).items():
        mixed = M.mix_styles(G, a, b, name)
        other = [i for i in range(G.num_ws) if i not in rng.rows]
        assert torch.equal(mixed[:, list(rng.rows)], b[:, list(rng.rows)])
        assert torch.equal(mixed[:, other], a[:, other])
    assert torch.equal(M.mix_styles(G, a, b[:1], "fine")[1, -1], b[0, -1])  # one source broadcasts
    assert torch.equal(a, L.ws_from_seeds(G, [1, 2]))  # inputs untouched


def test_mix_styles_accepts_read_only_numpy_from_the_latent_store(sg2, recwarn):
    a, b = L.ws_from_seeds(sg2, [1]).numpy(), L.ws_from_seeds(sg2, [2]).numpy()
    a.flags.writeable = False
    mixed = M.mix_styles(sg2, a, b, "coarse")
    assert not [w for w in recwarn if "not writable" in str(w.message)]
    assert np.array_equal(mixed[0, 3:].numpy(), a[0, 3:]) and np.array_equal(mixed[0, :3].numpy(), b[0, :3])


def test_mix_styles_refuses_foreign_latents(sg2, sg3):
    with pytest.raises(InputError, match=r"needs W\+ codes of shape \[N, 8, 32\]"):
        M.mix_styles(sg2, L.ws_from_seeds(sg3, [0]), L.ws_from_seeds(sg2, [0]), "coarse")
    a = L.ws_from_seeds(sg2, [0, 1, 2])
    with pytest.raises(InputError, match="as many source latents"):
        M.mix_styles(sg2, a, a[:2], "coarse")


def test_style_mix_images_shape_range_and_determinism(G):
    a, b = L.ws_from_seeds(G, [1, 2]), L.ws_from_seeds(G, [5, 6])
    img = M.style_mix_images(G, a, b, "middle")
    assert img.shape == (2, 3, 32, 32) and img.dtype == torch.float32
    assert img.min() >= -1 and img.max() <= 1
    assert torch.equal(img, M.style_mix_images(G, a, b, "middle"))
    with torch.inference_mode():
        direct = G.synthesis(M.mix_styles(G, a, b, "middle"), noise_mode="const").clamp(-1, 1)
    torch.testing.assert_close(img, direct)
    with pytest.raises(InputError, match="Noise mode"):
        M.style_mix_images(G, a, b, "middle", noise_mode="loud")


def _spectrum(d: torch.Tensor) -> tuple[float, float]:
    """(energy at frequencies <= 2 cycles/image, energy at >= 8 cycles/image) of image differences."""
    power = torch.fft.fft2(d).abs().pow(2).sum(1)            # [N, H, W]
    f = torch.fft.fftfreq(d.shape[-1]).abs() * d.shape[-1]
    radius = torch.maximum(f[:, None], f[None, :])
    return (power * (radius <= 2)).sum().item(), (power * (radius >= 8)).sum().item()


def test_coarse_mix_moves_low_frequencies_more_than_fine_mix(sg2):
    """Over 16 pairs: the coarse mix changes the lowest frequencies about twice as much as the fine
    mix (1.9x measured), and the fine mix's change is relatively richer in high frequencies (1.45x)."""
    a, b = L.ws_from_seeds(sg2, range(16)), L.ws_from_seeds(sg2, range(100, 116))
    base = M.style_mix_images(sg2, a, a, "coarse")
    low_c, high_c = _spectrum(M.style_mix_images(sg2, a, b, "coarse") - base)
    low_f, high_f = _spectrum(M.style_mix_images(sg2, a, b, "fine") - base)
    assert low_c > 1.5 * low_f
    assert high_f / low_f > 1.2 * (high_c / low_c)


# ---- grid --------------------------------------------------------------------------------------
def test_grid_layout(G):
    src, dst = L.ws_from_seeds(G, [1, 2, 3]), L.ws_from_seeds(G, [7, 8])
    grid = M.style_mixing_grid(G, src, dst, "coarse")
    h = w = 32
    assert grid.sheet.dtype == np.uint8 and grid.sheet.shape == (3 * h, 4 * w, 3)
    assert grid.mixes.shape == (2, 3, 3, h, w) and grid.mixes_ws.shape == (2, 3, G.num_ws, G.w_dim)
    assert grid.rows == L.layer_ranges(G)["coarse"].rows
    assert (grid.sheet[:h, :w] == 255).all()  # blank corner

    def u8(x):
        return (x * 127.5 + 128).clamp(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()

    for j in range(3):  # sources across the top
        assert np.array_equal(grid.sheet[:h, (j + 1) * w:(j + 2) * w], u8(grid.sources[j]))
    for i in range(2):  # destinations down the side, mixes inside
        assert np.array_equal(grid.sheet[(i + 1) * h:(i + 2) * h, :w], u8(grid.destinations[i]))
        for j in range(3):
            assert np.array_equal(grid.sheet[(i + 1) * h:(i + 2) * h, (j + 1) * w:(j + 2) * w], u8(grid.mixes[i, j]))
            assert torch.equal(grid.mixes_ws[i, j], M.mix_styles(G, dst[i], src[j], "coarse")[0])
    torch.testing.assert_close(grid.mixes[1, 2], M.style_mix_images(G, dst[1], src[2], "coarse")[0])
    assert np.array_equal(grid.sheet, M.style_mixing_grid(G, src, dst, "coarse").sheet)


def test_grid_6x6_accepted_7x7_refused(sg2):
    six = L.ws_from_seeds(sg2, range(6))
    assert M.style_mixing_grid(sg2, six, six, "fine").sheet.shape == (7 * 32, 7 * 32, 3)
    seven = L.ws_from_seeds(sg2, range(7))
    with pytest.raises(InputError, match="at most 6 sources and 6 destinations; got 7 sources and 7 destinations"):
        M.style_mixing_grid(sg2, seven, seven, "fine")
    with pytest.raises(InputError, match="Unknown layer range"):
        M.style_mixing_grid(sg2, six[:2], six[:2], "ears")


# ---- interpolation -----------------------------------------------------------------------------
def test_slerp_endpoints_and_unit_norm():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(4, 64, generator=g), torch.randn(4, 64, generator=g)
    torch.testing.assert_close(M.slerp(a, b, 0.0), a)
    torch.testing.assert_close(M.slerp(a, b, 1.0), b)
    ua, ub = a / a.norm(dim=1, keepdim=True), b / b.norm(dim=1, keepdim=True)
    t = torch.linspace(0, 1, 11).reshape(11, 1, 1)
    path = M.slerp(ua[None], ub[None], t)                      # [11, 4, 64]
    torch.testing.assert_close(path.norm(dim=-1), torch.ones(11, 4))
    # constant angular speed: the angle to a grows linearly
    angle = torch.acos((path * ua).sum(-1).clamp(-1, 1))
    total = torch.acos((ua * ub).sum(-1))
    torch.testing.assert_close(angle, t.reshape(11, 1) * total, atol=2e-3, rtol=0)  # acos is ill-conditioned near 0
    # norms are lerped for non-unit vectors; parallel vectors fall back to lerp
    torch.testing.assert_close(M.slerp(a, b, 0.5).norm(dim=1), (a.norm(dim=1) + b.norm(dim=1)) / 2)
    torch.testing.assert_close(M.slerp(a, 2 * a, 0.5), 1.5 * a)


def test_lerp_midpoint_and_path():
    a, b = torch.zeros(3, 5), torch.ones(3, 5) * 4
    torch.testing.assert_close(M.lerp(a, b, 0.5), torch.full((3, 5), 2.0))
    keys = torch.stack([a, b, a])                               # [K=3, 3, 5] W+-shaped
    path = M.interpolation_path(keys, space="w+", frames_per_segment=4)
    assert path.shape == (9, 3, 5)
    torch.testing.assert_close(path[[0, 4, 8]], keys)
    torch.testing.assert_close(path[2], torch.full((3, 5), 2.0))
    zpath = M.interpolation_path(torch.randn(2, 8, generator=torch.Generator().manual_seed(1)), space="z",
                                 frames_per_segment=5)
    assert zpath.shape == (6, 8)


@pytest.mark.parametrize("kwargs, message", [
    (dict(space="q"), "Interpolation space must be one of z, w, w\\+"),
    (dict(frames_per_segment=0), "Frames per segment must be from 1 to 240"),
    (dict(frames_per_segment=241), "Frames per segment must be from 1 to 240"),
    (dict(rows="nose"), "Unknown layer range 'nose'"),
])
def test_interpolate_refuses_bad_arguments(sg2, kwargs, message):
    ws = L.ws_from_seeds(sg2, [0, 1])
    with pytest.raises(InputError, match=message):
        M.interpolate(sg2, ws, **{"space": "w+", "frames_per_segment": 2, **kwargs})


def test_interpolate_limits_counts_and_shapes(sg2):
    ws = L.ws_from_seeds(sg2, range(4))
    with pytest.raises(InputError, match="That makes 721 frames; at most 600"):
        M.interpolate(sg2, ws, space="w+", frames_per_segment=240)
    with pytest.raises(InputError, match="at least two latents"):
        M.interpolate(sg2, ws[:1], space="w+", frames_per_segment=2)
    with pytest.raises(InputError, match=r"Z latents must have shape \[K, 32\]"):
        M.interpolate(sg2, ws, space="z", frames_per_segment=2)


def test_interpolate_endpoints_and_determinism(G):
    seeds = [2, 9, 4]
    frames = M.interpolate(G, L.z_from_seeds(G, seeds), space="z", frames_per_segment=3, psi=0.8)
    assert frames.shape == (7, 3, 32, 32) and frames.min() >= -1 and frames.max() <= 1
    keys = generate_images(G, seeds, truncation_psi=0.8).images
    torch.testing.assert_close(frames[[0, 3, 6]], keys, atol=1e-4, rtol=0)
    assert torch.equal(frames, M.interpolate(G, L.z_from_seeds(G, seeds), space="z", frames_per_segment=3, psi=0.8))
    w = L.ws_from_seeds(G, seeds)
    wf = M.interpolate(G, w, space="w", frames_per_segment=2)
    torch.testing.assert_close(wf[[0, 2, 4]], generate_images(G, seeds).images, atol=1e-4, rtol=0)


def test_w_lerp_midpoint_frame(sg2):
    ws = L.ws_from_seeds(sg2, [0, 1])
    frames = M.interpolate(sg2, ws, space="w+", frames_per_segment=2)
    with torch.inference_mode():
        expect = sg2.synthesis(((ws[0] + ws[1]) / 2)[None], noise_mode="const").clamp(-1, 1)
    torch.testing.assert_close(frames[1:2], expect, atol=1e-5, rtol=0)


def test_per_range_interpolation_moves_only_those_rows(G, monkeypatch):
    """Only the fine rows follow the path; the frames equal synthesis of (key 0 with fine rows lerped)."""
    ws = L.ws_from_seeds(G, [3, 8])
    seen = []
    real = M._synthesize

    def spy(G_, ws_, **kw):
        seen.append(ws_.clone())
        return real(G_, ws_, **kw)

    monkeypatch.setattr(M, "_synthesize", spy)
    frames = M.interpolate(G, ws, space="w+", frames_per_segment=4, rows="fine")
    path = seen[-1]
    fine = list(L.layer_ranges(G)["fine"].rows)
    other = [i for i in range(G.num_ws) if i not in fine]
    assert path.shape == (5, G.num_ws, G.w_dim)
    assert torch.equal(path[:, other], ws[:1, other].expand(5, -1, -1))
    torch.testing.assert_close(path[-1, fine], ws[1, fine])
    torch.testing.assert_close(path[2, fine], (ws[0, fine] + ws[1, fine]) / 2)
    assert not torch.equal(frames[0], frames[-1])
    torch.testing.assert_close(frames[-1:], real(G, M.mix_styles(G, ws[0], ws[1], "fine"), noise_mode="const",
                                                 noise_seed=0), atol=1e-5, rtol=0)


# ---- export ------------------------------------------------------------------------------------
def test_mp4_decodes_with_the_right_frame_count(sg2, tmp_path):
    import imageio.v2 as imageio

    frames = M.interpolate(sg2, L.ws_from_seeds(sg2, [0, 1, 2]), space="w+", frames_per_segment=5)
    assert frames.shape[0] == 11
    path = M.write_video(frames, tmp_path / "walk.mp4", fps=12)
    with open(path, "rb") as fh:
        assert fh.read(12)[4:8] == b"ftyp"
    reader = imageio.get_reader(path, format="FFMPEG")
    try:
        meta = reader.get_meta_data()
        decoded = [f for f in reader]
    finally:
        reader.close()
    assert len(decoded) == 11
    assert decoded[0].shape == (32, 32, 3) and meta["fps"] == pytest.approx(12)
    # lossy, but close to what was written
    first = (frames[0] * 127.5 + 128).clamp(0, 255).permute(1, 2, 0).numpy()
    assert np.abs(decoded[0].astype(np.float32) - first).mean() < 20


def test_gif_frame_count_and_delay(sg2, tmp_path):
    from PIL import Image, ImageSequence

    frames = M.interpolate(sg2, L.ws_from_seeds(sg2, [0, 1]), space="w+", frames_per_segment=6)
    path = M.write_gif(frames, tmp_path / "walk.gif", fps=20)
    with Image.open(path) as im:
        assert im.format == "GIF" and im.size == (32, 32)
        durations = [f.info["duration"] for f in ImageSequence.Iterator(im)]
        assert im.n_frames == 7
        assert im.info.get("loop") == 0
    assert durations == [50] * 7


@pytest.mark.parametrize("writer, fps, message", [
    ("write_video", 0, "Frames per second must be from 1 to 60"),
    ("write_video", 61, "Frames per second must be from 1 to 60"),
    ("write_gif", 51, "Frames per second must be from 1 to 50"),
    ("write_gif", math.nan, "Frames per second"),
])
def test_writers_validate_fps(writer, fps, message, tmp_path):
    frames = torch.zeros(2, 3, 8, 8)
    with pytest.raises(InputError, match=message):
        getattr(M, writer)(frames, tmp_path / "x", fps=fps)


def test_writers_validate_frames(tmp_path):
    with pytest.raises(InputError, match="1 to 600 frames, not 0"):
        M.write_video(torch.zeros(0, 3, 8, 8), tmp_path / "x.mp4", fps=10)
    with pytest.raises(InputError, match="1 to 600 frames, not 601"):
        M.write_gif(np.zeros((601, 8, 8, 3), np.uint8), tmp_path / "x.gif", fps=10)
    with pytest.raises(InputError, match="Frames must be"):
        M.write_gif(torch.zeros(2, 8, 8), tmp_path / "x.gif", fps=10)
    with pytest.raises(InputError, match="even width and height"):
        M.write_video(np.zeros((2, 9, 8, 3), np.uint8), tmp_path / "x.mp4", fps=10)


def test_paper_figure_layout_takes_a_band_per_destination(sg2):
    """StyleGAN's figure 3: destinations take coarse, coarse, coarse, middle, middle, fine from the sources."""
    from shared.latents import resolve_rows
    from shared.mixing import PAPER_FIGURE_BANDS, style_mixing_grid

    src, dst = L.ws_from_seeds(sg2, [1, 2], 0.7), L.ws_from_seeds(sg2, list(range(10, 16)), 0.7)
    grid = style_mixing_grid(sg2, src, dst, None, per_destination=PAPER_FIGURE_BANDS)
    assert grid.mixes.shape[:2] == (6, 2)
    for i, band in enumerate(PAPER_FIGURE_BANDS):
        take = set(resolve_rows(sg2, band))
        assert grid.per_row[i] == tuple(sorted(take))
        for r in range(sg2.num_ws):
            want = src[:, r] if r in take else dst[i:i + 1, r].expand(2, -1)
            assert torch.equal(grid.mixes_ws[i, :, r], want)
    with pytest.raises(InputError, match="one row choice per destination"):
        style_mixing_grid(sg2, src, dst, None, per_destination=PAPER_FIGURE_BANDS[:3])
