"""Procedural cartoon portraits with known factors: the ground truth of the hub's demo world.

Own construction, not a reproduction of a paper. A head is a small scene of implicit shapes in a
head frame (an ellipsoid cranium joined with a jaw ellipsoid, nose and ears as ellipsoids, hair
as the cap region of an enlarged shell plus a long-hair or bun volume, glasses as frames on a
cylinder wrapped in front of the eyes); eyes, brows, mouth and beard are decals on the head
surface. The head frame is rotated by yaw and pitch, every pixel casts an orthographic ray into
it, and the surfaces are composited front to back in per-pixel depth order with analytic
(signed-distance) coverage, so edges are anti-aliased at any size and a change of view is a
consistent view of the same person: back-facing features are hidden by the ray cast itself.
Shading is Lambert from the light direction. A batch of N portraits is evaluated at once on the
pixel grid with torch tensor ops (several hundred portraits/s at 64 px on one CPU core).
Outputs are bit-identical for a seed whatever the batch, chunk or thread count.

Conventions. World: x to the image right, y up, z towards the viewer; the image spans
[-VIEW_HALF_EXTENT, VIEW_HALF_EXTENT]^2 and rays travel along -z from the plane z = CAMERA_Z.
A head-frame point p maps to the world as HEAD_CENTER + R p with R = R_y(yaw) R_x(pitch)
(`head_rotation`): positive yaw turns the nose towards the image right, positive pitch tilts it
up. The neck stays in the world frame and long hair hangs (it turns with the yaw only).

`python -m shared.portraits docs` writes the sample grids, a yaw strip and a factor sheet.
"""
from __future__ import annotations

import colorsys
import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from shared.images import image_grid, to_uint8_hwc

__all__ = [
    "CAMERA_Z", "FACTORS", "HEAD_CENTER", "PART_NAMES", "VIEW_HALF_EXTENT",
    "FactorSpec", "Factors", "RenderOutput",
    "caption", "captions", "factors_for_seeds", "head_rotation", "render", "render_seeds",
    "sample_factors", "save_docs", "with_view",
]

VIEW_HALF_EXTENT = 1.32          # world units from the image centre to its edge
CAMERA_Z = 5.0                   # rays start on this plane; depth = CAMERA_Z - z_world
HEAD_CENTER = (0.0, 0.14, 0.0)   # head-frame origin in world coordinates
PART_NAMES = ("background", "skin", "hair", "eyes", "brows", "nose", "mouth", "glasses", "beard")
_P = {name: i for i, name in enumerate(PART_NAMES)}


@dataclass(frozen=True)
class FactorSpec:
    """One factor of variation and the distribution `sample_factors` draws it from.

    Continuous factors are Uniform(low, high) and stored as float32; categorical factors take
    code k (an index into `categories`) with probability probs[k] and are stored as int64.
    """
    name: str
    kind: str                          # "continuous" or "categorical"
    doc: str
    low: float = 0.0
    high: float = 1.0
    categories: tuple[str, ...] = ()
    probs: tuple[float, ...] = ()


def _c(name: str, low: float, high: float, doc: str) -> FactorSpec:
    return FactorSpec(name, "continuous", doc, low, high)


def _k(name: str, cats: tuple[str, ...], probs: tuple[float, ...], doc: str) -> FactorSpec:
    return FactorSpec(name, "categorical", doc, categories=cats, probs=probs)


# The order of this table is the layout of `Factors.to_vector()`: column j holds FACTORS[j].
FACTORS: tuple[FactorSpec, ...] = (
    _c("yaw", -40.0, 40.0, "Head turn in degrees; positive turns the face to the image right."),
    _c("pitch", -20.0, 20.0, "Head tilt in degrees; positive looks up."),
    _c("face_width", 0.85, 1.15, "Scale of the head's width."),
    _c("face_length", 0.88, 1.12, "Scale of the head's height."),
    _c("jaw", 0.0, 1.0, "Jaw width: 0 a narrow pointed chin, 1 a wide square jaw."),
    _c("skin_tone", 0.0, 1.0, "Position on a light-to-dark skin palette."),
    _c("eye_size", 0.7, 1.4, "Scale of the eyes (sclera, iris and pupil)."),
    _c("brow_thickness", 0.5, 1.6, "Scale of the eyebrows' thickness."),
    _c("smile", -1.0, 1.0, "Mouth curvature: -1 a frown, 0 neutral, 1 a broad smile."),
    _c("mouth_open", 0.0, 1.0, "Gap between the lips: 0 closed, 1 wide open (teeth show)."),
    _c("background_hue", 0.0, 1.0, "Hue of the flat background (saturation 0.35, value 0.88)."),
    _c("light_azimuth", -60.0, 60.0, "Light direction in degrees; positive comes from the right."),
    _c("light_elevation", -10.0, 50.0, "Light direction in degrees above the horizon."),
    _k("hair_style", ("bald", "short", "long", "afro", "bun"), (0.12, 0.3, 0.3, 0.14, 0.14),
       "Hair volume: none, a short cap, a cap with hair down to the shoulders, a large round "
       "shell, or a short cap with a bun on top."),
    _k("hair_color", ("black", "brown", "blonde", "red", "grey"), (0.25, 0.25, 0.2, 0.15, 0.15),
       "Colour of hair, brows (darker) and beard."),
    _k("eye_color", ("brown", "blue", "green"), (0.5, 0.3, 0.2), "Colour of the irises."),
    _k("glasses", ("none", "round", "square"), (0.5, 0.25, 0.25), "Shape of the glasses frame."),
    _k("glasses_color", ("black", "red", "blue", "gold"), (0.25, 0.25, 0.25, 0.25),
       "Colour of the glasses frame (drawn only when glasses is not none)."),
    _k("beard", ("none", "beard"), (0.75, 0.25), "A full beard in the hair colour."),
)

_SKIN = torch.tensor([[0.98, 0.86, 0.76], [0.94, 0.75, 0.61], [0.80, 0.58, 0.42],
                      [0.58, 0.38, 0.25], [0.37, 0.23, 0.15]])
_HAIR = torch.tensor([[0.10, 0.09, 0.09], [0.40, 0.24, 0.12], [0.94, 0.80, 0.46],
                      [0.80, 0.30, 0.10], [0.74, 0.74, 0.76]])
_IRIS = torch.tensor([[0.36, 0.20, 0.08], [0.20, 0.45, 0.90], [0.20, 0.62, 0.28]])
_FRAME = torch.tensor([[0.06, 0.06, 0.07], [0.85, 0.10, 0.10], [0.12, 0.28, 0.88],
                       [0.86, 0.68, 0.18]])
#: per hair style: has shell, shell scale (x/z, y), hairline height (front, side, back) on the
#: shell's unit sphere, extra volume (0 none, 1 long hair behind, 2 bun)
_STYLE = torch.tensor([[0, 1.0, 1.0, 0.0, 0.0, 0.0, 0],
                       [1, 1.07, 1.06, 0.50, 0.05, -0.45, 0],
                       [1, 1.08, 1.07, 0.45, -1.2, -1.2, 1],
                       [1, 1.30, 1.24, 0.38, -0.15, -0.55, 0],
                       [1, 1.07, 1.06, 0.50, 0.05, -0.40, 2]])


@dataclass(frozen=True)
class Factors:
    """A batch of N portraits' factors: `values[name]` is a [N] tensor for each name in FACTORS
    (float32 for continuous factors, int64 codes for categorical ones)."""
    values: dict[str, Tensor]

    def __post_init__(self) -> None:
        missing = [s.name for s in FACTORS if s.name not in self.values]
        if missing:
            raise ValueError(f"factors are missing {', '.join(missing)}")
        sizes = {int(v.shape[0]) for v in self.values.values()}
        if len(sizes) != 1 or any(v.ndim != 1 for v in self.values.values()):
            raise ValueError("every factor must be a 1-D tensor of the same length")

    def __len__(self) -> int:
        return int(self.values["yaw"].shape[0])

    def __getitem__(self, name: str) -> Tensor:
        return self.values[name]

    def select(self, index: int | slice | Tensor | Sequence[int]) -> Factors:
        """Sub-batch; an int keeps the batch dimension (length 1)."""
        if isinstance(index, int):
            index = slice(index, index + 1)
        if isinstance(index, Sequence):
            index = torch.as_tensor(index, dtype=torch.long)
        return Factors({k: v[index] for k, v in self.values.items()})

    def to_vector(self) -> Tensor:
        """Flat layout: [N, len(FACTORS)] float32, column j = FACTORS[j] (codes as floats)."""
        return torch.stack([self.values[s.name].float() for s in FACTORS], dim=1)

    @staticmethod
    def from_vector(vec: Tensor) -> Factors:
        """Inverse of `to_vector`; categorical columns are rounded to integer codes."""
        if vec.ndim != 2 or vec.shape[1] != len(FACTORS):
            raise ValueError(f"factor vectors must be [N, {len(FACTORS)}], got {tuple(vec.shape)}")
        vals = {}
        for j, s in enumerate(FACTORS):
            col = vec[:, j].detach().cpu()
            vals[s.name] = (col.round().long().clamp(0, len(s.categories) - 1)
                            if s.kind == "categorical" else col.float())
        return Factors(vals)

    def to_dict(self, i: int) -> dict[str, float | str]:
        """Portrait i's factors by name: floats for continuous, category names otherwise."""
        return {s.name: (s.categories[int(self.values[s.name][i])] if s.kind == "categorical"
                         else float(self.values[s.name][i])) for s in FACTORS}


@dataclass(frozen=True)
class RenderOutput:
    """img [N,3,H,W] float32 in [-1,1]; parts [N,H,W] int64 indexing PART_NAMES; depth [N,H,W]
    float32 distance from the camera plane to the surface that labels the pixel (inf on the
    background); factors: what was rendered."""
    img: Tensor
    parts: Tensor
    depth: Tensor
    factors: Factors


def _generator(seed_or_generator: int | torch.Generator) -> torch.Generator:
    if isinstance(seed_or_generator, torch.Generator):
        return seed_or_generator
    return torch.Generator().manual_seed(int(seed_or_generator))


def sample_factors(n: int, seed_or_generator: int | torch.Generator) -> Factors:
    """Draw n portraits' factors from the distributions in FACTORS.

    Args:
        n: batch size (>= 1).
        seed_or_generator: an int seed or a CPU torch.Generator (advanced in place).
    Returns:
        Factors with [n] tensors on the CPU; the same seed always gives the same factors.
    """
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    g = _generator(seed_or_generator)
    vals = {}
    for s in FACTORS:
        if s.kind == "continuous":
            u = torch.rand(n, generator=g, dtype=torch.float64)
            vals[s.name] = (s.low + (s.high - s.low) * u).float()
        else:
            p = torch.tensor(s.probs, dtype=torch.float64)
            vals[s.name] = torch.multinomial(p, n, replacement=True, generator=g)
    return Factors(vals)


def with_view(factors: Factors, *, yaw: float | Tensor | None = None,
              pitch: float | Tensor | None = None) -> Factors:
    """The same people seen from another view (degrees; scalars broadcast over the batch).
    Any angle renders; the table's ranges are only where sampling draws from."""
    vals = dict(factors.values)
    for name, angle in (("yaw", yaw), ("pitch", pitch)):
        if angle is not None:
            vals[name] = torch.as_tensor(angle, dtype=torch.float32).expand(len(factors)).clone()
    return Factors(vals)


def _trig(degrees: Tensor) -> tuple[Tensor, Tensor]:
    """cos and sin [N] float64, computed per element in Python so that a portrait's numbers
    never depend on its position in a vectorised batch."""
    rad = [math.radians(x) for x in degrees.tolist()]
    return (torch.tensor([math.cos(r) for r in rad], dtype=torch.float64),
            torch.tensor([math.sin(r) for r in rad], dtype=torch.float64))


def head_rotation(yaw: Tensor, pitch: Tensor) -> Tensor:
    """Head-to-world rotations R = R_y(yaw) R_x(pitch) [N, 3, 3] float64 (angles in degrees [N]).
    R_y(yaw) turns +z (the nose) towards +x (image right); R_x(pitch) turns +z towards +y (up)."""
    (ca, sa), (cb, sb) = _trig(yaw), _trig(pitch)
    z = torch.zeros_like(ca)
    return torch.stack([torch.stack([ca, -sa * sb, sa * cb], -1),
                        torch.stack([z, cb, sb], -1),
                        torch.stack([-sa, -ca * sb, ca * cb], -1)], -2)


# ----------------------------------------------------------------------------- rendering

def _cov(sd: Tensor, inv_pix: Tensor | float) -> Tensor:
    """Pixel coverage of the region sd > 0 from a signed distance (1 px wide ramp)."""
    return (sd * inv_pix + 0.5).clamp_(0.0, 1.0)


def _col(x: Tensor) -> Tensor:  # per-image [n] (float64) -> [n,1,1] float32 for the grid
    return x.reshape(-1, 1, 1).float()


def _vec(n: int, *xyz: float | Tensor) -> Tensor:
    return torch.stack([torch.as_tensor(c, dtype=torch.float64).expand(n) for c in xyz], 1)


def _lambert(cos: Tensor, ambient: float = 0.42) -> Tensor:
    return cos.clamp(min=0).mul_(1.0 - ambient).add_(ambient)


@dataclass(frozen=True)
class _Grid:
    """Pixel centres u [1,1,W], v [1,H,1], pixel size, and the rays of n heads in head frames:
    origin o(u,v) = o0 + u*ou + v*ov and direction d, each [n,3]; light and view directions
    [n,3] in the head frame (light_world in the world frame)."""
    u: Tensor
    v: Tensor
    pix: float
    o0: Tensor
    ou: Tensor
    ov: Tensor
    d: Tensor
    light: Tensor
    view: Tensor
    light_world: Tensor

    def affine(self, c0: Tensor, cu: Tensor, cv: Tensor, cd: Tensor | None = None,
               t: Tensor | None = None) -> Tensor:
        """Evaluate c0 + cu*u + cv*v (+ cd*t) with per-image coefficients [n] on the grid."""
        out = (_col(c0) + _col(cu) * self.u) + _col(cv) * self.v
        return out if cd is None else out.add_(_col(cd) * t)


def _grid(f: Factors, size: int) -> _Grid:
    s = VIEW_HALF_EXTENT
    centres = (torch.arange(size, dtype=torch.float32) + 0.5) * (2 * s / size) - s
    rot = head_rotation(f["yaw"], f["pitch"])       # [n,3,3] head -> world
    rt = rot.transpose(1, 2)
    cam = torch.tensor([0.0, 0.0, CAMERA_Z], dtype=torch.float64) - torch.tensor(HEAD_CENTER,
                                                                               dtype=torch.float64)
    (caz, saz), (cel, sel) = _trig(f["light_azimuth"]), _trig(f["light_elevation"])
    light = torch.stack([saz * cel, sel, caz * cel], 1)
    return _Grid(u=centres.reshape(1, 1, -1), v=centres.flip(0).reshape(1, -1, 1),
                 pix=2 * s / size, o0=rt @ cam, ou=rot[:, 0], ov=rot[:, 1], d=-rot[:, 2],
                 light=(rt @ light.unsqueeze(2)).squeeze(2), view=rot[:, 2], light_world=light)


@dataclass(frozen=True)
class _Hit:
    """Rays against one ellipsoid per image. In the ellipsoid's unit-sphere frame the ray is
    o0 + u*ou + v*ov + t*d (coefficients [n,3]); everything along it is affine in (u, v, t),
    so coordinates and normals are evaluated on demand from per-image coefficients."""
    g: _Grid
    alpha: Tensor    # [n,H,W] coverage
    t: Tensor        # [n,H,W] front hit distance (silhouette point where the ray misses)
    tmid: Tensor     # [n,H,W] midpoint between the front and back hits
    o0: Tensor
    ou: Tensor
    ov: Tensor
    d: Tensor
    centre: Tensor   # [n,3] head frame
    axes: Tensor     # [n,3]
    to_local: Tensor | None  # [n,3,3] head-frame vectors -> ellipsoid axes (None: the same)

    def q(self, k: int, t: Tensor | None = None) -> Tensor:
        """Unit-sphere coordinate k [n,H,W] at distance t (default: the front hit)."""
        return self.g.affine(self.o0[:, k], self.ou[:, k], self.ov[:, k], self.d[:, k],
                             self.t if t is None else t)

    def point(self, k: int) -> Tensor:
        """Head-frame coordinate k [n,H,W] of the front hit (axis-aligned ellipsoids)."""
        a, c = self.axes[:, k], self.centre[:, k]
        return self.g.affine(c + a * self.o0[:, k], a * self.ou[:, k], a * self.ov[:, k],
                             a * self.d[:, k], self.t)

    def cosines(self, *dirs: Tensor) -> list[Tensor]:
        """Cosine between the surface normal (q / axes) and each head-frame direction [n,3]."""
        a0, au, av, ad = (x / self.axes for x in (self.o0, self.ou, self.ov, self.d))
        if self.to_local is not None:
            dirs = tuple((self.to_local @ w.unsqueeze(2)).squeeze(2) for w in dirs)
        g, u, v, t = self.g, self.g.u, self.g.v, self.t
        # |normal|^2 is a quadratic in (u, v) plus terms in t
        norm2 = ((_col((au * au).sum(1)) * u + _col(2 * (a0 * au).sum(1))) * u
                 + ((_col((av * av).sum(1)) * v + _col(2 * (a0 * av).sum(1))) * v
                    + _col((a0 * a0).sum(1))))
        norm2 = norm2 + _col(2 * (au * av).sum(1)) * u * v
        lin = g.affine(2 * (a0 * ad).sum(1), 2 * (au * ad).sum(1), 2 * (av * ad).sum(1),
                       (ad * ad).sum(1), t)
        inv = norm2.add_(lin.mul_(t)).clamp_(min=1e-12).sqrt_().reciprocal_()
        return [g.affine((a0 * w).sum(1), (au * w).sum(1), (av * w).sum(1), (ad * w).sum(1),
                         t).mul_(inv) for w in dirs]


def _cast(g: _Grid, centre: Tensor, axes: Tensor, to_local: Tensor | None = None) -> _Hit:
    """Ray-cast ellipsoids (head frame centre [n,3], semi-axes [n,3] along the head axes or,
    given to_local [n,3,3], along its rows). The silhouette's signed distance is the ray
    discriminant over its screen gradient (both exact polynomials in u, v)."""
    o0, ou, ov, d = g.o0 - centre, g.ou, g.ov, g.d
    if to_local is not None:
        o0, ou, ov, d = ((to_local @ x.unsqueeze(2)).squeeze(2) for x in (o0, ou, ov, d))
    o0, ou, ov, d = o0 / axes, ou / axes, ov / axes, d / axes
    a = (d * d).sum(1)
    b0, bu, bv = (o0 * d).sum(1), (ou * d).sum(1), (ov * d).sum(1)
    c0, cu, cv = (o0 * o0).sum(1) - 1, 2 * (o0 * ou).sum(1), 2 * (o0 * ov).sum(1)
    cuu, cvv, cuv = (ou * ou).sum(1), (ov * ov).sum(1), 2 * (ou * ov).sum(1)
    kuu, kvv, kuv = _col(bu * bu - a * cuu), _col(bv * bv - a * cvv), _col(2 * bu * bv - a * cuv)
    ku, kv, k0 = _col(2 * b0 * bu - a * cu), _col(2 * b0 * bv - a * cv), _col(b0 * b0 - a * c0)
    u, v = g.u, g.v
    kuv_u = kuv * u
    disc = (kuu * u + ku) * u + ((kvv * v + kv) * v + k0) + kuv_u * v
    gu = (2 * kuu * u + ku) + kuv * v
    gv = (2 * kvv * v + kv) + kuv_u
    alpha = _cov(disc / (gu.square_() + gv.square_() + 1e-12).sqrt_(), 1.0 / g.pix)
    tmid = g.affine(-b0 / a, -bu / a, -bv / a)
    t = tmid - disc.clamp_(min=0).sqrt_().div_(_col(a))
    return _Hit(g, alpha, t, tmid, o0, ou, ov, d, centre, axes, to_local)


def _head(g: _Grid, f: Factors, n: int) -> tuple[Tensor, Tensor, list[Tensor], list[Tensor]]:
    """Union of a cranium and a jaw ellipsoid that meet at a shallow angle (no visible gap).
    Returns coverage and t [n,H,W], head-frame x, y, z of the front surface, and its cosines
    with the light and the view direction."""
    fw, fl = f["face_width"], f["face_length"]
    cran = _cast(g, _vec(n, 0, 0, 0), _vec(n, 0.70 * fw, 0.86 * fl, 0.80))
    jaw = _cast(g, _vec(n, 0, (-0.16 - 0.06 * f["jaw"]) * fl, 0.03),
                _vec(n, 0.70 * fw * (0.6 + 0.42 * f["jaw"]), (0.84 - 0.08 * f["jaw"]) * fl, 0.77))
    both = (cran.alpha > 0.5) & (jaw.alpha > 0.5)
    pick = torch.where(both, cran.t <= jaw.t, cran.alpha >= jaw.alpha)
    p = [torch.where(pick, cran.point(k), jaw.point(k)) for k in range(3)]
    # shading blends the two normals within 0.06 of the seam, so it shows no crease
    w = torch.where(both, (jaw.t - cran.t).mul_(1 / 0.12).add_(0.5).clamp_(0, 1), pick.float())
    cos = [cj.add_((cc - cj).mul_(w)) for cc, cj in zip(cran.cosines(g.light, g.view),
                                             jaw.cosines(g.light, g.view))]
    return torch.maximum(cran.alpha, jaw.alpha), torch.minimum(cran.t, jaw.t), p, cos


def _decals(g: _Grid, f: Factors, p: list[Tensor], cos_view: Tensor, skin: Tensor,
            hair: Tensor) -> tuple[Tensor, Tensor]:
    """Paint beard, mouth, eyes, brows and glasses arms onto the head surface at head-frame
    points p = (x, y, z). Returns colour [n,3,H,W] (unshaded) and labels [n,H,W] uint8."""
    x, y, z = p
    n = x.shape[0]
    # decal edges soften where the surface is seen at a grazing angle
    inv = cos_view.clamp(0.3, 1.0).mul_(1.0 / g.pix)
    front = _cov(z + 0.15, inv)
    ax = x.abs()
    col = skin[:, :, None, None].expand(-1, -1, *x.shape[1:]).clone()
    lab = torch.full_like(x, _P["skin"], dtype=torch.uint8)

    def paint(alpha: Tensor, rgb: Tensor, label: int) -> None:
        rgb = rgb.reshape(n, 3, 1, 1).float() if rgb.ndim == 2 else rgb
        col.add_((rgb - col).mul_(alpha.unsqueeze(1)))
        lab.masked_fill_(alpha > 0.5, label)

    fl, es = _col(f["face_length"]), _col(f["eye_size"])
    ym = -0.5 * fl
    if bool(f["beard"].any()):
        beard = _cov(ym + 0.07 + 0.55 * x * x - y, inv).mul_(front)
        paint(beard.mul_(_col(f["beard"].float())), hair * 0.85, _P["beard"])
    # mouth: lips around a centre line bent by the smile, a dark gap opened by mouth_open
    sm, op = _col(f["smile"]), _col(f["mouth_open"])
    w = 0.17 * (1 + 0.12 * sm)
    xn2 = (x / w).square_()
    dy = y - (ym + 0.11 * sm * (xn2 - 0.35))
    gap = (0.085 * op * (1 - xn2)).clamp_(min=0)
    ady = dy.abs()
    mouth = torch.minimum(torch.minimum(gap + 0.024 - ady, w - ax), z)  # front half only
    paint(_cov(mouth, inv), skin * torch.tensor([0.62, 0.28, 0.28]), _P["mouth"])
    inner = torch.minimum(torch.minimum(gap - ady, 0.95 * w - ax), z)
    paint(_cov(inner, inv), torch.tensor([[0.30, 0.05, 0.07]]).expand(n, 3), _P["mouth"])
    teeth = torch.minimum(inner, dy - 0.35 * gap)
    paint(_cov(teeth, inv), torch.tensor([[0.97, 0.96, 0.92]]).expand(n, 3), _P["mouth"])
    # eyes (mirrored in |x|): sclera ellipse, iris and pupil discs
    ex = _col(0.27 * f["face_width"])
    rx, ry = 0.115 * es, 0.078 * es
    lx = ax - ex
    r = torch.sqrt(lx * lx + y * y)
    eye = (1 - torch.sqrt((lx / rx).square_() + (y / ry).square_())) * ry
    iris_rgb = _IRIS[f["eye_color"]].reshape(n, 3, 1, 1)
    ball = iris_rgb + (0.02 - iris_rgb) * _cov(0.4 * ry - r, inv).unsqueeze(1)
    ball = (ball - 0.97).mul_(_cov(0.9 * ry - r, inv).unsqueeze(1)).add_(0.97)
    paint(_cov(eye, inv).mul_(front), ball, _P["eyes"])
    # brows: arcs above the eyes
    th, bw = 0.008 + 0.03 * _col(f["brow_thickness"]), 0.14
    yb = 0.1 * es + 0.09 - 0.03 * (lx / bw).square()
    brow = torch.minimum(th - (y - yb).abs_(), bw - lx.abs())
    paint(_cov(brow, inv).mul_(front), hair * 0.7, _P["brows"])
    if bool((f["glasses"] > 0).any()):  # arms run along the side of the head to the ears
        arm = torch.minimum(0.022 - (y - 0.03).abs_(), ax - (ex + 0.15))
        arm = _cov(arm, inv).mul_(_cov(z + 0.3, inv)).mul_(_col((f["glasses"] > 0).float()))
        paint(arm, _FRAME[f["glasses_color"]], _P["glasses"])
    return col, lab


def _glasses(g: _Grid, f: Factors, n: int) -> tuple[Tensor, Tensor]:
    """Frames on a vertical cylinder (radius 0.78) that wraps the face 0.04-0.07 in front of the
    eyes; returns coverage and ray distance [n,H,W]."""
    rad = 0.78
    cyl = _cast(g, _vec(n, 0, 0, 0.83 - rad), _vec(n, rad, 100.0, rad))
    qx, qz = cyl.q(0), cyl.q(2)
    x, y = qx * rad, cyl.q(1).mul_(100.0)
    cos = (qx * _col(g.view[:, 0])).add_(qz * _col(g.view[:, 2]))
    ex = _col(0.27 * f["face_width"])
    lx = x.abs() - ex
    ft = 0.03                                                    # half frame thickness
    ring = ft - (torch.sqrt(lx * lx + y * y) - 0.155).abs_()
    bx, by = lx.abs() - 0.135, y.abs() - 0.095                   # rounded box 0.165 x 0.125
    box = (torch.sqrt(bx.clamp(min=0).square_() + by.clamp(min=0).square_())
           + torch.maximum(bx, by).clamp_(max=0) - 0.03)
    style = _col(f["glasses"])
    sd = torch.where(style == 1, ring, ft - box.abs_())
    half = torch.where(style == 1, 0.155, 0.165)
    bridge = torch.minimum(ft - (y - 0.02).abs_(), ex - half + 0.01 - x.abs())
    sd = torch.maximum(sd, bridge)
    alpha = _cov(sd, cos.clamp(0.2, 1.0).mul_(1.0 / g.pix)).mul_(cyl.alpha)
    return alpha.mul_((cos > 0) & (style > 0)), cyl.t


def _hair(g: _Grid, f: Factors, n: int) -> list[tuple[Tensor, Tensor, Tensor | float]]:
    """Hair layers (coverage, t, shade): the front and back of the cap on an enlarged head
    shell (its hairline height is a function of how far round the head a point lies), and the
    long-hair or bun volume."""
    st = _STYLE[f["hair_style"]]                                 # [n,7]
    fw, fl = f["face_width"], f["face_length"]
    layers: list[tuple[Tensor, Tensor, Tensor | float]] = []
    if bool((st[:, 0] > 0).any()):
        axes = torch.stack([0.70 * fw * st[:, 1], 0.86 * fl * st[:, 2], 0.80 * st[:, 1]], 1)
        h = _cast(g, _vec(n, 0, 0.03, -0.01), axes)
        t_back = h.tmid * 2 - h.t
        front_s, side_s, back_s = (_col(st[:, k]) for k in (3, 4, 5))
        for t in (h.t, t_back):
            qy, qz = h.q(1, t), h.q(2, t)
            line = torch.where(qz >= 0,
                               side_s + (front_s - side_s) * ((qz - 0.3) / 0.55).clamp_(0, 1),
                               side_s + (back_s - side_s) * (qz / -0.7).clamp_(0, 1))
            cap = _cov(qy - line, 1.5 / g.pix).mul_(h.alpha).mul_(_col(st[:, 0]))
            if t is h.t:  # strands: shallow grooves running from the crown
                # a triangle wave of a "diamond angle" around the vertical axis (no
                # transcendental functions: exact, hence batch-independent, arithmetic)
                qx = h.q(0, t)
                wave = (qx / (qx.abs() + qz.abs() + 1e-6)).mul_(5.5).add_(8.0).frac_()
                wave = wave.sub_(0.5).abs_()  # in [0, 0.5]
                strands = wave.mul_(1 - qy * qy).mul_(0.24).add_(0.88)
                layers.append((cap, t, _lambert(h.cosines(g.light)[0]).mul_(strands)))
            else:  # the inside of the far side is in shadow
                layers.append((cap, t, 0.5))
    extra = st[:, 6]
    if bool((extra == 1).any()):  # long hair hangs from the back of the head, turning with
        hang = head_rotation(torch.zeros(n), f["pitch"])  # the yaw only: x_hang = R_x x_head
        down = (hang.transpose(1, 2) @ _vec(n, 0, -0.67 * fl, 0).unsqueeze(2)).squeeze(2)
        e = _cast(g, _vec(n, 0, 0.05 * fl, -0.45) + down, _vec(n, 0.74 * fw, 1.15 * fl, 0.38),
                  hang)
        layers.append((e.alpha.mul_(_col((extra == 1).double())), e.t,
                       _lambert(e.cosines(g.light)[0])))
    if bool((extra == 2).any()):
        e = _cast(g, _vec(n, 0, 0.86 * fl, -0.34), _vec(n, 0.27, 0.25, 0.27))
        layers.append((e.alpha.mul_(_col((extra == 2).double())), e.t,
                       _lambert(e.cosines(g.light)[0])))
    return layers


@dataclass(frozen=True)
class _Layer:
    """One surface: coverage and ray distance [n,H,W]; colour = rgb [n,3,1,1] or [n,3,H,W]
    times shade ([n,H,W] or a number); label an int or a [n,H,W] uint8 map."""
    alpha: Tensor
    t: Tensor
    rgb: Tensor
    shade: Tensor | float
    label: int | Tensor


def _render_chunk(f: Factors, size: int) -> tuple[Tensor, Tensor, Tensor]:
    # Per-image numbers are computed in float64 and rounded once to float32 (`_col`); the
    # pixel grid uses only correctly rounded float32 operations (no fused multiply-adds, no
    # transcendental functions), so a portrait is bit-identical whatever its batch, chunk
    # or thread count.
    n = len(f)
    f = Factors({k: v.double() if v.is_floating_point() else v for k, v in f.values.items()})
    g = _grid(f, size)
    tone = f["skin_tone"] * (len(_SKIN) - 1)
    lo = tone.floor().long().clamp(max=len(_SKIN) - 2)
    low = _SKIN[lo].double()
    skin = (low + (_SKIN[lo + 1].double() - low) * (tone - lo).unsqueeze(1)).float()
    hair = _HAIR[f["hair_color"]]
    skin4, hair4 = skin[:, :, None, None], hair[:, :, None, None]

    alpha, t, p, (cos_light, cos_view) = _head(g, f, n)
    col, lab = _decals(g, f, p, cos_view, skin, hair)
    layers = [_Layer(alpha, t, col, _lambert(cos_light), lab)]
    fw = f["face_width"]
    nose = _cast(g, _vec(n, 0, -0.17 * f["face_length"], 0.72), _vec(n, 0.078, 0.16, 0.17))
    layers.append(_Layer(nose.alpha, nose.t, skin4 * 0.93, _lambert(nose.cosines(g.light)[0]),
                         _P["nose"]))
    ears_out = (f["hair_style"] != 2) & (f["hair_style"] != 3)  # long hair and afros hide them
    if bool(ears_out.any()):
        # the two ears never overlap on screen: keep the one covering each pixel as one layer
        ears = [_cast(g, _vec(n, side * 0.68 * fw, -0.06, -0.06), _vec(n, 0.075, 0.17, 0.11))
                for side in (-1.0, 1.0)]
        left = ears[0].alpha >= ears[1].alpha
        cos = torch.where(left, ears[0].cosines(g.light)[0], ears[1].cosines(g.light)[0])
        layers.append(_Layer(torch.maximum(ears[0].alpha, ears[1].alpha).mul_(
            _col(ears_out.float())), torch.where(left, ears[0].t, ears[1].t), skin4,
            _lambert(cos), _P["skin"]))
    for alpha, t, shade in _hair(g, f, n):
        layers.append(_Layer(alpha, t, hair4, shade, _P["hair"]))
    if bool((f["glasses"] > 0).any()):
        ga, gt = _glasses(g, f, n)
        layers.append(_Layer(ga, gt, _FRAME[f["glasses_color"]][:, :, None, None], 1.0,
                             _P["glasses"]))
    layers.append(_neck(g, n, size, skin4))
    return _composite(layers, _background(f), n, size)


def _neck(g: _Grid, n: int, size: int, skin4: Tensor) -> _Layer:
    """A vertical elliptic cylinder in the world frame, under the head (it does not turn)."""
    rx, rz, top = 0.25, 0.22, HEAD_CENTER[1] - 0.45
    un = (g.u / rx).clamp(-1, 1)
    zn = (1 - un * un).sqrt()
    alpha = _cov(torch.minimum(rx - g.u.abs(), top - g.v), 1.0 / g.pix).expand(n, size, size)
    t = (CAMERA_Z - (-0.08 + rz * zn)).expand(n, size, size)
    light = g.light_world
    dot = un / rx * _col(light[:, 0]) + zn / rz * _col(light[:, 2])
    shade = (dot / (un.square() / rx ** 2 + zn.square() / rz ** 2).sqrt()).clamp(min=0)
    return _Layer(alpha, t, skin4 * 0.9, (shade * 0.58 + 0.42).expand(n, 1, size), _P["skin"])


def _background(f: Factors) -> Tensor:
    rgb = [colorsys.hsv_to_rgb(float(h), 0.35, 0.88) for h in f["background_hue"]]
    return torch.tensor(rgb, dtype=torch.float32).reshape(-1, 3)


def _composite(layers: list[_Layer], bg: Tensor, n: int, size: int
               ) -> tuple[Tensor, Tensor, Tensor]:
    """Exact front-to-back 'over' of all layers in per-pixel depth order, then the background:
    layer k's weight is alpha_k times the product of (1 - alpha_j) over the layers j in front
    of it, found by pairwise depth tests (cheaper than sorting a few layers per pixel)."""
    shape = (n, size, size)
    ts = [torch.where(ly.alpha > 0, ly.t, math.inf).expand(shape) for ly in layers]
    keep = [(1 - ly.alpha).expand(shape) for ly in layers]
    trans = [torch.ones(shape) for _ in layers]
    for j in range(len(layers)):
        for k in range(j + 1, len(layers)):
            j_front = ts[j] <= ts[k]
            trans[k].mul_(torch.where(j_front, keep[j], 1.0))
            trans[j].mul_(torch.where(j_front, 1.0, keep[k]))
    w_bg = math.prod(keep[1:], start=keep[0].clone())
    rgb = bg[:, :, None, None] * w_bg.unsqueeze(1)
    best_w, parts = w_bg, torch.zeros(shape, dtype=torch.uint8)
    depth = torch.full(shape, math.inf)
    for ly, tr, t in zip(layers, trans, ts):
        w = tr.mul_(ly.alpha)
        rgb.add_(ly.rgb * (w * ly.shade).unsqueeze(1))
        better = w > best_w
        best_w = torch.maximum(best_w, w)
        parts = torch.where(better, ly.label, parts)
        depth = torch.where(better, t, depth)
    return rgb.clamp_(0, 1).mul_(2).sub_(1), parts.long(), depth


@torch.inference_mode()
def render(factors: Factors, size: int = 64, *, chunk: int | None = None) -> RenderOutput:
    """Render a batch of portraits.

    Portraits are rendered in chunks sorted by which optional parts they have (so a chunk
    without glasses skips them); a portrait's pixels do not depend on the rest of the batch.

    Args:
        factors: N portraits' factors (CPU tensors), e.g. from `sample_factors`.
        size: output height and width in pixels (each size is rendered directly).
        chunk: portraits evaluated together; None picks about 128k pixels per chunk (32 at
            64 px, 8 at 128 px), which keeps the working set in the CPU caches.
    Returns:
        RenderOutput with img [N,3,size,size] float32 in [-1,1], parts [N,size,size] int64,
        depth [N,size,size] float32, all on the CPU.
    """
    if size < 8:
        raise ValueError(f"size must be at least 8 pixels, got {size}")
    chunk = max(1, 131072 // (size * size)) if chunk is None else chunk
    if chunk < 1:
        raise ValueError(f"chunk must be at least 1, got {chunk}")
    for spec in FACTORS:
        codes = factors[spec.name]
        if spec.kind == "categorical" and len(codes) and (codes.min() < 0 or
                                                          codes.max() >= len(spec.categories)):
            raise ValueError(f"{spec.name} codes must lie in 0..{len(spec.categories) - 1}")
    key = factors["hair_style"] * 4 + (factors["glasses"] > 0).long() * 2 + factors["beard"]
    order = torch.argsort(key, stable=True)
    outs = [_render_chunk(factors.select(order[i:i + chunk]), size)
            for i in range(0, len(factors), chunk)]
    img, parts, depth = (torch.cat([o[k] for o in outs])[torch.argsort(order)] for k in range(3))
    return RenderOutput(img, parts, depth, factors)


def factors_for_seeds(seeds: Sequence[int]) -> Factors:
    """One portrait's factors per seed: row i is `sample_factors(1, seeds[i])`."""
    rows = [sample_factors(1, int(s)) for s in seeds]
    if not rows:
        raise ValueError("at least one seed is needed")
    return Factors({k: torch.cat([r[k] for r in rows]) for k in rows[0].values})


def render_seeds(seeds: Sequence[int], size: int = 64) -> RenderOutput:
    """Render one portrait per seed; portrait i depends on seeds[i] only."""
    return render(factors_for_seeds(seeds), size)


# ----------------------------------------------------------------------------- captions

_HUES = ((0.04, "red"), (0.10, "orange"), (0.18, "yellow"), (0.45, "green"), (0.54, "cyan"),
         (0.72, "blue"), (0.83, "purple"), (0.95, "pink"), (1.01, "red"))


def caption(factors: Factors, i: int) -> str:
    """English description of portrait i, e.g. 'a smiling person with short red hair and round
    glasses, turned left'. Thresholds: smile > 0.5 'broadly smiling', > 0.15 'smiling',
    < -0.15 'frowning'; mouth_open > 0.5; |yaw| > 12 turned; |pitch| > 8 looking up/down."""
    d = factors.to_dict(i)
    sm = float(d["smile"])
    mood = ("broadly smiling" if sm > 0.5 else "smiling" if sm > 0.15
            else "frowning" if sm < -0.15 else "neutral-looking")
    style, colour = d["hair_style"], d["hair_color"]
    hair = {"bald": "a bald head", "bun": f"{colour} hair in a bun",
            "afro": f"a {colour} afro"}.get(str(style), f"{style} {colour} hair")
    extras = [f"{d['eye_color']} eyes"]
    if d["beard"] == "beard":
        extras.append(f"a {colour} beard")
    if d["glasses"] != "none":
        extras.append(f"{d['glasses']} {d['glasses_color']} glasses")
    if float(d["mouth_open"]) > 0.5:
        extras.append("an open mouth")
    parts = [hair] + extras
    text = f"a {mood} person with " + ", ".join(parts[:-1]) + " and " + parts[-1]
    yaw, pitch = float(d["yaw"]), float(d["pitch"])
    pose = ("turned left" if yaw < -12 else "turned right" if yaw > 12 else "facing the camera")
    if abs(pitch) > 8:
        pose += ", looking up" if pitch > 0 else ", looking down"
    bg = next(name for edge, name in _HUES if float(d["background_hue"]) < edge)
    article = "an" if bg[0] in "aeiou" else "a"
    return f"{text}, {pose}, on {article} {bg} background"


def captions(factors: Factors) -> list[str]:
    """`caption` for every portrait of the batch."""
    return [caption(factors, i) for i in range(len(factors))]


# ----------------------------------------------------------------------------- documentation

def _sweep(base: Factors, spec: FactorSpec, columns: int) -> Factors:
    """base (one portrait) repeated with spec's factor swept over its range or categories."""
    if spec.kind == "continuous":
        values = torch.linspace(spec.low, spec.high, columns)
    else:
        values = torch.arange(len(spec.categories))
    f = base.select([0] * len(values))
    vals = dict(f.values)
    vals[spec.name] = values.to(f[spec.name].dtype)
    if spec.name == "glasses_color":
        vals["glasses"] = torch.ones_like(vals["glasses"])
    return Factors(vals)


def save_docs(out_dir: str) -> list[str]:
    """Write portraits_64.png (64 samples), portraits_128.png (16), portraits_yaw.png (one person
    at 7 yaws with part maps) and portraits_factors.png (each factor swept) into out_dir."""
    from pathlib import Path

    import numpy as np
    from PIL import Image, ImageDraw

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    palette = np.array([[40, 40, 40], [240, 200, 160], [130, 70, 20], [40, 90, 250],
                        [220, 40, 220], [40, 200, 60], [230, 30, 30], [30, 220, 230],
                        [250, 230, 40]], dtype=np.uint8)
    f = sample_factors(64, 0)
    sheets = {"portraits_64.png": image_grid(to_uint8_hwc(render(f, 64).img), columns=8, pad=2),
              "portraits_128.png": image_grid(to_uint8_hwc(render(f.select(slice(0, 16)), 128).img),
                                              columns=4, pad=2)}
    person = with_view(f.select([11] * 7), yaw=torch.linspace(-40, 40, 7), pitch=0.0)
    strip = render(person, 128)
    sheets["portraits_yaw.png"] = np.concatenate(
        [image_grid(to_uint8_hwc(strip.img), columns=7, pad=2),
         image_grid(palette[strip.parts.numpy()], columns=7, pad=2)[2:]])
    base = _set_view(f.select([5]))
    rows = [image_grid(to_uint8_hwc(render(_sweep(base, s, 7), 96).img), columns=7, pad=2)
            for s in FACTORS]
    width = max(r.shape[1] for r in rows)
    sheet = Image.new("RGB", (width + 130, sum(r.shape[0] for r in rows)), "white")
    draw, y = ImageDraw.Draw(sheet), 0
    for spec, r in zip(FACTORS, rows):
        sheet.paste(Image.fromarray(r), (130, y))
        draw.text((6, y + r.shape[0] // 2 - 6), spec.name, fill="black")
        y += r.shape[0]
    sheets["portraits_factors.png"] = np.asarray(sheet)
    for name, arr in sheets.items():
        Image.fromarray(arr).save(out / name, optimize=True)
    return sorted(sheets)


def _set_view(f: Factors) -> Factors:
    """A plain reference portrait for the factor sheet: frontal, short brown hair, no extras."""
    vals = dict(with_view(f, yaw=0.0, pitch=0.0).values)
    for name, code in (("hair_style", 1), ("hair_color", 1), ("glasses", 0), ("beard", 0)):
        vals[name] = torch.full_like(vals[name], code)
    for name, value in (("smile", 0.4), ("light_azimuth", 20.0), ("light_elevation", 25.0)):
        vals[name] = torch.full_like(vals[name], value)
    return Factors(vals)


if __name__ == "__main__":
    import sys

    torch.set_num_threads(1)
    print("\n".join(save_docs(sys.argv[1] if len(sys.argv) > 1 else "docs")))
