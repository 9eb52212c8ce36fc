"""The demo predictor's training and evaluation (training.demo.predictor): the mirror identity its
training relies on, and the shipped weights' recorded metrics and accuracy on fresh renders that
training and `evaluate` never saw."""
import json

import pytest
import torch

from shared.demo.predictor import CATEGORICAL, CONTINUOUS, DEFAULT_PATH, load_predictor
from shared.portraits import render, sample_factors
from training.demo.predictor import EVAL_SEED, TARGETS, evaluate_predictor, mirror_factors

TEST_SEED = 7_000_002  # not EVAL_SEED, and training uses seeds >= 10**9


def test_mirror_factors_is_the_flipped_render():
    r = render(sample_factors(8, 11))
    m = render(mirror_factors(r.factors))
    torch.testing.assert_close(m.img, r.img.flip(-1), rtol=0, atol=2e-3)
    assert torch.equal(m.parts, r.parts.flip(-1))


@pytest.fixture(scope="module")
def shipped_metrics():
    torch.set_num_threads(2)
    return evaluate_predictor(load_predictor(), n=500, seed=TEST_SEED)


def test_shipped_weights_metadata_matches_sidecar():
    info = json.loads(DEFAULT_PATH.with_suffix(".json").read_text())
    model = load_predictor()
    assert info["model_config"] == json.loads(json.dumps(model.config.__dict__))
    assert info["params"] == model.num_params() <= 1_500_000
    assert info["metrics"]["n"] == 2000 and info["metrics"]["seed"] == EVAL_SEED


@pytest.mark.parametrize("name", [s.name for s in CATEGORICAL])
def test_shipped_categorical_accuracy(shipped_metrics, name):
    assert shipped_metrics["accuracy"][name] >= TARGETS["accuracy"]


@pytest.mark.parametrize("name", [s.name for s in CONTINUOUS])
def test_shipped_continuous_r2(shipped_metrics, name):
    assert shipped_metrics["r2"][name] >= TARGETS["r2"]


def test_shipped_part_miou(shipped_metrics):
    assert shipped_metrics["miou"] >= TARGETS["miou"]
