"""shared.masks: region masks chosen by name (presets, painted layers) and how a mask is shown."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from shared.crossover import preset_mask
from shared.errors import InputError
from shared.masks import region_mask, shade_outside


def test_presets_and_painted_layers():
    assert torch.equal(region_mask("left", 16), preset_mask("left", 16))
    layer = np.zeros((32, 32, 4), np.uint8)
    layer[:16, :, 3] = 255
    m = region_mask("drawn", 16, layers=[layer])
    assert m.shape == (1, 1, 16, 16) and m[0, 0, :8].all() and not m[0, 0, 8:].any()
    with pytest.raises(InputError, match="Nothing is painted"):
        region_mask("drawn", 16, layers=[])
    with pytest.raises(InputError, match="Unknown mask preset"):
        region_mask("sideways", 16)
    with pytest.raises(InputError, match="needs the image"):
        region_mask("part:hair", 16)


def test_shade_outside_keeps_the_region():
    img = torch.ones(1, 3, 4, 4)
    mask = torch.zeros(1, 1, 4, 4)
    mask[..., :2] = 1
    out = shade_outside(img, mask)
    assert torch.equal(out[..., :2], img[..., :2]) and torch.allclose(out[..., 2:], torch.full((1, 3, 4, 2), -0.6))
