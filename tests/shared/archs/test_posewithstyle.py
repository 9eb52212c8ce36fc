"""Pose with Style (shared/archs/posewithstyle.py, shared/densepose.py, shared/posewithstyle.py,
shared/loaders/posewithstyle.py) against the official parity vectors, plus official-layout checkpoints,
safe loading, IUV conventions and the sentences users get for wrong inputs.

Parity data: ../shared/parity/posewithstyle_g256 and posewithstyle_ccm128 (README), made by
BadourAlBahar/pose-with-style@f344f3b `model.py: Generator` and `util/coordinate_completion_model.py` on
CPU in float32; weights from the README's recipe, the UV lookup table from the formula in the JSON.
"""
from __future__ import annotations

import hashlib
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from shared import registry
from shared.archs.posewithstyle import CoordinateCompletion, PoseWithStyleConfig, PoseWithStyleGenerator
from shared.densepose import check_iuv, partial_coordinates, sample_by_uv, union_silhouette, uv_grid
from shared.errors import CheckpointError, InputError
from shared.loaders.native import save_native
from shared.loaders.posewithstyle import (config_from_state_dict, generator_from_state_dict, load_ccm,
                                          load_posewithstyle, load_uv_lookup, load_uv_parts)
from shared.model_cache import load_record
from shared.posewithstyle import appearance_input, image_from_uint8, repose, silhouette_from_uint8, transfer_garment
from tests.parity import IMG_TOL, load_vector, recipe_state_dict
from tests.tinypws import synthetic_lookup

TINY = PoseWithStyleConfig(size=64, ngf=8, channels=((16, 32), (32, 24), (64, 16)), modulation_hidden=16)


@pytest.fixture(scope="module")
def lookup() -> torch.Tensor:
    return torch.from_numpy(synthetic_lookup())


def _max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    assert a.shape == b.shape
    return float((a - b).abs().max())


# ---- parity: the reposing generator ----------------------------------------------------------------
@pytest.fixture(scope="module")
def g256(parity_dir: Path):
    stored, tensors, meta = load_vector(parity_dir, "posewithstyle_g256")
    sd = recipe_state_dict([e for e in meta["weights"]["entries"] if e["seed"] is not None])
    sd.update(stored)  # the blur / upsample kernels
    assert len(sd) == meta["weights"]["num_entries"]
    G = generator_from_state_dict(sd)  # the official key layout, through the loader
    return G, tensors, meta


def _appearance(tensors: dict) -> torch.Tensor:
    """Built exactly as the README (and inference.py) say, independently of shared/posewithstyle.py."""
    img = (tensors["image_u8"].float() / 255 - 0.5) / 0.5
    sil = tensors["sil_u8"].numpy().astype(np.float64) / 255
    sil = 1 - (1 - sil) * (tensors["iuv_source_u8"].numpy()[:, :1] == 0)
    return torch.cat([img, torch.from_numpy(sil).float(), tensors["coor_f16"].float()], 1)


def _noise(G: PoseWithStyleGenerator, seed: int) -> list[torch.Tensor]:
    return [torch.from_numpy(np.random.RandomState(seed + i).standard_normal(s).astype(np.float32))
            for i, s in enumerate(G.config.noise_shapes())]


def test_synthetic_lookup_is_the_one_the_vectors_used(g256, lookup):
    _, _, meta = g256
    assert hashlib.sha256(lookup.numpy().tobytes()).hexdigest() == meta["lookup_table"]["sha256_of_float64_bytes"]


def test_input_preparation_gives_the_vectors_appearance(g256):
    """image_from_uint8 / silhouette_from_uint8 / union_silhouette / appearance_input (what `repose` runs)
    rebuild the vector's appearance tensor bit for bit from the stored uint8 files."""
    _, t, _ = g256
    iuv = check_iuv(t["iuv_source_u8"])
    image = image_from_uint8(t["image_u8"][0].permute(1, 2, 0).numpy())
    sil = union_silhouette(silhouette_from_uint8(t["sil_u8"][0, 0].numpy()), iuv)
    assert torch.equal(appearance_input(image, sil, t["coor_f16"].float()), _appearance(t))


def test_state_dict_layout_equals_the_official_one(g256):
    G, _, meta = g256
    own = {k: list(v.shape) for k, v in G.state_dict().items()}
    assert own == {e["key"]: e["shape"] for e in meta["weights"]["entries"]}
    assert G.config == PoseWithStyleConfig.official(256)
    assert G.config.num_noise == meta["derived"]["num_layers (noise inputs)"]


def test_appearance_styles_match_official(g256, lookup):
    G, t, _ = g256
    with torch.no_grad():
        styles = G.styles(_appearance(t), t["iuv_target_u8"].float(), lookup)
    assert len(styles) == 5 and [s.shape[-1] for s in styles] == [16, 32, 64, 128, 256]
    expected = t["a.style0"]
    assert _max_diff(styles[0], expected) <= IMG_TOL * max(1.0, float(expected.abs().max()))


@pytest.mark.slow  # two 256 px forward passes, about 20 s each on 2 cores
def test_images_match_official(g256, lookup):
    G, t, _ = g256
    appearance, noise = _appearance(t), _noise(G, 63000)
    for case, pose in (("a", t["iuv_target_u8"]), ("b", t["iuv_source_u8"])):
        with torch.no_grad():
            img = G(appearance, pose.float(), lookup, noise=noise)
        expected = t[f"{case}.img"]
        diff, tol = _max_diff(img, expected), IMG_TOL * max(1.0, float(expected.abs().max()))
        assert diff <= tol, f"{case}.img: max|diff| {diff:.3g} > {tol:.3g}"


def test_512_layout_has_the_extra_scale():
    """The official 512 branch: conv6 / conv61 / conv53 in the appearance encoder, a fifth ResBlock in the
    pose encoder, five upsampling blocks and eleven noise inputs (model.py, size == 512)."""
    cfg = PoseWithStyleConfig.official(512)
    with torch.device("meta"):
        G = PoseWithStyleGenerator(cfg)
    sd = G.state_dict()
    for key, shape in {"appearance_encoder.conv6.conv2.1.weight": [512, 512, 3, 3],
                       "appearance_encoder.conv61.weight": [512, 513, 1, 1],
                       "appearance_encoder.conv53.weight": [512, 512, 3, 3],
                       "appearance_encoder.conv13.weight": [64, 512, 3, 3],
                       "appearance_encoder.conv43.weight": [512, 512, 3, 3],
                       "pose_encoder.convs.5.conv2.1.weight": [512, 512, 3, 3],
                       "convs.9.conv.weight": [1, 64, 64, 3, 3], "to_rgbs.4.conv.gamma.0.weight": [128, 64, 1, 1]
                       }.items():
        assert list(sd[key].shape) == shape, key
    assert "appearance_encoder.conv63.weight" not in sd and "convs.10.conv.weight" not in sd
    assert cfg.num_noise == 11 and cfg.noise_shapes()[-1] == (1, 1, 512, 512)
    assert config_from_state_dict(sd) == cfg


# ---- parity: the coordinate-completion model --------------------------------------------------------
def test_ccm_matches_official(parity_dir: Path):
    _, t, meta = load_vector(parity_dir, "posewithstyle_ccm128")
    sd = recipe_state_dict(meta["weights"]["entries"])
    C = CoordinateCompletion()
    own = {k: list(v.shape) for k, v in C.state_dict().items()}
    assert own == {e["key"]: e["shape"] for e in meta["weights"]["entries"]}
    C.load_state_dict(sd)
    C.eval()
    for case in "ab":
        with torch.no_grad():
            out = C(t[f"{case}.uv_coor"], t[f"{case}.uv_mask"])
        assert _max_diff(out, t[f"{case}.complete_coor"]) <= 1e-4, case


# ---- official-layout checkpoints, native files, safe loading -----------------------------------------
def _randomise(module: torch.nn.Module, seed: int) -> torch.nn.Module:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(0.1 * torch.randn(p.shape, generator=g))
        for name, b in module.named_buffers():
            if name.endswith("running_var"):
                b.copy_(1 + 0.1 * torch.rand(b.shape, generator=g))
            elif name.endswith("running_mean"):
                b.copy_(0.1 * torch.randn(b.shape, generator=g))
    return module.eval()


@pytest.fixture(scope="module")
def tiny() -> PoseWithStyleGenerator:
    return _randomise(PoseWithStyleGenerator(TINY), 1)


@pytest.fixture(scope="module")
def ccm() -> CoordinateCompletion:
    return _randomise(CoordinateCompletion(), 2)


def _tiny_inputs(seed: int = 0, size: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    """(appearance [1, 6, S, S], pose [1, 3, S, S]) with a body in the middle."""
    g = torch.Generator().manual_seed(seed)
    pose = torch.zeros(1, 3, size, size)
    pose[:, 0, 12:52, 16:48] = torch.randint(1, 25, (40, 32), generator=g).float()
    pose[:, 1:, 12:52, 16:48] = torch.randint(0, 256, (2, 40, 32), generator=g).float()
    appearance = torch.cat([torch.rand(1, 4, size, size, generator=g) * 2 - 1,
                            torch.rand(1, 2, size, size, generator=g) * 2 - 1], 1)
    return appearance, pose


def test_official_layout_checkpoint_round_trip(tiny, ccm, lookup, tmp_path: Path):
    appearance, pose = _tiny_inputs()
    noise = tiny.make_noise(1, torch.Generator().manual_seed(3))
    path = tmp_path / "posewithstyle.pt"
    # what the official train.py writes: generator, discriminator, averaged generator, optimiser state
    torch.save({"g": tiny.state_dict(), "d": {"convs.0.0.weight": torch.zeros(1)}, "g_ema": tiny.state_dict(),
                "g_optim": {"state": {}, "param_groups": [{"lr": 0.002}]}}, path)
    G = load_posewithstyle(path)
    assert G.config == TINY and not G.training and not any(p.requires_grad for p in G.parameters())
    with torch.no_grad():
        assert torch.equal(G(appearance, pose, lookup, noise=noise), tiny(appearance, pose, lookup, noise=noise))
    ccm_path = tmp_path / "CCM_epoch50.pt"
    torch.save({"g": ccm.state_dict()}, ccm_path)
    C = load_ccm(ccm_path)
    x, m = torch.rand(1, 2, 48, 48) * 2 - 1, (torch.rand(1, 1, 48, 48) > 0.5).float()
    with torch.no_grad():
        assert torch.equal(C(x, m), ccm(x, m))


def test_native_round_trip(tiny, ccm, lookup, tmp_path: Path):
    appearance, pose = _tiny_inputs()
    noise = tiny.make_noise(1, torch.Generator().manual_seed(4))
    G = load_posewithstyle(save_native(tiny, tmp_path / "g.safetensors", source="test"))
    C = load_ccm(save_native(ccm, tmp_path / "c.safetensors"))
    x, m = torch.rand(1, 2, 48, 48), torch.ones(1, 1, 48, 48)
    with torch.no_grad():
        assert torch.equal(G(appearance, pose, lookup, noise=noise), tiny(appearance, pose, lookup, noise=noise))
        assert torch.equal(C(x, m), ccm(x, m))
    with pytest.raises(CheckpointError, match="not the Pose with Style generator"):
        load_posewithstyle(tmp_path / "c.safetensors")
    with pytest.raises(CheckpointError, match="not the coordinate-completion model"):
        load_ccm(tmp_path / "g.safetensors")


_RAN: list[str] = []


def _payload(message: str) -> None:
    _RAN.append(message)


class _Malicious:
    def __reduce__(self):
        return _payload, ("code from the checkpoint ran",)


def test_malicious_pickles_are_refused(tmp_path: Path):
    path = tmp_path / "posewithstyle.pt"
    torch.save({"g_ema": {"x": torch.zeros(1)}, "hook": _Malicious()}, path)
    with pytest.raises(CheckpointError, match="refuse to unpickle"):
        load_posewithstyle(path)
    with pytest.raises(CheckpointError, match="refuse to unpickle"):
        load_ccm(path)
    npy = tmp_path / "dp_uv_lookup_256.npy"
    np.save(npy, np.array([_Malicious()], dtype=object), allow_pickle=True)
    with pytest.raises(CheckpointError, match="refuse to unpickle"):
        load_uv_lookup(npy)
    bare = tmp_path / "bare.pt"
    bare.write_bytes(pickle.dumps({"g_ema": _Malicious()}))
    with pytest.raises(CheckpointError):
        load_posewithstyle(bare)
    assert _RAN == []


def test_wrong_files_get_sentences(tiny, ccm, tmp_path: Path, rosinality_ckpt: Path):
    gen, cc = tmp_path / "posewithstyle.pt", tmp_path / "CCM_epoch50.pt"
    torch.save({"g_ema": tiny.state_dict()}, gen)
    torch.save({"g": ccm.state_dict()}, cc)
    with pytest.raises(CheckpointError, match="coordinate-completion model .CCM_epoch50.pt., not the reposing"):
        load_posewithstyle(cc)
    with pytest.raises(CheckpointError, match="reposing generator, not the coordinate-completion"):
        load_ccm(gen)
    with pytest.raises(CheckpointError, match="holds a StyleGAN2 generator"):
        load_posewithstyle(rosinality_ckpt)
    html = tmp_path / "page.pt"
    html.write_text("<!DOCTYPE html><html>Google Drive - Virus scan warning</html>")
    with pytest.raises(CheckpointError, match="web page"):
        load_posewithstyle(html)
    with pytest.raises(CheckpointError, match="web page"):
        load_uv_lookup(html)
    (tmp_path / "empty.pt").write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty"):
        load_ccm(tmp_path / "empty.pt")
    broken = {k: v for k, v in tiny.state_dict().items() if not k.startswith("to_rgb1.")}
    torch.save({"g_ema": broken}, gen)
    with pytest.raises(CheckpointError, match="missing"):
        load_posewithstyle(gen)
    np.save(tmp_path / "small.npy", np.zeros((24, 128, 128, 2)))
    with pytest.raises(CheckpointError, match=r"dp_uv_lookup_256.npy is float \[24, 256, 256, 2\]"):
        load_uv_lookup(tmp_path / "small.npy")
    with pytest.raises(CheckpointError, match="2-D array of part indices"):
        load_uv_parts(tmp_path / "small.npy")


def test_lookup_and_parts_files_load(tmp_path: Path):
    np.save(tmp_path / "dp_uv_lookup_256.npy", synthetic_lookup())
    table = load_uv_lookup(tmp_path / "dp_uv_lookup_256.npy")
    assert table.dtype == torch.float64 and table.shape == (24, 256, 256, 2)
    np.save(tmp_path / "uv_space_parts.npy", np.arange(24, dtype=np.int64).repeat(4).reshape(8, 12))
    parts = load_uv_parts(tmp_path / "uv_space_parts.npy")
    assert parts.shape == (1, 1, 8, 12) and parts.dtype == torch.float32 and float(parts.max()) == 23


# ---- IUV conventions --------------------------------------------------------------------------------
def test_a_known_surface_point_lands_where_expected(lookup):
    """Pixel (row 3, col 5) with I=8, U=40, V=200 is looked up as T[7, 200, 40] = (a, b) and sampled at
    grid (2a - 1, 2(1 - b) - 1); a texture that stores its own pixel centres returns that place."""
    iuv = torch.zeros(1, 3, 8, 8)
    iuv[0, :, 3, 5] = torch.tensor([8.0, 40.0, 200.0])
    grid = uv_grid(iuv, lookup)
    a = (7 % 6 + 40.5 / 256) / 6
    b = (7 // 6 + 200.5 / 256) / 4
    assert torch.allclose(grid[0, :, 3, 5], torch.tensor([2 * a - 1, 2 * (1 - b) - 1]), atol=1e-7)
    assert grid[0, :, 0, 0].abs().max() == 0  # background: grid 0 (masked later by the body mask)
    res = 256
    cols, rows = torch.meshgrid(torch.arange(res).float(), torch.arange(res).float(), indexing="xy")
    texture = torch.stack([cols, rows])[None]  # [1, 2, R, R]: x, y of each texel
    big = torch.zeros(1, 3, res, res)
    big[0, :, 100, 50] = torch.tensor([8.0, 40.0, 200.0])
    out = sample_by_uv(texture, uv_grid(big, lookup))
    x, y = a * res - 0.5, (1 - b) * res - 0.5  # align_corners=False: texel centres at (i + 0.5) / R
    assert torch.allclose(out[0, :, 100, 50], torch.tensor([x, y]), atol=1e-3)


def test_partial_coordinates_put_each_pixel_at_its_uv_point():
    """A 3 x 3 patch of the torso (I=2): the UV-space map holds each pixel's image (x, y) at (row (1 - b)(R - 1),
    column a (R - 1)), and its mirror (the torso keeps its part, V flipped: back seen as front) is filled too."""
    table = synthetic_lookup()
    iuv = np.zeros((16, 16, 3), np.uint8)
    for dy in range(3):
        for dx in range(3):
            iuv[5 + dy, 7 + dx] = (2, 100 + 20 * dx, 60 + 20 * dy)
    R = 64
    coords, mask = partial_coordinates(iuv, table, R)
    a, b = table[1, 80, 120]  # the centre pixel (row 6, column 8): U = 120, V = 80
    row, col = (1 - b) * (R - 1), a * (R - 1)
    assert mask[round(row), round(col)] == 1
    # the centre is a data point of the linear interpolation; check the neighbours' bilinear mix is near
    assert abs(coords[int(np.floor(row)), int(np.floor(col)), 0] - 8) < 1.0
    assert abs(coords[int(np.floor(row)), int(np.floor(col)), 1] - 6) < 1.0
    a1, b1 = table[1, 255 - 80, 120]  # the mirror: same part, V flipped
    assert mask[round((1 - b1) * (R - 1)), round(a1 * (R - 1))] == 1


def test_grid_interpolation_equals_scipy_griddata():
    """util/dp2coor.py's griddata('linear'), 'nearest' where NaN, on lattice points with duplicates (as IUV
    values give), reproduced by rasterising the same Delaunay triangles."""
    from scipy.interpolate import griddata

    from shared.densepose import _interpolate_on_grid
    rng = np.random.RandomState(0)
    points = np.round(rng.rand(150, 2) * 20 * 3) / 3 + 4  # on a 1/3-pixel lattice, with duplicates
    values = rng.randn(150, 2)
    ours = _interpolate_on_grid(points, values, 32)
    gy, gx = np.mgrid[0:32, 0:32]
    for k in range(2):
        ref = griddata((points[:, 0], points[:, 1]), values[:, k], (gy, gx), method="linear")
        near = griddata((points[:, 0], points[:, 1]), values[:, k], (gy, gx), method="nearest")
        ref[np.isnan(ref)] = near[np.isnan(ref)]
        assert np.abs(ours[:, :, k] - ref).max() < 1e-9


def test_union_silhouette_is_the_official_formula():
    iuv = torch.zeros(1, 3, 4, 4)
    iuv[0, 0, 1, 1] = 3
    sil = torch.full((1, 1, 4, 4), 0.25)
    out = union_silhouette(sil, iuv)
    assert out[0, 0, 1, 1] == 1 and out[0, 0, 0, 0] == 0.25 and out.dtype == torch.float32


# ---- sentences for wrong inputs ----------------------------------------------------------------------
def test_iuv_mistakes_get_sentences():
    iuv = torch.zeros(1, 3, 8, 8)
    iuv[0, 0, 2:4, 2:4] = 5
    iuv[0, 1:, 2:4, 2:4] = 128
    assert check_iuv(iuv).shape == (1, 3, 8, 8)
    with pytest.raises(InputError, match="V, U, I channel order"):
        check_iuv(iuv.flip(1))
    with pytest.raises(InputError, match="whole numbers 0..255"):
        check_iuv(iuv / 255)
    with pytest.raises(InputError, match="no body pixel"):
        check_iuv(torch.zeros(1, 3, 8, 8))
    with pytest.raises(InputError, match="3 channels"):
        check_iuv(torch.zeros(1, 2, 8, 8))
    with pytest.raises(InputError, match="missing"):
        check_iuv(None)
    with pytest.raises(InputError, match="one channel of the IUV map's size"):
        union_silhouette(torch.ones(1, 1, 4, 4), iuv)


def _person(size: int = 64, width: int = 56, seed: int = 0):
    """(image, silhouette, iuv) from uint8 arrays, as the tab would pass them."""
    rng = np.random.RandomState(seed)
    img = rng.randint(0, 256, (size, width, 3)).astype(np.uint8)
    sil = np.zeros((size, width), np.uint8)
    sil[8:60, 12:44] = 255
    iuv = np.zeros((size, width, 3), np.uint8)
    iuv[12:56, 16:40, 0] = rng.randint(1, 25, (44, 24))
    iuv[12:56, 16:40, 1:] = rng.randint(0, 256, (44, 24, 2))
    return image_from_uint8(img), silhouette_from_uint8(sil), torch.from_numpy(iuv).permute(2, 0, 1)[None].float()


def test_repose_end_to_end(tiny, ccm, lookup):
    image, sil, iuv = _person()
    _, _, target = _person(seed=1)
    r1 = repose(tiny, ccm, image, sil, iuv, target, lookup, generator=torch.Generator().manual_seed(5))
    r2 = repose(tiny, ccm, image, sil, iuv, target, lookup, generator=torch.Generator().manual_seed(5))
    assert r1.image.shape == (1, 3, 64, 56) and r1.square.shape == (1, 3, 64, 64)
    assert r1.coordinates.shape == (1, 2, 64, 64) and r1.coordinates.abs().max() <= 1  # tanh
    assert torch.equal(r1.square, r2.square) and torch.isfinite(r1.square).all()
    assert torch.equal(r1.image, r1.square[:, :, :, 4:60])  # centred: 4 columns each side
    noise = [torch.zeros(s) for s in tiny.config.noise_shapes()]
    r3 = repose(tiny, ccm, image, sil, iuv, target, lookup, noise=noise)
    assert not torch.equal(r3.square, r1.square)


def test_repose_mistakes_get_sentences(tiny, ccm, lookup):
    image, sil, iuv = _person()
    with pytest.raises(InputError, match="works at 64 px"):
        repose(tiny, ccm, torch.zeros(1, 3, 32, 32), sil, iuv, iuv, lookup)
    with pytest.raises(InputError, match="source IUV map is"):
        repose(tiny, ccm, image, sil, iuv[:, :, :, :20], iuv, lookup)
    with pytest.raises(InputError, match="target IUV map must be 64 px high"):
        repose(tiny, ccm, image, sil, iuv, torch.cat([iuv, iuv], 2), lookup)
    with pytest.raises(InputError, match="silhouette is missing"):
        repose(tiny, ccm, image, None, iuv, iuv, lookup)
    with pytest.raises(InputError, match="lookup table must be a float array of shape"):
        repose(tiny, ccm, image, sil, iuv, iuv, lookup[:, :128])
    with pytest.raises(InputError, match="in \\[-1, 1\\]"):
        repose(tiny, ccm, image * 255, sil, iuv, iuv, lookup)
    with pytest.raises(InputError, match="Pass 5 noise maps"):
        repose(tiny, ccm, image, sil, iuv, iuv, lookup, noise=[torch.zeros(1, 1, 16, 16)])
    with pytest.raises(InputError, match="Choose the part"):
        transfer_garment(tiny, ccm, image, sil, iuv, image, sil, iuv, lookup, torch.zeros(1, 1, 8, 8), part="shoes")


def test_garment_transfer_takes_the_chosen_part(tiny, ccm, lookup):
    """With a part map that is all face (0-based 22), 'face' takes everything from the garment photo and
    'upper_body' nothing: the outputs equal the generator run on the garment's or the person's appearance."""
    image, sil, iuv = _person()
    g_image, g_sil, g_iuv = _person(seed=2)
    parts = torch.full((1, 1, 32, 32), 22.0)
    noise = [torch.zeros(s) for s in tiny.config.noise_shapes()]
    face = transfer_garment(tiny, ccm, image, sil, iuv, g_image, g_sil, g_iuv, lookup, parts, part="face", noise=noise)
    upper = transfer_garment(tiny, ccm, image, sil, iuv, g_image, g_sil, g_iuv, lookup, parts, part="upper_body",
                             noise=noise)
    assert face.part_mask.min() == 1 and upper.part_mask.max() == 0
    own = repose(tiny, ccm, image, sil, iuv, iuv, lookup, noise=noise)
    assert torch.allclose(upper.square, own.square, atol=1e-5)
    assert not torch.allclose(face.square, own.square, atol=1e-3)


# ---- registry -----------------------------------------------------------------------------------------
def test_records_are_local_files_with_drive_links_and_load_through_the_cache(tiny, ccm, tmp_path: Path):
    ids = registry.ids(family="posewithstyle")
    assert ids == ["posewithstyle-deepfashion-512", "posewithstyle-ccm-deepfashion", "densepose-uv-lookup-256",
                   "densepose-uv-parts"]
    gen = registry.get(ids[0])
    assert gen.companions == {"ccm": ids[1], "uv-lookup": ids[2], "uv-parts": ids[3]} and "reposing" in gen.tasks
    for card in map(registry.get, ids):
        assert card.local_sources and not card.hub_sources and card.license.startswith("MIT")
        assert card.manual_url.startswith("https://drive.google.com/")
    torch.save({"g_ema": tiny.state_dict()}, tmp_path / "posewithstyle.pt")
    torch.save({"g": ccm.state_dict()}, tmp_path / "CCM_epoch50.pt")
    np.save(tmp_path / "dp_uv_lookup_256.npy", synthetic_lookup())
    assert isinstance(load_record(gen, tmp_path / "posewithstyle.pt"), PoseWithStyleGenerator)
    assert isinstance(load_record(registry.get(ids[1]), tmp_path / "CCM_epoch50.pt"), CoordinateCompletion)
    assert load_record(registry.get(ids[2]), tmp_path / "dp_uv_lookup_256.npy").shape == (24, 256, 256, 2)


def test_load_generator_points_a_pose_with_style_file_to_its_loader(tmp_path):
    from shared.archs.posewithstyle import CCMConfig, CoordinateCompletion
    from shared.errors import CheckpointError
    from shared.loaders import load_generator

    path = tmp_path / "CCM_epoch50.pt"
    torch.save({"g": CoordinateCompletion(CCMConfig()).state_dict()}, path)
    with pytest.raises(CheckpointError, match="Pose with Style checkpoint"):
        load_generator(path)
