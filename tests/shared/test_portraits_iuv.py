"""The demo world's DensePose-style IUV maps (shared/portraits_iuv.py): conventions, agreement with the
renderer, surface points that keep their coordinates across views, the UV lookup table."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from shared.densepose import _mirror_iuv, check_iuv, uv_grid
from shared.portraits import CAMERA_Z, HEAD_CENTER, PART_NAMES, VIEW_HALF_EXTENT, Factors, head_rotation, render
from shared.portraits import sample_factors, with_view
from shared.portraits_iuv import (PART_CHARTS, composite_background, demo_uv_lookup, render_iuv, render_person,
                                  surface_coordinates)


def _person(**codes) -> Factors:
    """Portrait 3 of seed 0 with some factors set (a plain person unless told otherwise)."""
    f = sample_factors(8, 0).select([3])
    vals = dict(f.values)
    for name, value in {"hair_style": 1, "glasses": 0, "beard": 0, **codes}.items():
        vals[name] = torch.full_like(vals[name], value)
    return Factors(vals)


@pytest.fixture(scope="module")
def lookup() -> torch.Tensor:
    return demo_uv_lookup()


def test_shapes_values_and_official_conventions():
    f = sample_factors(6, 1)
    iuv = render_iuv(f, 32)
    assert iuv.shape == (6, 3, 32, 32) and iuv.dtype == torch.float32
    assert torch.equal(iuv, iuv.round()) and iuv.min() >= 0 and iuv.max() <= 255
    assert torch.equal(check_iuv(iuv), iuv)                    # the official I, U, V format
    parts = set(iuv[:, 0].unique().long().tolist())
    known = {0} | {c.right + k for c in PART_CHARTS.values() for k in (0, 1)}
    assert parts <= known and {0, 23, 24, 3, 4, 19, 20} <= parts
    with pytest.raises(ValueError):
        render_iuv(f, 4)


def test_background_and_parts_agree_with_the_renderer():
    f = sample_factors(12, 2)      # every hair style, glasses and beards among them
    iuv, r = render_iuv(f, 48), render(f, 48)
    assert torch.equal(iuv[:, 0] > 0, r.parts > 0)            # I = 0 exactly on the renderer's background
    assert iuv[:, 1:][(iuv[:, :1] == 0).expand(-1, 2, -1, -1)].abs().sum() == 0
    nose = (iuv[:, 0] == 3) | (iuv[:, 0] == 4)
    assert torch.equal(nose, r.parts == PART_NAMES.index("nose"))
    hair = (iuv[:, 0] >= 7) & (iuv[:, 0] <= 16)
    assert torch.equal(hair, r.parts == PART_NAMES.index("hair"))


def test_silhouette_is_the_renderer_coverage():
    p = render_person(sample_factors(4, 3), 32)
    assert p.silhouette.shape == (4, 1, 32, 32)
    assert p.silhouette.min() >= 0 and p.silhouette.max() <= 1
    body = p.iuv[:, :1] > 0
    assert (p.silhouette[body] > 0.5).all()        # a labelled pixel's surface outweighs the background
    assert (p.silhouette[~body] == 0).float().mean() > 0.9
    assert torch.equal(p.img, render(p.factors, 32).img)


def test_nose_tip_and_face_centre_land_where_expected(lookup):
    size = 128
    f = with_view(_person(), yaw=0.0, pitch=0.0)
    iuv = render_iuv(f, size)[0]
    # the nose tip, head frame (0, -0.17 fl, 0.72 + 0.17), seen straight on: image column centre
    y = HEAD_CENTER[1] - 0.17 * float(f["face_length"][0])
    row = int((VIEW_HALF_EXTENT - y) / (2 * VIEW_HALF_EXTENT) * size)
    for col in (size // 2 - 1, size // 2):
        i, u, v = iuv[:, row, col].long().tolist()
        assert i in (3, 4)
        a, b = surface_coordinates(torch.tensor(i), torch.tensor(u / 255), torch.tensor(v / 255))
        a0, b0, w, h = PART_CHARTS["nose"].cell
        assert abs(float(a) - (a0 + w / 2)) < 0.01 and abs(float(b) - (b0 + h / 2)) < 0.01   # lon = lat = 0
    # the forehead above it is head skin on the face's meridian (atlas a = 1/2)
    i, u, v = iuv[:, size // 2 - 30, size // 2].long().tolist()
    assert i in (23, 24)
    a, b = surface_coordinates(torch.tensor(i), torch.tensor(u / 255), torch.tensor(v / 255))
    assert abs(float(a) - 0.5) < 0.01 and float(b) > 0.75       # upper half of the head's cell: above the equator


def _atlas(iuv: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return surface_coordinates(iuv[0].long(), iuv[1] / 255, iuv[2] / 255)


@pytest.mark.parametrize("views", [((0.0, 0.0), (25.0, 0.0)), ((-15.0, 10.0), (20.0, -8.0))])
def test_a_surface_point_keeps_its_coordinates_across_views(views):
    """Back-project view A's head and nose pixels with the renderer's depth, turn them into view B, and
    compare the atlas points of the pixels they land on (where view B sees the same point)."""
    size = 128
    (ya, pa), (yb, pb) = views
    base = _person(hair_style=0)  # bald: the whole head shows
    fa, fb = with_view(base, yaw=ya, pitch=pa), with_view(base, yaw=yb, pitch=pb)
    ra, rb = render(fa, size), render(fb, size)
    ia, ib = render_iuv(fa, size)[0], render_iuv(fb, size)[0]
    s = VIEW_HALF_EXTENT
    centres = (torch.arange(size, dtype=torch.float64) + 0.5) * (2 * s / size) - s
    rows, cols = torch.nonzero((ia[0] >= 3) & (ia[0] <= 4) | (ia[0] >= 23), as_tuple=True)
    world = torch.stack([centres[cols], centres.flip(0)[rows], CAMERA_Z - ra.depth[0, rows, cols].double()], 1)
    rot_a = head_rotation(fa["yaw"], fa["pitch"])[0]
    rot_b = head_rotation(fb["yaw"], fb["pitch"])[0]
    centre = torch.tensor(HEAD_CENTER, dtype=torch.float64)
    head = (world - centre) @ rot_a                      # R_a^T (x - c), row vectors
    world_b = head @ rot_b.T + centre
    col_b = ((world_b[:, 0] + s) / (2 * s) * size - 0.5).round().long()
    row_b = ((s - world_b[:, 1]) / (2 * s) * size - 0.5).round().long()
    inside = (col_b >= 0) & (col_b < size) & (row_b >= 0) & (row_b < size)
    col_b, row_b, keep_rows, keep_cols = col_b[inside], row_b[inside], rows[inside], cols[inside]
    depth_b = (CAMERA_Z - world_b[inside, 2])
    seen = (rb.depth[0, row_b, col_b].double() - depth_b).abs() < 0.02        # not hidden in view B
    assert seen.sum() > 1500
    a_a, b_a = _atlas(ia[:, keep_rows[seen], keep_cols[seen]])
    a_b, b_b = _atlas(ib[:, row_b[seen], col_b[seen]])
    err = torch.maximum((a_a - a_b).abs(), (b_a - b_b).abs())
    assert float(err.median()) < 0.004 and float(err.quantile(0.95)) < 0.02


def test_mirrored_views_give_mirrored_maps():
    """The head is symmetric: the map at -yaw is the official mirror (`_mirror_iuv`) of the map at +yaw,
    flipped left to right."""
    f = _person(hair_style=2, glasses=1)
    plus = render_iuv(with_view(f, yaw=22.0, pitch=5.0), 64)[0].permute(1, 2, 0).numpy().astype(np.uint8)
    minus = render_iuv(with_view(f, yaw=-22.0, pitch=5.0), 64)[0].permute(1, 2, 0).numpy().astype(np.uint8)
    mirrored = _mirror_iuv(plus)[:, ::-1]
    assert (mirrored[:, :, 0] == minus[:, :, 0]).mean() > 0.995
    same = (mirrored[:, :, 0] == minus[:, :, 0]) & (minus[:, :, 0] > 0)
    assert np.abs(mirrored[same][:, 1:].astype(int) - minus[same][:, 1:].astype(int)).max() <= 2


def test_lookup_table(lookup):
    assert lookup.shape == (24, 256, 256, 2) and lookup.dtype == torch.float32
    assert lookup.min() >= 0 and lookup.max() <= 1
    # the head's two halves meet at lon = 0 (U = 0 on 23, U = 255 on 24), and mirroring mirrors the atlas
    assert torch.allclose(lookup[22, :, 0], lookup[23, :, 255])
    assert torch.allclose(lookup[23, :, 255 - torch.arange(256), 0], 1 - lookup[22, :, :, 0], atol=1e-6)
    # every used part stays inside its own cell
    for chart in PART_CHARTS.values():
        a0, b0, w, h = chart.cell
        for i in (chart.right, chart.right + 1):
            cell = lookup[i - 1]
            assert cell[..., 0].min() >= a0 - 1e-6 and cell[..., 0].max() <= a0 + w + 1e-6
            assert cell[..., 1].min() >= b0 - 1e-6 and cell[..., 1].max() <= b0 + h + 1e-6


def test_uv_grid_reads_the_demo_maps(lookup):
    iuv = render_iuv(sample_factors(2, 4), 32)
    grid = uv_grid(iuv, lookup)
    body = iuv[:, 0] > 0
    assert grid.shape == (2, 2, 32, 32) and grid.abs().max() <= 1
    assert (grid[:, 1][body] < 0).float().mean() > 0.5     # mostly the head's cell, the atlas' upper half


def test_composite_background_paints_the_source_colour():
    p = render_person(sample_factors(2, 5), 32)
    out = torch.zeros(2, 3, 32, 32)
    res = composite_background(out, p.iuv, p.img, p.silhouette)
    far = (torch.nn.functional.max_pool2d((p.iuv[:, :1] > 0).float(), 3, 1, 1) == 0).expand(-1, 3, -1, -1)
    assert torch.allclose(res[far], p.img[far], atol=1e-6)  # flat backgrounds come back exactly
    assert torch.equal(res[~far], out[~far])
