"""EG3D (shared/archs/eg3d.py) against the official parity vector, plus camera conventions, safe
loading of official-layout pickles, the native format and the registry records.

Parity data: ../shared/parity/eg3d_triplane_nr32.{json,safetensors}, made by
NVlabs/eg3d@7cf1fd1 `eg3d/training/triplane.py: TriPlaneGenerator` on CPU in float32. Weights come
from the README's recipe; the renderer's uniform draws are stored with each case and passed in.
"""
from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
import torch

from shared.archs.eg3d import (EG3DConfig, EG3DGenerator, RayDraws, camera_vector, fov_to_intrinsics, look_at_pose,
                               ray_bundle)
from shared.errors import CheckpointError, UnsafePickleError
from shared.loaders import load_generator
from shared.loaders.native import save_native
from shared.loaders.nvlabs_eg3d import config_from_eg3d_kwargs, eg3d_from_nvlabs
from tests.parity import IMG_TOL, WS_TOL, load_vector, recipe_state_dict
from tests.shared.loaders.nvlabs_pickles import EasyDict, write_nvlabs_pickle

NAME = "eg3d_triplane_nr32"
DEPTH_TOL = 1e-4  # README: absolute on image_depth


@pytest.fixture(scope="module")
def vector(parity_dir: Path):
    """(official state dict from the recipe + stored filters, tensors, json)."""
    stored, tensors, meta = load_vector(parity_dir, NAME)
    entries = meta["weights"]["entries"]
    recipe = [e for e in entries if e["seed"] is not None]
    sd = recipe_state_dict([e for e in recipe if e["shape"]])
    for e in (e for e in recipe if not e["shape"]):  # 0-d noise strengths: numpy gives scalars there
        (one,) = recipe_state_dict([{**e, "shape": [1]}]).values()
        sd[e["key"]] = one.reshape(())
    sd = {e["key"]: sd[e["key"]] if e["seed"] is not None else stored[e["key"]] for e in entries}
    assert len(sd) == meta["weights"]["num_entries"]
    return sd, tensors, meta


def _constructor(meta: dict) -> dict:
    ctor = dict(meta["constructor"])
    ctor.pop("class_name")
    return ctor


@pytest.fixture(scope="module")
def G(vector) -> EG3DGenerator:
    sd, _, meta = vector
    nrr = meta["derived"]["neural_rendering_resolution"]
    cfg = config_from_eg3d_kwargs(_constructor(meta), {"neural_rendering_resolution": nrr})
    return eg3d_from_nvlabs(cfg, sd)


def _check(ours: torch.Tensor, expected: torch.Tensor, tol: float, name: str) -> None:
    assert ours.shape == expected.shape, name
    diff = float((ours - expected).abs().max())
    assert diff <= tol, f"{name}: max|diff| {diff:.3g} > {tol:.3g}"


def _img_tol(t: torch.Tensor) -> float:
    return IMG_TOL * max(1.0, float(t.abs().max()))


def _check_render(out, tensors: dict, case: str, features: bool = False) -> None:
    for key in ("image", "image_raw") + (("feature_image",) if features else ()):
        _check(getattr(out, key), tensors[f"{case}.{key}"], _img_tol(tensors[f"{case}.{key}"]), f"{case}.{key}")
    _check(out.image_depth, tensors[f"{case}.image_depth"], DEPTH_TOL, f"{case}.image_depth")


def _draws(tensors: dict, case: str) -> RayDraws:
    return RayDraws(tensors[f"{case}.u_stratified"], tensors[f"{case}.u_importance"])


# ---- parity --------------------------------------------------------------------------------------

def test_config_from_official_constructor(G: EG3DGenerator, vector) -> None:
    cfg = G.config
    assert (cfg.img_resolution, cfg.neural_rendering_resolution, cfg.sr_module) == (128, 32, "SuperresolutionHybrid2X")
    assert (cfg.depth_resolution, cfg.depth_resolution_importance) == (12, 12)
    assert (cfg.conv_clamp, cfg.sr_conv_clamp, cfg.c_scale, cfg.avg_camera_pivot) == (None, 256, 1.0, (0.0, 0.0, 0.2))
    assert G.num_ws == vector[2]["derived"]["num_ws"] == 14


@torch.no_grad()
def test_parity_forward_camera_a(G: EG3DGenerator, vector) -> None:
    _, t, _ = vector
    out = G(t["z"], t["a.c"], truncation_psi=1, noise_mode="const", draws=_draws(t, "a"))
    _check_render(out, t, "a", features=True)


@torch.no_grad()
def test_parity_mapping_and_synthesis(G: EG3DGenerator, vector) -> None:
    _, t, _ = vector
    ws = G.mapping(t["z"], t["a.c"], truncation_psi=0.7, truncation_cutoff=14)
    _check(ws, t["b.ws"], WS_TOL * max(1.0, float(t["b.ws"].abs().max())), "b.ws")
    ws1 = G.mapping(t["z"], t["a.c"], truncation_psi=1)
    _check(ws1, t["b.ws_psi1"], WS_TOL * max(1.0, float(t["b.ws_psi1"].abs().max())), "b.ws_psi1")
    planes = G.planes(t["b.ws"])  # one backbone pass for both cameras, as an orbit renders
    for case, cam in (("b", "b.c"), ("c", "a.c")):
        _check_render(G.render(planes, t[cam], t["b.ws"], draws=_draws(t, case)), t, case)


@torch.no_grad()
def test_parity_decoder_points(G: EG3DGenerator, vector) -> None:
    _, t, _ = vector
    out = G.sample_mixed(t["e.coords"], t["e.dirs"], t["b.ws"], noise_mode="const")
    _check(out.sigma, t["e.sigma"], _img_tol(t["e.sigma"]), "e.sigma")
    _check(out.rgb, t["e.rgb"], _img_tol(t["e.rgb"]), "e.rgb")


# ---- cameras -------------------------------------------------------------------------------------

def test_look_at_pose_matches_gen_samples(vector) -> None:
    """The stored cameras are gen_samples.py's LookAtPoseSampler + FOV_to_intrinsics(18.837)."""
    _, t, meta = vector
    cams = meta["cameras"]
    k = fov_to_intrinsics(cams["fov_deg"])
    assert k[0, 0].item() == pytest.approx(4.2634, abs=1e-4) and k[0, 2].item() == 0.5
    for case, key in (("a.c", "camera_A"), ("b.c", "camera_B")):
        yaw, pitch = meta["derived"][key]["yaw"], meta["derived"][key]["pitch"]
        c = camera_vector(look_at_pose(yaw, pitch, cams["pivot"], cams["radius"], batch_size=2), k)
        _check(c, t[case], 1e-7, case)


def _project(point: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """Normalised image coordinates (u right, v down) of a world point for camera c [25]."""
    cam2world, k = c[:16].reshape(4, 4).double(), c[16:].reshape(3, 3).double()
    p = torch.linalg.inv(cam2world) @ torch.cat([point.double(), torch.ones(1, dtype=torch.float64)])
    uvw = k @ p[:3]
    return uvw[:2] / uvw[2]


def test_camera_convention_known_points_project_where_expected() -> None:
    """Front camera (yaw = pitch = 0) on the +z axis at radius 2.7 looking at (0, 0, 0.2): the pivot is
    the image centre, world +x is image right, world +y is image up, at focal f = 4.2634 (18.837 deg)."""
    pivot, radius = torch.tensor([0.0, 0.0, 0.2]), 2.7
    c = camera_vector(look_at_pose(0.0, 0.0, pivot, radius), fov_to_intrinsics(18.837))[0]
    f, dist = float(c[16]), radius - 0.2
    assert torch.allclose(c[[3, 7, 11]], torch.tensor([0.0, 0.0, radius]), atol=1e-6)  # camera position
    assert torch.allclose(_project(pivot, c), torch.tensor([0.5, 0.5], dtype=torch.float64), atol=1e-6)
    right_up = pivot + torch.tensor([0.1, 0.2, 0.0])
    want = torch.tensor([0.5 + f * 0.1 / dist, 0.5 - f * 0.2 / dist], dtype=torch.float64)
    assert torch.allclose(_project(right_up, c), want, atol=1e-6)
    # u = 0.5 + 4.2634 * 0.1 / 2.5 = 0.6705, v = 0.5 - 4.2634 * 0.2 / 2.5 = 0.1589: pixel (column 42, row 10) at 64 px
    assert [math.floor(64 * float(v)) for v in want] == [42, 10]
    # positive yaw moves the camera towards +x, positive pitch moves it down (world -y)
    turned = look_at_pose(0.3, 0.2, pivot, radius)[0, :3, 3]
    assert turned[0] > 0 and turned[1] < 0


def test_ray_bundle_passes_through_the_pixel_it_belongs_to() -> None:
    """Ray k of the bundle (row k // R, column k % R) re-projects to that pixel's centre."""
    res = 8
    c = camera_vector(look_at_pose(0.35, -0.15, (0, 0, 0.2), 2.7), fov_to_intrinsics(18.837))
    origins, dirs = ray_bundle(c[:, :16].reshape(1, 4, 4), c[:, 16:].reshape(1, 3, 3), res)
    for k in (0, 5, 27, 63):
        point = origins[0, k] + 2.5 * dirs[0, k]
        want = torch.tensor([(k % res + 0.5) / res, (k // res + 0.5) / res], dtype=torch.float64)
        assert torch.allclose(_project(point, c[0]), want, atol=1e-5)
    assert torch.allclose(dirs.norm(dim=-1), torch.ones(1, res * res))


def test_generator_camera_helper_uses_the_model_pivot(G: EG3DGenerator, vector) -> None:
    _, t, _ = vector
    _check(G.camera(0.0, 0.0, batch_size=2), t["a.c"], 1e-7, "G.camera")


# ---- loading ---------------------------------------------------------------------------------------

_PLAIN = {  # EG3D's undecorated modules, pickled under their own global names
    "OSGDecoder": "training.triplane.OSGDecoder",
    "ImportanceRenderer": "training.volumetric_rendering.renderer.ImportanceRenderer",
    "MipRayMarcher2": "training.volumetric_rendering.ray_marcher.MipRayMarcher2",
    "RaySampler": "training.volumetric_rendering.ray_sampler.RaySampler",
}


def _official_tree(sd: dict[str, torch.Tensor], meta: dict, renderer_name: str | None = None):
    """An nn.Module tree with the official TriPlaneGenerator's class names, attributes and state
    dict, for write_nvlabs_pickle. Returns (module, plain_modules)."""
    classes: dict[str, type] = {}

    def make(name: str) -> torch.nn.Module:
        return classes.setdefault(name, type(name, (torch.nn.Module,), {}))()

    root = make("TriPlaneGenerator")
    root.renderer = make("ImportanceRenderer")
    root.renderer.ray_marcher = make("MipRayMarcher2")
    root.renderer.plane_axes = torch.eye(3).repeat(3, 1, 1)
    root.ray_sampler = make("RaySampler")
    root.decoder = make("OSGDecoder")
    root.decoder.net = torch.nn.Sequential(make("FullyConnectedLayer"), torch.nn.Softplus(),
                                           make("FullyConnectedLayer"))
    root.neural_rendering_resolution = meta["derived"]["neural_rendering_resolution"]
    root.rendering_kwargs = dict(meta["constructor"]["rendering_kwargs"])
    root._last_planes = None
    for key, value in sd.items():
        *path, leaf = key.split(".")
        mod = root
        for i, part in enumerate(path):
            if not hasattr(mod, part):
                mod.add_module(part, make(_official_class(".".join(path[: i + 1]))))
            mod = getattr(mod, part)
        if leaf in ("resample_filter", "noise_const", "w_avg"):
            mod.register_buffer(leaf, value.clone())
        else:
            mod.register_parameter(leaf, torch.nn.Parameter(value.clone()))
    plain = {classes[n]: (renderer_name if n == "ImportanceRenderer" and renderer_name else q)
             for n, q in _PLAIN.items()}
    return root, plain


def _official_class(path: str) -> str:
    last = path.rsplit(".", 1)[-1]
    named = {"backbone": "Generator", "backbone.mapping": "MappingNetwork", "backbone.synthesis": "SynthesisNetwork",
             "superresolution": "SuperresolutionHybrid2X", "superresolution.block0": "SynthesisBlockNoUp",
             "superresolution.block1": "SynthesisBlock"}
    if path in named:
        return named[path]
    if re.fullmatch(r"backbone\.synthesis\.b\d+", path):
        return "SynthesisBlock"
    if last in ("conv0", "conv1"):
        return "SynthesisLayer"
    if last == "torgb":
        return "ToRGBLayer"
    assert last in ("affine", "embed") or re.fullmatch(r"fc\d+", last), path
    return "FullyConnectedLayer"


def _write_official(path: Path, vector, *, kwargs_extra: dict | None = None, renderer_name: str | None = None,
                    module_src: str | None = None) -> Path:
    sd, _, meta = vector
    tree, plain = _official_tree(sd, meta, renderer_name)
    kwargs = _constructor(meta)
    kwargs["mapping_kwargs"] = EasyDict(kwargs["mapping_kwargs"])
    kwargs["sr_kwargs"] = EasyDict({**kwargs["sr_kwargs"], **(kwargs_extra or {})})
    return write_nvlabs_pickle(path, {"G_ema": ("training.triplane.TriPlaneGenerator", kwargs, tree)},
                               plain_modules=plain, module_src=module_src)


@pytest.fixture(scope="module")
def official_pickle(vector, tmp_path_factory) -> Path:
    marker = tmp_path_factory.getbasetemp() / "eg3d-src-ran"
    src = f"import pathlib\npathlib.Path({str(marker)!r}).touch()\n"
    path = _write_official(tmp_path_factory.mktemp("eg3d") / "network-snapshot.pkl", vector, module_src=src)
    return path


def test_official_pickle_loads_safely_by_content(official_pickle: Path, G: EG3DGenerator) -> None:
    loaded = load_generator(official_pickle)
    assert isinstance(loaded, EG3DGenerator) and loaded.config == G.config
    assert not (official_pickle.parents[1] / "eg3d-src-ran").exists()  # embedded source never ran
    ours, theirs = G.state_dict(), loaded.state_dict()
    assert list(ours) == list(theirs) and all(torch.equal(ours[k], theirs[k]) for k in ours)
    assert torch.equal(loaded.w_avg, G.w_avg)


def test_malicious_eg3d_pickles_are_refused(vector, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"

    class Call:
        def __reduce__(self):
            return (__import__("os").system, (f"touch {marker}",))

    path = _write_official(tmp_path / "evil.pkl", vector, kwargs_extra={"hook": Call()})
    with pytest.raises(UnsafePickleError, match=r"'(posix|nt)\.system'"):
        load_generator(path)
    # a renderer class outside EG3D's allow-list is a global like any other: refused, never built
    path = _write_official(tmp_path / "renderer.pkl", vector, renderer_name="training.custom.Renderer")
    with pytest.raises(UnsafePickleError, match=re.escape("'training.custom.Renderer'")):
        load_generator(path)
    assert not marker.exists()


def test_bare_official_weights_need_their_constructor(vector, tmp_path: Path) -> None:
    from safetensors.torch import save_file
    sd, _, _ = vector
    path = tmp_path / "eg3d.safetensors"
    save_file({k: v.contiguous() for k, v in sd.items()}, str(path))
    with pytest.raises(CheckpointError, match="EG3D weights without their constructor"):
        load_generator(path)


def test_unsupported_variants_are_refused_with_a_sentence(vector) -> None:
    ctor = _constructor(vector[2])
    auto = {**ctor, "rendering_kwargs": {**ctor["rendering_kwargs"], "ray_start": "auto", "ray_end": "auto"}}
    with pytest.raises(CheckpointError, match="automatic box bounds"):
        config_from_eg3d_kwargs(auto)
    other_sr = {**ctor, "rendering_kwargs": {**ctor["rendering_kwargs"], "superresolution_module": "x.MySR"}}
    with pytest.raises(CheckpointError, match="super-resolution module"):
        config_from_eg3d_kwargs(other_sr)
    with pytest.raises(CheckpointError, match="lack 'backbone.synthesis.b4.const'|lack"):
        eg3d_from_nvlabs(config_from_eg3d_kwargs(ctor), {k: v for k, v in vector[0].items() if "b4.const" not in k})


@torch.no_grad()
def test_native_round_trip(G: EG3DGenerator, tmp_path: Path) -> None:
    path = save_native(G, tmp_path / "eg3d.safetensors", source="parity recipe")
    loaded = load_generator(path)
    assert isinstance(loaded, EG3DGenerator) and loaded.config == G.config
    assert EG3DConfig.from_dict(G.config.to_dict()) == G.config
    assert torch.equal(loaded.w_avg, G.w_avg)
    ours, theirs = G.state_dict(), loaded.state_dict()
    assert all(torch.equal(ours[k], theirs[k]) for k in ours) and set(ours) == set(theirs)
    z = torch.randn(1, G.z_dim, generator=torch.Generator().manual_seed(3))
    c = G.camera(0.2, -0.1)
    points = torch.rand(1, 16, 3, generator=torch.Generator().manual_seed(4)) - 0.5
    ws = G.mapping(z, c)
    assert torch.equal(loaded.sample_mixed(points, None, ws).sigma, G.sample_mixed(points, None, ws).sigma)


@torch.no_grad()
def test_render_shapes_generator_draws_and_errors(G: EG3DGenerator) -> None:
    ws = G.mapping(torch.randn(1, G.z_dim, generator=torch.Generator().manual_seed(0)), G.camera())
    planes = G.planes(ws)
    out1 = G.render(planes, G.camera(), ws, neural_rendering_resolution=8, generator=torch.Generator().manual_seed(5))
    out2 = G.render(planes, G.camera(), ws, neural_rendering_resolution=8, generator=torch.Generator().manual_seed(5))
    assert out1.image.shape == (1, 3, 128, 128) and out1.image_depth.shape == (1, 1, 8, 8)
    assert torch.equal(out1.image, out2.image) and torch.equal(out1["image_raw"], out1.image_raw)
    mid = RayDraws.midpoints(1, 64, G.config.depth_resolution, G.config.depth_resolution_importance)
    depth = G.render(planes, G.camera(), ws, neural_rendering_resolution=8, draws=mid).image_depth
    assert G.config.ray_start <= float(depth.min()) and float(depth.max()) <= G.config.ray_end
    with pytest.raises(ValueError, match=r"camera vector \[N=1, 25\]"):
        G.mapping(torch.zeros(1, G.z_dim), torch.zeros(1, 16))
    with pytest.raises(ValueError, match="draws.stratified"):
        G.render(planes, G.camera(), ws, neural_rendering_resolution=4, draws=mid)


# ---- registry ---------------------------------------------------------------------------------------

def test_registry_records_build_eg3d_through_the_model_cache(official_pickle: Path, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    from dataclasses import fields

    from shared import registry
    from shared.model_cache import ModelCache

    cards = [c for c in registry.cards() if c.arch == "eg3d"]
    assert {c.id for c in cards} >= {"eg3d-ffhq-512", "eg3d-afhqcats-512"}
    names = {f.name for f in fields(EG3DConfig)}
    for card in cards:
        assert set(card.arch_config) <= names and card.manual_url and card.env_var.startswith("HUB_MODEL_PATH_")
    monkeypatch.setenv(cards[0].env_var, str(official_pickle))
    monkeypatch.setenv("HUB_CACHE_DIR", str(tmp_path / "cache"))
    G = ModelCache("cpu", 1 << 30, cache_dir=tmp_path / "cache", offline=True).generator(cards[0].id)
    assert isinstance(G, EG3DGenerator) and G.config.neural_rendering_resolution == 32


def test_an_eg3d_record_pointed_at_another_generator_says_so(vector, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """The tri-plane backbone alone is an ordinary NVlabs StyleGAN2 snapshot (96-channel images)."""
    from shared import registry
    from shared.model_cache import ModelCache

    sd, _, meta = vector
    backbone = _official_tree(sd, meta)[0].backbone
    kwargs = {"z_dim": 512, "c_dim": 25, "w_dim": 512, "img_resolution": 256, "img_channels": 96,
              "mapping_kwargs": EasyDict(num_layers=2), "channel_base": 4096, "channel_max": 32, "conv_clamp": None}
    path = write_nvlabs_pickle(tmp_path / "stylegan2.pkl",
                               {"G_ema": ("training.networks_stylegan2.Generator", kwargs, backbone)})
    monkeypatch.setenv(registry.get("eg3d-afhqcats-512").env_var, str(path))
    with pytest.raises(CheckpointError, match=r"stylegan2 generator, but 'eg3d-afhqcats-512' is an EG3D model; "
                                              r"point HUB_MODEL_PATH_EG3D_AFHQCATS_512 at the EG3D pickle"):
        ModelCache("cpu", 1 << 30, cache_dir=tmp_path / "cache", offline=True).generator("eg3d-afhqcats-512")
