"""Image helpers (shared.images): the uint8 mapping of [-1, 1] and the tile grid."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from shared.images import image_grid, to_uint8_hwc

torch.set_num_threads(1)


# ---- images ------------------------------------------------------------------------------------
def test_to_uint8_hwc_maps_the_range_endpoints():
    img = torch.tensor([-1.0, 0.0, 1.0, 2.0, -3.0]).view(1, 1, 1, 5).expand(2, 3, 1, 5)
    out = to_uint8_hwc(img)
    assert out.dtype == np.uint8 and out.shape == (2, 1, 5, 3)
    assert out[0, 0, :, 0].tolist() == [0, 128, 255, 255, 0]
    with pytest.raises(ValueError):
        to_uint8_hwc(torch.zeros(3, 16, 16))


def test_image_grid_places_tiles_row_by_row():
    tiles = np.stack([np.full((2, 3, 3), v, np.uint8) for v in (10, 20, 30)])
    grid = image_grid(tiles, columns=2, pad=1, fill=0)
    assert grid.shape == (2 * 3 + 1, 2 * 4 + 1, 3)
    assert grid[1, 1, 0] == 10 and grid[1, 5, 0] == 20 and grid[4, 1, 0] == 30
    assert grid[4, 5, 0] == 0  # empty cell
    assert image_grid(tiles).shape == (4, 6, 3)  # ceil(sqrt(3)) = 2 columns, no padding
