"""shared.editing.part_edits and shared.editing.channel_edits: the app's Editing in Style / Retrieve in
Style / StyleSpace requests end to end, on a small random StyleGAN2 (shapes, measures, user errors)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from shared.editing.channel_edits import channel_strip, edit_named_channels, search_region_channels
from shared.editing.edit_strengths import strength_ladder
from shared.editing.local_style import build_catalog
from shared.editing.part_edits import (catalogue_preview, rename_clusters, retrieve_similar_part,
                                       transfer_catalogue_part, transfer_retrieved_part)
from shared.editing.retrieve_style import catalogue_masks
from shared.editing.stylespace import style_stats
from shared.errors import InputError
from shared.latents import ws_from_seeds

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def catalog(sg2):
    return build_catalog(sg2, k=4, samples=16, seed=2)


def test_strength_ladder_runs_from_minus_to_plus():
    assert strength_ladder(3.0) == pytest.approx([-3.0, -1.5, 0.0, 1.5, 3.0])
    assert strength_ladder(2.0, 3) == pytest.approx([-2.0, 0.0, 2.0])


def test_catalogue_preview_and_names(sg2, catalog):
    overlay = catalogue_preview(sg2, catalog, seeds=range(3))
    assert overlay.shape == (3, 32, 32, 3) and overlay.dtype == np.uint8
    named = rename_clusters(catalog, "0=hair, 2=eyes")
    assert named.names == {**catalog.names, 0: "hair", 2: "eyes"} and named.k == catalog.k
    with pytest.raises(InputError, match="'cluster=name' pairs"):
        rename_clusters(catalog, "hair")
    with pytest.raises(InputError, match="Cluster 9 does not exist"):
        rename_clusters(catalog, "9=hair")


def test_catalogue_transfer_reports_renders_and_locality(sg2, catalog):
    ws, ref = ws_from_seeds(sg2, [0]), ws_from_seeds(sg2, [1])
    res = transfer_catalogue_part(sg2, catalog, ws, ref, [0, 1], rho=0.2, epsilon=3)
    assert res.images.shape == (3, 3, 32, 32) and 0 <= res.share <= 1 and res.channels >= 0
    with pytest.raises(InputError, match="Choose the part"):
        transfer_catalogue_part(sg2, catalog, ws, ref, [], rho=0.2, epsilon=3)


def test_retrieved_part_transfer_and_ranking(sg2, catalog):
    ws, ref = ws_from_seeds(sg2, [0]), ws_from_seeds(sg2, [1])
    pair = torch.cat([ws, ref])
    masks = catalogue_masks(sg2, catalog, pair, {"hair": [0], "eyes": [1]})
    res = transfer_retrieved_part(sg2, ws, ref, masks, "eyes", amount=1.0)
    assert res.images.shape == (3, 3, 32, 32) and res.share is not None and 0 <= res.share <= 1
    assert transfer_retrieved_part(sg2, ws, ref, masks, "pose", amount=1.0).share is None
    bank = torch.cat([ws_from_seeds(sg2, list(range(2, 8))), ws])
    found = retrieve_similar_part(sg2, ws, bank, catalogue_masks(sg2, catalog, ws, {"hair": [0], "eyes": [1]}),
                                  "eyes", top=3)
    assert found.images.shape == (4, 3, 32, 32) and len(found.order) == len(found.similarity) == 3
    assert int(found.order[0]) == 6 and float(found.similarity[0]) == pytest.approx(1.0, abs=1e-4)  # itself first


def test_channel_strip_named_edit_and_region_search(sg2):
    ws, stats = ws_from_seeds(sg2, [3]), style_stats(sg2, samples=200)
    strip = channel_strip(sg2, ws, 1, 2, [-5.0, 0.0, 5.0], stats)
    assert strip.shape == (3, 3, 32, 32) and not torch.allclose(strip[0], strip[2])

    class Reader(torch.nn.Module):
        def predict(self, images):
            return images.mean(dim=(1, 2, 3))

    named = edit_named_channels(sg2, ws, [(1, 2, 5.0)], stats, Reader())
    assert named.images.shape == (2, 3, 32, 32) and named.reading.shape == (2,)
    region = torch.zeros(32, 32)
    region[:, :16] = 1
    seen = []
    res = search_region_channels(sg2, ws, lambda img: seen.append(img.shape) or region, stats, strength=5.0, top=2,)
    assert seen == [torch.Size([1, 3, 32, 32])] and res.region is region
    assert len(res.found) <= 2 and res.previews.shape[0] == len(res.found)
