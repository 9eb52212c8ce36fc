"""DensePose IUV maps as Pose with Style reads them (AlBahar et al., "Pose with Style: Detail-Preserving
Pose-Guided Image Synthesis with Conditional StyleGAN", SIGGRAPH Asia 2021; BadourAlBahar/pose-with-style
@f344f3b, `inference.py`, `model.py: SpatialAppearanceEncoder.uv2target`, `util/dp2coor.py`).

An IUV map is an image whose channels are, in this order, I (the DensePose body part, 0 = background,
1..24 = parts), U and V (the part's surface coordinates scaled to 0..255), as `_iuv.png` files hold them.
The UV lookup table (`dp_uv_lookup_256.npy`, float [24, 256, 256, 2]) maps (part, V, U) to a point of
the 2-D UV atlas in [0, 1]^2: it is indexed `T[I - 1, V, U]`, and the atlas point (a, b) becomes the
`grid_sample` coordinate (2a - 1, 2(1 - b) - 1). These functions check the inputs (an `InputError`
sentence for each mistake a user can make), turn IUV maps into sampling grids, union the silhouette
with the body, and compute the partial UV-space coordinates the coordinate-completion model fills in.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from shared.errors import InputError

__all__ = [
    "GARMENT_PARTS", "LOOKUP_SHAPE", "NUM_PARTS", "check_iuv", "check_lookup", "iuv_from_uint8",
    "normalize_partial_coordinates", "partial_coordinates", "sample_by_uv", "union_silhouette", "uv_grid",
]

NUM_PARTS = 24
LOOKUP_SHAPE = (NUM_PARTS, 256, 256, 2)

#: DensePose parts (1-based I values) that each official garment-transfer choice moves
#: (`model.py: GarmentTransferSpatialAppearanceEncoder`; `garment_transfer.py --part`).
_UPPER = (1, 2, 15, 16, 17, 18, 19, 20, 21, 22)  # torso, upper and lower arms
_LOWER = (7, 8, 9, 10, 11, 12, 13, 14)           # upper and lower legs
GARMENT_PARTS: dict[str, tuple[int, ...]] = {
    "upper_body": _UPPER,
    "lower_body": _LOWER,
    "full_body": _UPPER + _LOWER,
    "face": (23, 24),
}

# Left/right partner of each part (index = I value) for the symmetric completion (`util/dp2coor.py`).
_SYMMETRIC = (0, 1, 2, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15, 18, 17, 20, 19, 22, 21, 24, 23)


def check_iuv(iuv: torch.Tensor, name: str = "IUV map") -> torch.Tensor:
    """Check an IUV map and return it as float32 [N, 3, H, W] holding the raw 0..255 values.

    Args:
        iuv: [N, 3, H, W] or [3, H, W], channels I, U, V; integer values (uint8 or float).
        name: how the sentence names it ("source IUV map", ...).

    Raises:
        InputError: wrong shape, non-integer or out-of-range values, no body pixel, or a map whose
            channels look reversed (V, U, I: OpenCV's BGR order).
    """
    if not isinstance(iuv, torch.Tensor):
        raise InputError(f"The {name} is missing; upload the `_iuv.png` DensePose map.")
    if iuv.ndim == 3:
        iuv = iuv[None]
    if iuv.ndim != 4 or iuv.shape[1] != 3:
        raise InputError(f"The {name} must have 3 channels (I, U, V) and shape [N, 3, H, W]; got {list(iuv.shape)}.")
    x = iuv.float()
    if not torch.equal(x, x.round()) or x.min() < 0 or x.max() > 255:
        raise InputError(f"The {name} must hold whole numbers 0..255 (the raw `_iuv.png` values), not a "
                         "normalised image.")
    i_max = int(x[:, 0].max())
    if i_max > NUM_PARTS:
        if int(x[:, 2].max()) <= NUM_PARTS:
            raise InputError(f"The {name} looks like it is in V, U, I channel order (as OpenCV writes it); "
                             "save it with the part index I in the first channel.")
        raise InputError(f"The {name}'s first channel must be the DensePose part index I (0..24); its largest "
                         f"value is {i_max}. Check the channel order (I, U, V).")
    if i_max == 0:
        raise InputError(f"The {name} has no body pixel (I is 0 everywhere); DensePose found no person.")
    return x


def iuv_from_uint8(iuv_hwc: np.ndarray, name: str = "IUV map") -> torch.Tensor:
    """An `_iuv.png` read as an array (uint8 [H, W, 3], channels I, U, V) -> float32 [1, 3, H, W]."""
    a = np.asarray(iuv_hwc)
    if a.ndim != 3 or a.shape[2] < 3:
        raise InputError(f"The {name} must be a colour image with I, U, V channels; got shape {list(a.shape)}.")
    return check_iuv(torch.from_numpy(np.ascontiguousarray(a[:, :, :3])).permute(2, 0, 1)[None], name)


def check_lookup(lookup: torch.Tensor) -> torch.Tensor:
    """Check the UV lookup table (float [24, 256, 256, 2], values in [0, 1]); returns it unchanged."""
    if not isinstance(lookup, torch.Tensor) or tuple(lookup.shape) != LOOKUP_SHAPE or not lookup.is_floating_point():
        shape = list(lookup.shape) if isinstance(lookup, torch.Tensor) else type(lookup).__name__
        raise InputError(f"The UV lookup table must be a float array of shape {list(LOOKUP_SHAPE)} "
                         f"(dp_uv_lookup_256.npy); got {shape}.")
    return lookup


def union_silhouette(silhouette: torch.Tensor, iuv: torch.Tensor) -> torch.Tensor:
    """The official silhouette: `1 - (1 - sil) * (I == 0)` (the person mask joined with the body pixels).

    Args:
        silhouette: [N, 1, H, W] or [N, H, W] in [0, 1] (`_sil.png` / 255).
        iuv: [N, 3, H, W] raw IUV values (see `check_iuv`).

    Returns:
        float32 [N, 1, H, W] (computed in float64 as the official numpy code does).
    """
    sil = silhouette if silhouette.ndim == 4 else silhouette[:, None]
    if sil.shape[1] != 1 or sil.shape[0] != iuv.shape[0] or sil.shape[2:] != iuv.shape[2:]:
        raise InputError(f"The silhouette must be one channel of the IUV map's size {list(iuv.shape[2:])}; "
                         f"got {list(silhouette.shape)}.")
    if sil.min() < 0 or sil.max() > 1:
        raise InputError("The silhouette must be in 0..1 (the `_sil.png` divided by 255).")
    background = (iuv[:, :1] == 0).to(torch.float64)
    return (1 - (1 - sil.to(torch.float64)) * background).float()


def uv_grid(iuv: torch.Tensor, lookup: torch.Tensor) -> torch.Tensor:
    """Where each pixel of an IUV map lands in the UV atlas, as `grid_sample` coordinates.

    Args:
        iuv: [N, 3, H, W] raw I, U, V values (float or integer).
        lookup: [24, 256, 256, 2] UV lookup table, indexed `[I - 1, V, U]`.

    Returns:
        float32 [N, 2, H, W]: (2a - 1, 2(1 - b) - 1) for the atlas point (a, b) of body pixels, 0 elsewhere
        (computed in the table's precision, then rounded to float32, as the official NumPy code does).
    """
    idx = iuv.to(torch.int64)  # the official `pose.int()`
    body = idx[:, 0] > 0                                                   # [N, H, W]
    table = lookup.to(device=iuv.device)
    ab = table[idx[:, 0][body] - 1, idx[:, 2][body], idx[:, 1][body]]      # [P, 2]
    grid = torch.zeros(iuv.shape[0], iuv.shape[2], iuv.shape[3], 2, device=iuv.device)
    grid[body] = torch.stack([ab[:, 0] * 2 - 1, (1 - ab[:, 1]) * 2 - 1], dim=1).float()
    return grid.permute(0, 3, 1, 2)


def sample_by_uv(texture: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """Sample a UV-space map at the grid of `uv_grid` (the official `uv2target`).

    Args:
        texture: [N, C, h, w] map over the UV atlas (complete coordinates, a part map, ...).
        grid: [N, 2, H, W] from `uv_grid`; resized to [h, w] (bilinear, corners aligned) when it differs.

    Returns:
        [N, C, h, w]: bilinear samples, zeros outside the atlas (`align_corners=False`).
    """
    if grid.shape[2:] != texture.shape[2:]:
        grid = F.interpolate(grid, size=texture.shape[2:], mode="bilinear", align_corners=True)
    return F.grid_sample(texture.float(), grid.permute(0, 2, 3, 1).float(), mode="bilinear", padding_mode="zeros",
                         align_corners=False)


# ---- partial UV-space coordinates (`util/dp2coor.py: getSymXYcoordinates`) ------------------------

def _mirror_iuv(iuv: np.ndarray) -> np.ndarray:
    """Relabel each part as its left/right partner; flip U on head and hands, V on the torso."""
    i, u, v = (iuv[:, :, c].copy() for c in range(3))
    for part in range(1, NUM_PARTS + 1):
        here = iuv[:, :, 0] == part
        if not here.any():
            continue
        i[here] = _SYMMETRIC[part]
        if part in (3, 4, 23, 24):
            u[here] = 255 - u[here]
        if part in (1, 2):
            v[here] = 255 - v[here]
    return np.stack([i, u, v], 2)


def _interpolate_on_grid(points: np.ndarray, values: np.ndarray, size: int) -> np.ndarray:
    """scipy's `griddata(points, values, grid, 'linear')` with 'nearest' where that is NaN, on the integer
    grid [0, size)^2, computed from the same Delaunay triangulation by rasterising its triangles.

    (scipy's own point location computes its barycentric transforms through threaded BLAS, one tiny call
    per triangle, which took minutes on a busy CPU; the result is the same linear interpolation.)

    Args:
        points: [P, 2] (row, column) positions. values: [P, K].

    Returns:
        [size, size, K] float64.
    """
    from scipy.spatial import Delaunay, cKDTree

    tri = Delaunay(points)
    corner = points[tri.simplices]                                         # [T, 3, 2]
    a, b, c = corner[:, 0], corner[:, 1], corner[:, 2]
    det = (b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (c[:, 0] - a[:, 0]) * (b[:, 1] - a[:, 1])
    lo = np.maximum(np.ceil(corner.min(axis=1)), 0).astype(np.int64)    # [T, 2] grid box of each triangle
    hi = np.minimum(np.floor(corner.max(axis=1)), size - 1).astype(np.int64)
    h, w = hi[:, 0] - lo[:, 0] + 1, hi[:, 1] - lo[:, 1] + 1
    use = np.nonzero((np.abs(det) > 1e-12) & (h > 0) & (w > 0))[0]
    counts = h[use] * w[use]
    t = np.repeat(use, counts)                                             # triangle of each candidate
    k = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    r, q = lo[t, 0] + k // w[t], lo[t, 1] + k % w[t]
    dr, dq = r - a[t, 0], q - a[t, 1]
    l1 = (dr * (c[t, 1] - a[t, 1]) - (c[t, 0] - a[t, 0]) * dq) / det[t]
    l2 = ((b[t, 0] - a[t, 0]) * dq - dr * (b[t, 1] - a[t, 1])) / det[t]
    l0 = 1 - l1 - l2
    eps = 100 * np.finfo(np.float64).eps
    inside = (l0 >= -eps) & (l1 >= -eps) & (l2 >= -eps)
    t, r, q, l0, l1, l2 = t[inside], r[inside], q[inside], l0[inside], l1[inside], l2[inside]
    s = tri.simplices[t]
    out = np.full((size, size, values.shape[1]), np.nan)
    out[r, q] = l0[:, None] * values[s[:, 0]] + l1[:, None] * values[s[:, 1]] + l2[:, None] * values[s[:, 2]]
    hole = np.isnan(out).any(axis=2)
    if hole.any():
        _, nearest = cKDTree(points).query(np.argwhere(hole).astype(np.float64))
        out[hole] = values[nearest]
    return out


def _image_coordinates(iuv: np.ndarray, lookup: np.ndarray, resolution: int) -> tuple[np.ndarray, np.ndarray]:
    """(xy [R, R, 2] image coordinates of each UV-atlas pixel, mask [R, R]) for the body pixels of `iuv`."""
    from scipy.ndimage import maximum_filter
    from scipy.spatial import QhullError

    body = iuv[:, :, 0] > 0
    yy, xx = np.nonzero(body)
    part, u, v = (iuv[:, :, c][body].astype(np.int64) for c in range(3))
    ab = lookup[part - 1, v, u]
    uf, vf = ab[:, 0] * (resolution - 1), (1 - ab[:, 1]) * (resolution - 1)
    try:
        coords = _interpolate_on_grid(np.stack([vf, uf], 1), np.stack([xx, yy], 1).astype(np.float64), resolution)
    except (QhullError, ValueError) as e:
        raise InputError("The source IUV map has too few body pixels to place the person in UV space; use a "
                         "photo where DensePose finds the whole body.") from e
    mask = np.zeros((resolution, resolution))
    for rv in (np.ceil(vf), np.floor(vf)):
        for ru in (np.ceil(uf), np.floor(uf)):
            mask[rv.astype(int), ru.astype(int)] = 1
    mask = maximum_filter(mask, size=3, mode="constant", cval=0)  # 3x3 dilation
    return coords * mask[..., None], mask


def partial_coordinates(iuv_hwc: np.ndarray, lookup: np.ndarray, resolution: int = 512
                        ) -> tuple[np.ndarray, np.ndarray]:
    """Image coordinates of the visible body, spread over the UV atlas, completed by left/right symmetry.

    Args:
        iuv_hwc: uint8 [H, W, 3] IUV map (I, U, V), as read from the `_iuv.png`.
        lookup: float [24, 256, 256, 2] UV lookup table.
        resolution: side of the UV-space map (inference.py: 512).

    Returns:
        (coordinates float64 [R, R, 2] in pixels (x, y), mask float64 [R, R] in {0, 1}).
    """
    xy, mask = _image_coordinates(iuv_hwc, lookup, resolution)
    mirrored_xy, mirrored_mask = _image_coordinates(_mirror_iuv(iuv_hwc), lookup, resolution)
    mirrored_mask = np.clip(mirrored_mask - mask, 0, 1)
    coords = xy * mask[..., None] + mirrored_xy * mirrored_mask[..., None]
    return coords, np.clip(mask + mirrored_mask, 0, 1)


def normalize_partial_coordinates(coords: np.ndarray, mask: np.ndarray, height: int, width: int
                                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """The coordinate-completion model's inputs (inference.py): x shifted as the image is centred in a
    height x height square, both scaled to [-1, 1] by `2 c / (height - 1) - 1`, -10 outside the mask.

    Returns:
        (uv_coor float32 [1, 2, R, R], uv_mask float32 [1, 1, R, R]).
    """
    c = coords.copy()
    c[:, :, 0] += (height - width) // 2
    c = 2 * c / (height - 1) - 1
    m = mask[..., None]
    c = c * m + (-10 * (1 - m))
    return (torch.from_numpy(c).float().permute(2, 0, 1)[None],
            torch.from_numpy(np.asarray(mask)).float()[None, None])
