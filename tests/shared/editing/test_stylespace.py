"""StyleSpace channel edits (shared.editing.stylespace) on a small random StyleGAN2."""
from __future__ import annotations

import pytest
import torch

from shared.editing.stylespace import channel_names, edit_channels, style_stats
from shared.errors import InputError
from shared.latents import ws_from_seeds
from shared.mixing import style_mix_images

torch.set_num_threads(1)


# ---- StyleSpace -----------------------------------------------------------------------------------------
def test_stylespace_channel_edit_changes_only_that_channel(sg2):
    stats = style_stats(sg2, samples=500)
    ws = ws_from_seeds(sg2, [2])
    base, styles0 = edit_channels(sg2, ws, [], stats)
    img, styles = edit_channels(sg2, ws, [(3, 5, 4.0)], stats)
    for i, (a, b) in enumerate(zip(styles0, styles)):
        if i == 3:
            assert torch.allclose(b[:, 5] - a[:, 5], 4.0 * stats.std[3][5].expand(1))
            assert torch.equal(torch.cat([a[:, :5], a[:, 6:]], 1), torch.cat([b[:, :5], b[:, 6:]], 1))
        else:
            assert torch.equal(a, b)
    assert (img - base).abs().max() > 1e-3
    same = style_mix_images(sg2, ws, ws, list(range(sg2.num_ws)))
    assert torch.allclose(base, same, atol=1e-5)
    labels = channel_names(sg2)
    assert len(labels) == len(styles0) and "toRGB" in labels[1][0]
    with pytest.raises(InputError, match="channels 0 to"):
        edit_channels(sg2, ws, [(3, 999, 1.0)], stats)


def test_stylespace_refuses_stylegan3(sg3):
    with pytest.raises(InputError, match="StyleGAN2"):
        style_stats(sg3, samples=10)
