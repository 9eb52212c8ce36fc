"""The demo world's small CLIP (shared/demo/clip.py): the shipped bundle's header and record,
tokenizer and preprocessing contracts, gradients through preprocessing and the image tower (the
text-editing tab optimises through them). Its training and zero-shot accuracy:
tests/training/test_demo_clip.py."""
import json

import pytest
import torch

from shared.demo.clip import DEFAULT_PATH, make_preprocess
from shared.portraits import render, sample_factors
from training.demo.clip import EVAL_SEED, ZERO_SHOT_TARGETS

def test_bundle_header_and_record():
    from safetensors import safe_open
    assert DEFAULT_PATH.stat().st_size <= 8_000_000
    with safe_open(str(DEFAULT_PATH), "pt") as fh:
        meta = fh.metadata()
        assert fh.get_tensor("visual.conv1.weight").dtype == torch.float16
    cfg = json.loads(meta["open_clip_config"])
    assert cfg["vision_cfg"]["image_size"] in (64, 128) and cfg["text_cfg"]["vocab_size"] == 49408
    record = json.loads(DEFAULT_PATH.with_suffix(".json").read_text())
    assert record["open_clip_config"] == cfg and record["eval_seed"] == EVAL_SEED
    assert record["training"]["steps"] > 0 and "seed" in record
    assert record["zero_shot_targets"] == ZERO_SHOT_TARGETS


def test_tokenizer_and_preprocess_shapes(demo_clip):
    model, tokenizer, preprocess = demo_clip
    tokens = tokenizer(["a person with red hair", "a smiling person wearing round glasses"])
    assert tokens.shape == (2, model.context_length) and tokens.dtype == torch.long
    assert model.encode_text(tokens).shape == (2, model.text_projection.shape[1])
    from safetensors import safe_open
    with safe_open(str(DEFAULT_PATH), "pt") as fh:
        size = json.loads(fh.metadata()["open_clip_config"])["vision_cfg"]["image_size"]
    img = render(sample_factors(2, 3), size=128).img
    x64, x128 = preprocess(render(sample_factors(2, 3)).img), preprocess(img)
    assert x64.shape == x128.shape == (2, 3, size, size)
    assert model.encode_image(x64).shape == (2, model.text_projection.shape[1])
    # [-1, 1] -> open_clip's normalisation of [0, 1] pixels
    black = make_preprocess()(torch.full((1, 3, 64, 64), -1.0))
    mean = torch.tensor([0.48145466, 0.4578275, 0.40821073])
    std = torch.tensor([0.26862954, 0.26130258, 0.27577711])
    torch.testing.assert_close(black[0, :, 0, 0], -mean / std)
    with pytest.raises(ValueError, match="N,3,H,W"):
        preprocess(torch.zeros(3, 64, 64))


def test_preprocess_and_image_encoder_are_differentiable(demo_clip):
    model, tokenizer, preprocess = demo_clip
    img = render(sample_factors(2, 4), size=128).img.clone().requires_grad_(True)
    with torch.no_grad():
        target = torch.nn.functional.normalize(model.encode_text(tokenizer(["a person with red hair"])), dim=-1)
    feat = torch.nn.functional.normalize(model.encode_image(preprocess(img)), dim=-1)
    (1 - feat @ target.T).sum().backward()
    assert img.grad is not None and bool(torch.isfinite(img.grad).all())
    assert float(img.grad.abs().sum()) > 0
