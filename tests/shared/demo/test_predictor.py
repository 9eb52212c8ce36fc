"""The demo world's judge (shared/demo/predictor.py): architecture contracts on a random model,
save/load round trips, and its features as a perceptual loss. Its training and the shipped weights'
accuracy: tests/training/test_demo_predictor.py."""
import pytest
import torch

from shared.demo.predictor import CATEGORICAL, CONTINUOUS, Predictor, PredictorConfig, load_predictor
from shared.portraits import FACTORS, PART_NAMES, render, sample_factors
from training.demo.predictor import save_predictor

def _random_model(config: PredictorConfig = PredictorConfig(), seed: int = 0) -> Predictor:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return Predictor(config).eval()


def test_shapes_and_contract():
    model = _random_model()
    assert model.num_params() <= 1_500_000
    img = torch.rand(4, 3, 64, 64, generator=torch.Generator().manual_seed(1)) * 2 - 1
    p = model.predict(img)
    assert p.parts.shape == (4, 64, 64) and p.parts.dtype == torch.int64
    assert 0 <= int(p.parts.min()) and int(p.parts.max()) < len(PART_NAMES)
    assert p.features.shape == (4, model.config.feature_dim) and 128 <= p.features.shape[1] <= 256
    for s in CONTINUOUS:
        v = p.factors[s.name]
        assert v.shape == (4,) and v.dtype == torch.float32
        assert bool(((v >= s.low) & (v <= s.high)).all()), s.name
    for s in CATEGORICAL:
        assert p.factors[s.name].dtype == torch.int64
        assert p.probs[s.name].shape == (4, len(s.categories))
        torch.testing.assert_close(p.probs[s.name].sum(1), torch.ones(4))
        assert torch.equal(p.probs[s.name].argmax(1), p.factors[s.name])
    assert p.factors.to_vector().shape == (4, len(FACTORS))
    out = model(img)
    assert out.part_logits.shape == (4, len(PART_NAMES), 64, 64)
    with pytest.raises(ValueError, match="64, 64"):
        model.predict(torch.zeros(2, 3, 32, 32))


def test_save_load_round_trip(tmp_path):
    cfg = PredictorConfig(enc_channels=(16, 32, 48, 64), dec_channels=(32, 24, 16, 8),
                          global_dim=64, part_dim=32, feature_dim=128)
    model = _random_model(cfg, seed=3)
    img = render(sample_factors(3, 5)).img
    ref = model.predict(img)
    save_predictor(model, tmp_path / "p32.safetensors", dtype=torch.float32)
    loaded = load_predictor(tmp_path / "p32.safetensors")
    assert loaded.config == cfg and not loaded.training
    got = loaded.predict(img)
    torch.testing.assert_close(got.features, ref.features, rtol=1e-5, atol=1e-5)
    assert torch.equal(got.parts, ref.parts)
    save_predictor(model, tmp_path / "p16.safetensors")  # default storage: float16
    half = load_predictor(tmp_path / "p16.safetensors").predict(img)
    torch.testing.assert_close(half.features, ref.features, rtol=0, atol=0.05)
    with pytest.raises(FileNotFoundError, match="No predictor weights"):
        load_predictor(tmp_path / "missing.safetensors")


def test_predictor_features_make_a_perceptual_loss():
    """The offline perceptual loss: zero on identical images, small for the same portrait slightly
    shifted in colour, large for another portrait, differentiable in the input, any input size."""
    from shared.demo.predictor import PredictorFeatures
    from shared.inversion import FeatureLoss
    loss = FeatureLoss(PredictorFeatures(load_predictor()), "features:demo-predictor")
    a, b = render(sample_factors(2, 31), 128).img.clone().split(1)
    assert float(loss(a, a)) == pytest.approx(0, abs=1e-6)
    near, far = float(loss(a, (a + 0.05).clamp(-1, 1))), float(loss(a, b))
    assert near < 0.2 * far, (near, far)
    x = a.clone().requires_grad_(True)
    loss(x, b).sum().backward()
    assert x.grad is not None and float(x.grad.abs().sum()) > 0
    assert not any(p.requires_grad for p in loss.parameters())
    loss.train()
    assert not loss.extractor.training   # batch-norm statistics stay the trained ones
