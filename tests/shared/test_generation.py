"""The Generate action as a pure function (shared.generation.generate_images): seeding, truncation,
conditioning, transforms, shapes, progress.

Tiny StyleGAN2 / StyleGAN3 generators with fixed random weights stand in for real checkpoints:
the behaviour under test (seeding, truncation, conditioning, transforms, shapes) does not depend
on trained weights.
"""
from __future__ import annotations

import threading

import pytest
import torch

from shared.archs.stylegan2 import StyleGAN2Config, StyleGAN2Generator
from shared.archs.stylegan3 import StyleGAN3Config, StyleGAN3Generator
from shared.errors import InputError
from shared.generation import GenerationResult, generate_images

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def sg2() -> StyleGAN2Generator:
    # mapping_lr=1: the test does not depend on how init_random_ scales mapping weights.
    cfg = StyleGAN2Config.from_dict({"size": 16, "style_dim": 32, "n_mlp": 2, "mapping_lr": 1.0,
                                     "channels": {"4": 32, "8": 32, "16": 16}})
    G = StyleGAN2Generator(cfg).init_random_(torch.Generator().manual_seed(1)).eval()
    with torch.no_grad():
        G.w_avg.copy_(torch.randn(G.w_dim, generator=torch.Generator().manual_seed(2)))
        for name, p in G.named_parameters():
            if name.endswith("noise.weight"):  # init leaves noise strengths at 0, as in training
                p.fill_(0.5)
    return G


@pytest.fixture(scope="module")
def sg2_cond() -> StyleGAN2Generator:
    cfg = StyleGAN2Config.nvlabs(z_dim=16, w_dim=16, img_resolution=16, c_dim=3, channel_base=256,
                                 channel_max=32, mapping_layers=2, mapping_lr=1.0)
    return StyleGAN2Generator(cfg).init_random_(torch.Generator().manual_seed(3)).eval()


@pytest.fixture(scope="module")
def sg3() -> StyleGAN3Generator:
    cfg = StyleGAN3Config(z_dim=16, w_dim=16, img_resolution=16, channel_base=256, channel_max=16,
                          num_layers=4, num_critical=2, mapping_layers=2, mapping_lr=1.0)
    return StyleGAN3Generator(cfg, generator=torch.Generator().manual_seed(4)).eval()


def differs(a: torch.Tensor, b: torch.Tensor) -> bool:
    """Clearly different, not just rounding apart."""
    return (a - b).abs().mean().item() > 1e-2


# ---- generate_images ---------------------------------------------------------------------------------
def test_shapes_ranges_and_types(sg2):
    r = generate_images(sg2, [0, 1, 2], truncation_psi=0.7)
    assert isinstance(r, GenerationResult)
    assert r.images.shape == (3, 3, 16, 16) and r.images.dtype == torch.float32
    assert r.ws.shape == (3, sg2.num_ws, sg2.w_dim) and r.ws.dtype == torch.float32
    assert r.images.device.type == "cpu" and r.ws.device.type == "cpu"
    assert r.images.min() >= -1 and r.images.max() <= 1
    assert r.images.std() > 0.05  # not blank
    assert differs(r.images[0], r.images[1]) and differs(r.ws[0], r.ws[1])
    assert r.seeds == (0, 1, 2) and r.seconds > 0


def test_deterministic_per_seed_and_independent_of_the_batch(sg2):
    a = generate_images(sg2, [3, 7])
    b = generate_images(sg2, [3, 7])
    alone = generate_images(sg2, [7])
    assert torch.equal(a.images, b.images) and torch.equal(a.ws, b.ws)
    assert torch.equal(a.images[1], alone.images[0])
    assert differs(a.images[0], a.images[1])


def test_z_comes_from_a_generator_seeded_with_the_seed(sg2):
    seed = 123456
    z = torch.randn([1, sg2.z_dim], generator=torch.Generator().manual_seed(seed))
    expected = sg2.mapping(z, None, truncation_psi=0.5)
    r = generate_images(sg2, [seed], truncation_psi=0.5)
    torch.testing.assert_close(r.ws, expected, rtol=0, atol=0)


def test_truncation_psi_and_cutoff(sg2):
    r = generate_images(sg2, [0, 1], truncation_psi=0.0)
    torch.testing.assert_close(r.ws, sg2.w_avg.expand_as(r.ws))
    torch.testing.assert_close(r.images[0], r.images[1])  # the average image, twice
    cut = generate_images(sg2, [0], truncation_psi=0.0, truncation_cutoff=2)
    torch.testing.assert_close(cut.ws[0, :2], sg2.w_avg.expand(2, -1))
    assert differs(cut.ws[0, 2:], sg2.w_avg.expand(sg2.num_ws - 2, -1))
    for bad in (0, sg2.num_ws + 1):
        with pytest.raises(InputError, match=f"from 1 to {sg2.num_ws}, not {bad}"):
            generate_images(sg2, [0], truncation_cutoff=bad)


def test_noise_modes(sg2):
    const = generate_images(sg2, [0], noise_mode="const").images
    none = generate_images(sg2, [0], noise_mode="none").images
    rand_a = generate_images(sg2, [0, 1], noise_mode="random").images
    rand_b = generate_images(sg2, [0], noise_mode="random").images
    assert differs(const, none)
    assert torch.equal(rand_a[:1], rand_b)  # random noise is drawn from the seed: repeatable
    assert differs(rand_b, const)
    with pytest.raises(InputError, match="Noise mode"):
        generate_images(sg2, [0], noise_mode="loud")


def test_class_labels(sg2, sg2_cond):
    with pytest.raises(InputError, match="unconditional"):
        generate_images(sg2, [0], class_idx=1)
    with pytest.raises(InputError, match="choose a class label from 0 to 2"):
        generate_images(sg2_cond, [0])
    for bad in (3, -1):
        with pytest.raises(InputError, match="out of range"):
            generate_images(sg2_cond, [0], class_idx=bad)
    c0 = generate_images(sg2_cond, [0], class_idx=0)
    c1 = generate_images(sg2_cond, [0], class_idx=1)
    assert differs(c0.ws, c1.ws) and differs(c0.images, c1.images)
    assert torch.equal(c0.images, generate_images(sg2_cond, [0], class_idx=0).images)


def test_translate_and_rotate_only_for_stylegan3(sg2):
    with pytest.raises(InputError, match="only apply to StyleGAN3"):
        generate_images(sg2, [0], translate=(0.1, 0.0))
    with pytest.raises(InputError, match="only apply to StyleGAN3"):
        generate_images(sg2, [0], rotate=10.0)


def test_stylegan3_transform_moves_the_image_and_leaves_the_model_as_it_was(sg3):
    before = sg3.synthesis.input.transform.clone()
    plain = generate_images(sg3, [0, 1])
    moved = generate_images(sg3, [0, 1], translate=(0.25, -0.1), rotate=30.0)
    assert moved.images.shape == plain.images.shape == (2, 3, 16, 16)
    assert differs(moved.images, plain.images)
    assert torch.equal(moved.ws, plain.ws)  # only the synthesis input moved
    assert torch.equal(sg3.synthesis.input.transform, before)
    assert torch.equal(generate_images(sg3, [0, 1]).images, plain.images)


def test_stylegan3_transform_is_not_seen_by_concurrent_calls(sg3):
    expected = {t: generate_images(sg3, [5], translate=(t, 0.0)).images for t in (0.0, 0.3)}
    results: list[tuple[float, torch.Tensor]] = []
    errors: list[BaseException] = []

    def work(t: float) -> None:
        try:
            for _ in range(3):
                results.append((t, generate_images(sg3, [5], translate=(t, 0.0)).images))
        except BaseException as e:  # noqa: BLE001 - reported by the main thread
            errors.append(e)

    threads = [threading.Thread(target=work, args=(t,)) for t in (0.0, 0.3, 0.0, 0.3)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors
    assert len(results) == 12
    for t, img in results:
        assert torch.equal(img, expected[t])


def test_progress_is_reported_per_seed(sg2):
    calls: list[tuple[float, str]] = []
    generate_images(sg2, [4, 5, 6], progress=lambda f, text: calls.append((f, text)))
    fractions = [f for f, _ in calls]
    assert fractions == sorted(fractions) and fractions[0] == 0 and fractions[-1] == 1.0
    assert len(calls) == 4 and "seed 4" in calls[0][1]


def test_bad_seed_values(sg2):
    with pytest.raises(InputError, match="No seeds"):
        generate_images(sg2, [])
    with pytest.raises(InputError, match="Seeds go from 0"):
        generate_images(sg2, [-1])
    with pytest.raises(InputError, match="finite"):
        generate_images(sg2, [0], truncation_psi=float("nan"))
