"""StyleGAN2: parity with rosinality's and NVlabs' official generators, official key sets,
StyleSpace, truncation and noise behaviour."""
import torch
import pytest

from shared.archs.stylegan2 import (StyleGAN2Config, StyleGAN2Generator, flat_to_styles, style_layout,
                                    styles_to_flat)
from shared.loaders.nvlabs_stylegan2 import rosinality_to_nvlabs, stylegan2_from_nvlabs
from shared.loaders.rosinality import generator_from_rosinality
from tests.parity import IMG_TOL, WS_TOL, load_vector, rel_err


@pytest.fixture(scope="module")
def ros(parity_dir):
    sd, t, meta = load_vector(parity_dir, "rosinality_sg2_g64")
    return generator_from_rosinality(sd, t["b.truncation_latent"][0]), t


@pytest.fixture(scope="module")
def nv(parity_dir):
    sd, t, meta = load_vector(parity_dir, "nvlabs_sg2_g64")
    ctor = dict(meta["constructor"])
    return stylegan2_from_nvlabs(ctor, sd, class_name=ctor.pop("class_name")), t, sd


@torch.no_grad()
def test_rosinality_parity_all_cases(ros):
    G, t = ros
    z, z2 = t["z"], t["c.z2"]
    ws, ws2 = G.mapping(z), G.mapping(z2)
    assert rel_err(G(z), t["a.img"]) <= IMG_TOL
    assert rel_err(G(z, truncation_psi=0.7), t["b.img"]) <= IMG_TOL
    mixed = torch.cat([ws[:, :4], ws2[:, 4:]], dim=1)
    assert rel_err(G.synthesis(mixed), t["c.img"]) <= IMG_TOL
    assert rel_err(G.synthesis(t["d.wplus"]), t["d.img"]) <= IMG_TOL
    assert rel_err(ws, t["e.latents"]) <= WS_TOL and rel_err(G.synthesis(ws), t["e.img"]) <= IMG_TOL
    # f: truncation is applied to each style before mixing
    wt, wt2 = G.mapping(z, truncation_psi=0.7), G.mapping(z2, truncation_psi=0.7)
    mixed_t = torch.cat([wt[:, :4], wt2[:, 4:]], dim=1)
    assert rel_err(mixed_t, t["f.latents"]) <= WS_TOL
    assert rel_err(G.synthesis(mixed_t), t["f.img"]) <= IMG_TOL
    assert rel_err(ws[:, 0], t["h.w"]) <= WS_TOL


@torch.no_grad()
def test_rosinality_parity_explicit_noise(parity_dir):
    sd, t, _ = load_vector(parity_dir, "rosinality_sg2_g64")
    G = generator_from_rosinality(sd)
    for i in range(9):
        getattr(G.noises, f"noise_{i}").copy_(t[f"g.noise_{i}"])
    assert rel_err(G(t["z"]), t["g.img"]) <= IMG_TOL


@torch.no_grad()
def test_nvlabs_parity_all_cases(nv):
    G, t, _ = nv
    z = t["z"]
    c = torch.zeros([2, 0])
    assert rel_err(G(z, c, truncation_psi=1, noise_mode="const"), t["a.img"]) <= IMG_TOL
    assert rel_err(G(z, c, truncation_psi=0.7, noise_mode="const"), t["b.img"]) <= IMG_TOL
    assert rel_err(G.mapping(z, c), t["c.ws"]) <= WS_TOL
    assert rel_err(G.mapping(z, c, truncation_psi=0.7), t["c.ws_trunc"]) <= WS_TOL
    assert rel_err(G.synthesis(t["d.ws"], noise_mode="const"), t["d.img"]) <= IMG_TOL
    assert rel_err(G(z, c, noise_mode="none"), t["e.img"]) <= IMG_TOL
    # The cases must actually differ (noise matters, truncation matters).
    assert rel_err(t["a.img"], t["e.img"]) > 0.01 and rel_err(t["a.img"], t["b.img"]) > 0.01


@torch.no_grad()
def test_nvlabs_shapes_inferred_without_kwargs(nv):
    G, t, sd = nv
    G2 = stylegan2_from_nvlabs(None, sd)
    assert G2.config.channels == G.config.channels and G2.config.mapping_layers == 2
    assert rel_err(G2(t["z"]), t["a.img"]) <= IMG_TOL


def test_nvlabs_names_round_trip(nv):
    G, _, sd = nv
    back = rosinality_to_nvlabs(G)
    assert set(back) == set(sd)
    for k in sd:
        assert torch.equal(back[k], sd[k]), k


def test_ffhq_1024_config_f_has_the_171_official_tensors():
    cfg = StyleGAN2Config.rosinality(1024, 512, 8, 2)
    with torch.device("meta"):
        G = StyleGAN2Generator(cfg)
    sd = G.state_dict()
    assert len(sd) == 171
    assert sum(v.numel() for v in sd.values()) == 33_166_492  # REFERENCE: 33.17M values
    expect = {
        "style.1.weight": (512, 512), "style.8.bias": (512,), "input.input": (1, 512, 4, 4),
        "conv1.conv.weight": (1, 512, 512, 3, 3), "conv1.conv.modulation.weight": (512, 512),
        "conv1.noise.weight": (1,), "conv1.activate.bias": (512,), "to_rgb1.conv.weight": (1, 3, 512, 1, 1),
        "to_rgb1.bias": (1, 3, 1, 1), "convs.0.conv.blur.kernel": (4, 4), "to_rgbs.7.upsample.kernel": (4, 4),
        "convs.15.conv.weight": (1, 32, 32, 3, 3), "convs.14.conv.weight": (1, 32, 64, 3, 3),
        "noises.noise_0": (1, 1, 4, 4), "noises.noise_16": (1, 1, 1024, 1024),
    }
    for k, shape in expect.items():
        assert tuple(sd[k].shape) == shape, k
    assert "style.0.weight" not in sd and "style.9.weight" not in sd
    assert G.num_ws == 18
    # NVlabs names through the converter's key table: every tensor has an official counterpart.
    with torch.device("meta"):
        nv_names = set(rosinality_to_nvlabs(G))
    assert "synthesis.b1024.torgb.weight" in nv_names and "mapping.fc7.weight" in nv_names
    assert "mapping.w_avg" in nv_names and "synthesis.b4.const" in nv_names


def test_stylespace_layout_at_1024():
    layout = style_layout(StyleGAN2Config.rosinality(1024))
    assert len(layout) == 26
    assert sum(l.channels for l in layout) == 9088
    assert sum(l.channels for l in layout if not l.is_torgb) == 6048
    assert sum(l.is_torgb for l in layout) == 9
    sizes = sorted(l.channels for l in layout)
    assert sizes.count(512) == 15 and sizes.count(256) == 3 and sizes.count(32) == 2


@torch.no_grad()
def test_stylespace_round_trip_and_single_channel_edit(ros):
    G, t = ros
    ws = G.mapping(t["z"])
    styles = G.synthesis.styles(ws)
    assert len(styles) == len(style_layout(G.config))
    assert rel_err(G.synthesis.from_styles(styles), G.synthesis(ws)) == 0.0
    flat = styles_to_flat(styles)
    back = flat_to_styles(flat, G.style_layers)
    assert all(torch.equal(a, b) for a, b in zip(styles, back))
    edited = [s.clone() for s in styles]
    edited[3][:, 5] += 10.0
    diff = (G.synthesis.from_styles(edited) - G.synthesis(ws)).abs().mean()
    assert diff > 1e-3
    with pytest.raises(ValueError):
        flat_to_styles(flat[:, :-1], G.style_layers)


@torch.no_grad()
def test_truncation_cutoff_and_w_avg(ros):
    G, t = ros
    z = t["z"]
    ws = G.mapping(z)
    wt = G.mapping(z, truncation_psi=0.5, truncation_cutoff=4)
    assert torch.allclose(wt[:, :4], G.w_avg + 0.5 * (ws[:, :4] - G.w_avg), atol=1e-6)
    assert torch.equal(wt[:, 4:], ws[:, 4:])
    assert torch.allclose(G.mapping(z, truncation_psi=0.0), G.w_avg.expand_as(ws))


@torch.no_grad()
def test_noise_modes(ros):
    G, t = ros
    ws = G.mapping(t["z"])
    const1, const2 = G.synthesis(ws, noise_mode="const"), G.synthesis(ws, noise_mode="const")
    assert torch.equal(const1, const2)
    r1 = G.synthesis(ws, noise_mode="random", generator=torch.Generator().manual_seed(1))
    r2 = G.synthesis(ws, noise_mode="random", generator=torch.Generator().manual_seed(1))
    r3 = G.synthesis(ws, noise_mode="random", generator=torch.Generator().manual_seed(2))
    assert torch.equal(r1, r2) and not torch.equal(r1, r3)
    none = G.synthesis(ws, noise_mode="none")
    assert rel_err(none, const1) > 1e-3
    with pytest.raises(ValueError, match="noise_mode"):
        G.synthesis(ws, noise_mode="bogus")


@torch.no_grad()
def test_class_conditional_mapping_and_resolutions():
    for res in (32, 128):
        cfg = StyleGAN2Config.nvlabs(z_dim=16, w_dim=16, c_dim=5, img_resolution=res, channel_base=256,
                                     channel_max=16, mapping_layers=2, conv_clamp=256)
        G = StyleGAN2Generator(cfg).init_random_(torch.Generator().manual_seed(0)).eval()
        z = torch.randn(3, 16, generator=torch.Generator().manual_seed(1))
        c = torch.eye(5)[:3]
        img = G(z, c)
        assert img.shape == (3, 3, res, res) and torch.isfinite(img).all()
        assert G.num_ws == 2 * res.bit_length() - 4
        assert not torch.allclose(G(z, torch.eye(5)[[1, 2, 3]]), img)
        with pytest.raises(ValueError, match="class-conditional"):
            G.mapping(z)


def test_init_random_is_deterministic():
    cfg = StyleGAN2Config.rosinality(32, 32, 2, channels={4: 32, 8: 32, 16: 16, 32: 16})
    a = StyleGAN2Generator(cfg).init_random_(torch.Generator().manual_seed(3))
    b = StyleGAN2Generator(cfg).init_random_(torch.Generator().manual_seed(3))
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_config_dict_round_trip():
    cfg = StyleGAN2Config.nvlabs(z_dim=64, w_dim=64, img_resolution=64, channel_base=2048, channel_max=64,
                                 c_dim=3, conv_clamp=256)
    assert StyleGAN2Config.from_dict(cfg.to_dict()) == cfg
    short = StyleGAN2Config.from_dict({"size": 64, "style_dim": 128, "n_mlp": 4,
                                       "channels": {"4": 128, "8": 128, "16": 128, "32": 64, "64": 32}})
    assert short.w_dim == 128 and short.channel_dict[64] == 32


@torch.no_grad()
def test_gradients_flow_for_inversion(ros):
    G, t = ros
    ws = G.mapping(t["z"][:1]).clone().requires_grad_(True)
    with torch.enable_grad():
        loss = G.synthesis(ws).square().mean()
        loss.backward()
    assert ws.grad is not None and ws.grad.abs().sum() > 0
