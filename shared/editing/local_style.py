"""Editing in Style: local semantics of a StyleGAN2 by clustering activations, and local style
transfer (Collins, Bala, Süsstrunk, Susstrunk, "Editing in Style: Uncovering the Local Semantics
of GANs", CVPR 2020; IVRL/GANLocalEditing).

1. Part catalogue: spherical k-means (cosine k-means on unit-normalised per-pixel feature
   vectors) over one layer's activations of N generated samples gives K clusters, i.e. a part
   map per sample, which a user names ("eyes" = clusters 2 and 5).
2. Contribution matrix per style layer l: M_l[k, c] = the share of the energy of the feature map
   that style channel c of layer l scales (the layer's input channel c, squared and summed over
   pixels) that falls inside cluster k (cluster maps resized to the layer's resolution, nearest),
   averaged over the samples. Rows of a named part are summed. (The official catalogue files
   are pickles of their own classes; this is our definition of the same per-channel "inside"
   share.)
3. Transfer (the official StyleInterpolator rule): per layer, sort channels by their inside share
   for the part, accumulate the outside share (1 - M) in that order and keep the channels while
   the accumulated outside share stays below epsilon and the inside share is above rho; those
   channels take the reference's style: s = (1 - q) * s_target + q * s_reference.

StyleGAN2 only (it needs the S-space API). Nothing here changes the generator.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from shared.errors import InputError
from shared.images import to_uint8_hwc
from shared.model_cache import DerivedCache, default_cache
from shared.portraits import PART_NAMES

__all__ = ["PartCatalog", "build_catalog", "cached_catalog", "cluster_overlay", "contribution_image", "default_layer",
           "locality", "name_clusters", "part_channels", "part_maps", "spherical_kmeans",
           "style_activations", "transfer_part"]

PALETTE = np.array([[230, 25, 75], [60, 180, 75], [255, 225, 25], [0, 130, 200], [245, 130, 48], [145, 30, 180],
                    [70, 240, 240], [240, 50, 230], [210, 245, 60], [250, 190, 212], [0, 128, 128],
                    [220, 190, 255], [170, 110, 40], [255, 250, 200], [128, 0, 0], [170, 255, 195]], dtype=np.uint8)
MAX_K = len(PALETTE)


def _check(G: nn.Module) -> None:
    if getattr(G, "arch", None) != "stylegan2":
        raise InputError("Editing in Style needs a StyleGAN2 generator (the StyleGAN3 code has no S-space API).")


@torch.no_grad()
def style_activations(G: nn.Module, ws: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
    """The input feature map of every style layer's modulated convolution (what style channel c
    scales is input channel c), [N, C_l, H_l, W_l] each in `G.style_layers` order, and the image."""
    _check(G)
    mods = G._style_modules()
    feats: list[torch.Tensor | None] = [None] * len(mods)
    hooks = [m.register_forward_pre_hook(lambda mod, args, i=i: feats.__setitem__(i, args[0].detach().float().cpu()))
             for i, m in enumerate(mods)]
    try:
        img = G.synthesis(ws.to(next(G.parameters()).device), noise_mode="const").float().cpu()
    finally:
        for h in hooks:
            h.remove()
    return [f for f in feats], img


def spherical_kmeans(x: torch.Tensor, k: int, *, iters: int = 30, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Cosine k-means of the rows of x [P, C]: (unit centres [k, C], labels [P]). k-means++ style
    seeding from `seed`; deterministic."""
    if not 2 <= k <= min(MAX_K, x.shape[0]):
        raise InputError(f"Choose 2 to {min(MAX_K, x.shape[0])} parts.")
    u = F.normalize(x.double(), dim=1)
    g = torch.Generator().manual_seed(int(seed))
    centres = [u[int(torch.randint(u.shape[0], (1,), generator=g))]]
    for _ in range(1, k):
        d = 1 - (u @ torch.stack(centres).T).max(dim=1).values
        p = d.clamp_min(0) ** 2
        idx = int(torch.multinomial(p / p.sum() if float(p.sum()) > 0 else torch.ones_like(p), 1, generator=g))
        centres.append(u[idx])
    c = torch.stack(centres)
    labels = torch.zeros(u.shape[0], dtype=torch.long)
    for _ in range(iters):
        new = (u @ c.T).argmax(dim=1)
        if _ and torch.equal(new, labels):
            break
        labels = new
        for j in range(k):
            members = u[labels == j]
            if len(members):
                c[j] = F.normalize(members.sum(0), dim=0)
    return c.float(), labels


@dataclass(frozen=True, eq=False)
class PartCatalog:
    """A clustering of one layer plus the contribution matrices of every style layer."""
    layer: int                      # style-layer index whose input activations were clustered
    centres: torch.Tensor           # [K, C] unit
    contributions: list[torch.Tensor]   # per style layer [K, C_l]: inside share per channel
    samples: int
    names: dict[int, str] = field(default_factory=dict)   # cluster -> name (e.g. from a part map)

    @property
    def k(self) -> int:
        return int(self.centres.shape[0])


def part_maps(G: nn.Module, catalog: PartCatalog, ws: torch.Tensor) -> torch.Tensor:
    """Cluster label maps [N, R, R] at the image resolution for latents ws."""
    feats, _ = style_activations(G, ws)
    return _labels(feats[catalog.layer], catalog.centres, int(G.img_resolution))


def _labels(feat: torch.Tensor, centres: torch.Tensor, size: int) -> torch.Tensor:
    n, c, h, w = feat.shape
    flat = F.normalize(feat.permute(0, 2, 3, 1).reshape(-1, c).double(), dim=1)
    lab = (flat @ centres.double().T).argmax(dim=1).reshape(n, 1, h, w).float()
    return F.interpolate(lab, size=(size, size), mode="nearest")[:, 0].long()


def default_layer(G: nn.Module) -> int:
    """The style layer clustered by default: the last conv layer at 32 px or below."""
    return max(l.index for l in G.style_layers if not l.is_torgb and l.resolution <= 32)


def cached_catalog(model_key: str, G: nn.Module, *, k: int = 8, layer: int | None = None, samples: int = 64,
                   seed: int = 0, progress: Callable[[float, str], object] | None = None,
                   cache: DerivedCache | None = None) -> tuple[PartCatalog, bool]:
    """`build_catalog` once per (model, layer, k, samples, seed), kept in the derived-data cache
    (`cache`, default the process model cache's; the catalogue is small: centres and contribution
    matrices). Returns (catalogue, whether it came from the cache)."""
    store = cache if cache is not None else default_cache().derived
    key = ("part-catalog", model_key, default_layer(G) if layer is None else int(layer), int(k), int(samples),
           int(seed))
    built: list[bool] = []

    def build() -> PartCatalog:
        built.append(True)
        return build_catalog(G, k=k, layer=key[2], samples=samples, seed=seed, progress=progress)

    catalog = store.get_or_build(key, build)
    return catalog, not built


def build_catalog(G: nn.Module, *, k: int = 8, layer: int | None = None, samples: int = 64, seed: int = 0,
                  progress: Callable[[float, str], object] | None = None) -> PartCatalog:
    """Cluster the input activations of style layer `layer` (default: the last conv layer at 32 px
    or below) over `samples` latents from `seed` into k parts, and measure every style layer's
    channel contributions to each part."""
    _check(G)
    layers = G.style_layers
    if layer is None:
        layer = default_layer(G)
    if not 0 <= int(layer) < len(layers):
        raise InputError(f"Layer {layer} does not exist; this model has style layers 0 to {len(layers) - 1}.")
    if not 2 <= samples <= 2000:
        raise InputError("Use 2 to 2,000 samples for the catalogue.")
    g = torch.Generator().manual_seed(int(seed))
    ws = G.mapping(torch.randn([samples, G.z_dim], generator=g).to(next(G.parameters()).device)).cpu()
    feats_all: list[list[torch.Tensor]] = []
    for start in range(0, samples, 16):
        feats, _ = style_activations(G, ws[start:start + 16])
        feats_all.append(feats)
        if progress is not None:
            progress(0.6 * min(1.0, (start + 16) / samples), f"activations of {min(start + 16, samples)} samples")
    feats = [torch.cat([f[i] for f in feats_all]) for i in range(len(layers))]
    target = feats[int(layer)]
    n, c, h, w = target.shape
    pixels = target.permute(0, 2, 3, 1).reshape(-1, c)
    if pixels.shape[0] > 60_000:  # cluster a subsample, then label every pixel
        sel = torch.randperm(pixels.shape[0], generator=g)[:60_000]
        centres, _ = spherical_kmeans(pixels[sel], k, seed=seed)
    else:
        centres, _ = spherical_kmeans(pixels, k, seed=seed)
    if progress is not None:
        progress(0.8, "clustered")
    contributions = []
    for f in feats:
        lab = _labels(target, centres, f.shape[-1])                            # [N, H_l, W_l]
        onehot = F.one_hot(lab, k).permute(0, 3, 1, 2).double()                # [N, K, H_l, W_l]
        energy = f.double().square()                                           # [N, C_l, H_l, W_l]
        inside = torch.einsum("nkhw,nchw->nkc", onehot, energy)
        total = energy.sum(dim=(2, 3)).clamp_min(1e-12)[:, None, :]
        contributions.append((inside / total).mean(0).float())
    if progress is not None:
        progress(1.0, "catalogue ready")
    return PartCatalog(int(layer), centres, contributions, samples)


def _q(share: torch.Tensor, rho: float, epsilon: float) -> torch.Tensor:
    order = torch.argsort(share, descending=True)
    outside = torch.cumsum(1 - share[order], dim=0)
    q = torch.zeros_like(share)
    q[order[outside < epsilon]] = 1
    return q * (share > rho).float()


@torch.no_grad()
def transfer_part(G: nn.Module, catalog: PartCatalog, ws_target: torch.Tensor, ws_reference: torch.Tensor,
                  clusters: Sequence[int], *, rho: float = 0.2, epsilon: float = 3.0, min_resolution: int = 16,
                  noise_mode: str = "const") -> tuple[torch.Tensor, int]:
    """Take the part made of `clusters` from the reference: (image [1, 3, R, R] in [-1, 1] CPU,
    number of style channels transferred). rho in [0, 1]: least inside share of a channel;
    epsilon: budget of accumulated outside share (larger = more channels); min_resolution: only
    style layers at this resolution or finer take part (coarse layers act on the whole image)."""
    _check(G)
    clusters = sorted({int(c) for c in clusters})
    if not clusters or not all(0 <= c < catalog.k for c in clusters):
        raise InputError(f"Choose the part's clusters among 0 to {catalog.k - 1}.")
    if not 0 <= rho <= 1 or not epsilon >= 0:
        raise InputError("rho must be between 0 and 1 and epsilon at least 0.")
    dev = next(G.parameters()).device
    st = G.synthesis.styles(torch.as_tensor(ws_target, dtype=torch.float32).to(dev))
    sr = G.synthesis.styles(torch.as_tensor(ws_reference, dtype=torch.float32).to(dev))
    out, moved = [], 0
    for layer, a, b, m in zip(G.style_layers, st, sr, catalog.contributions):
        q = _q(m[clusters].sum(0), rho, epsilon).to(a)
        if layer.resolution < min_resolution:
            q = torch.zeros_like(q)
        moved += int(q.sum())
        out.append((1 - q) * a + q * b)
    img = G.synthesis.from_styles(out, noise_mode=noise_mode).float().cpu().clamp(-1, 1)
    return img, moved


@torch.no_grad()
def name_clusters(G: nn.Module, catalog: PartCatalog, predictor, *, samples: int = 32, seed: int = 1) -> dict[int, str]:
    """Name each cluster after the demo world's part it overlaps most (the predictor's part map of
    `samples` fresh samples), e.g. {4: 'background (99%)', 0: 'skin (62%)'}."""
    g = torch.Generator().manual_seed(int(seed))
    ws = G.mapping(torch.randn([samples, G.z_dim], generator=g).to(next(G.parameters()).device)).cpu()
    maps = part_maps(G, catalog, ws)
    img = G.synthesis(ws.to(next(G.parameters()).device), noise_mode="const").float().cpu()
    small = img if img.shape[-1] == 64 else F.interpolate(img, size=(64, 64), mode="area")
    parts = predictor.predict(small).parts.cpu()
    if parts.shape[-1] != maps.shape[-1]:
        parts = F.interpolate(parts[:, None].float(), size=maps.shape[-2:], mode="nearest")[:, 0].long()
    names = {}
    for k in range(catalog.k):
        hist = torch.bincount(parts[maps == k], minlength=len(PART_NAMES)).float()
        if float(hist.sum()) == 0:
            names[k] = "unused"
            continue
        top = int(hist.argmax())
        names[k] = f"{PART_NAMES[top]} ({float(hist[top] / hist.sum()):.0%})"
    return names


def locality(before: torch.Tensor, after: torch.Tensor, region: torch.Tensor) -> float:
    """Share of the squared pixel change that lies inside `region` ([R, R] or [1, 1, R, R] bool/0-1)."""
    change = (after.float() - before.float()).square().sum(dim=1)[0]
    r = torch.as_tensor(region).float().reshape(change.shape)
    total = float(change.sum())
    return float((change * r).sum()) / total if total > 0 else 1.0


def cluster_overlay(images: torch.Tensor, labels: torch.Tensor, alpha: float = 0.55) -> np.ndarray:
    """uint8 [N, R, R, 3]: the images blended with a colour per cluster (PALETTE order)."""
    base = to_uint8_hwc(images).astype(np.float32)
    colours = PALETTE[labels.numpy() % MAX_K].astype(np.float32)
    return np.clip((1 - alpha) * base + alpha * colours, 0, 255).astype(np.uint8)


def part_channels(G: nn.Module, catalog: PartCatalog, clusters: Sequence[int], *, rho: float = 0.2,
                  epsilon: float = 3.0, min_resolution: int = 16) -> list[torch.Tensor]:
    """Per style layer, the 0/1 mask of the channels that belong to the part made of `clusters`
    (the same rule as `transfer_part`)."""
    _check(G)
    clusters = sorted({int(c) for c in clusters})
    if not clusters or not all(0 <= c < catalog.k for c in clusters):
        raise InputError(f"Choose the part's clusters among 0 to {catalog.k - 1}.")
    out = []
    for layer, m in zip(G.style_layers, catalog.contributions):
        q = _q(m[clusters].sum(0), rho, epsilon)
        out.append(q if layer.resolution >= min_resolution else torch.zeros_like(q))
    return out


_RAMP = np.array([[0, 0, 4], [87, 16, 110], [188, 55, 84], [249, 142, 9], [252, 255, 164]], dtype=np.float32)


def contribution_image(G: nn.Module, catalog: PartCatalog, clusters: Sequence[int], *, rho: float = 0.2,
                       epsilon: float = 3.0, min_resolution: int = 16, row: int = 10, scale: int = 2) -> np.ndarray:
    """uint8 [H, W, 3] picture of the part's contribution matrix: one band per style layer (top =
    first), one column per channel, colour = the channel's inside share for the part (dark 0 ->
    light 1), and a cyan tick above each channel `transfer_part` would take with these thresholds;
    the layer index and resolution are written on the left, below a 14-px top margin."""
    from PIL import Image, ImageDraw
    masks = part_channels(G, catalog, clusters, rho=rho, epsilon=epsilon, min_resolution=min_resolution)
    shares = [m[sorted({int(c) for c in clusters})].sum(0).clamp(0, 1).numpy() for m in catalog.contributions]
    width = max(len(x) for x in shares)
    label, top = 74, 14      # left: layer names; top: room for the viewer's caption
    canvas = np.full((top + len(shares) * (row + 3), label + width, 3), 255, dtype=np.uint8)
    for i, (share, mask) in enumerate(zip(shares, masks)):
        y = top + i * (row + 3)
        pos = share * (len(_RAMP) - 1)
        lo = np.floor(pos).astype(int).clip(0, len(_RAMP) - 2)
        colour = _RAMP[lo] + (pos - lo)[:, None] * (_RAMP[lo + 1] - _RAMP[lo])
        canvas[y + 2:y + 2 + row, label:label + len(share)] = colour.astype(np.uint8)[None]
        canvas[y:y + 2, label:label + len(share)][:, mask.numpy().astype(bool)] = (0, 200, 230)
    img = Image.fromarray(canvas)
    draw = ImageDraw.Draw(img)
    for i, layer in enumerate(G.style_layers):
        draw.text((2, top + i * (row + 3)), f"{layer.index:>2} {layer.resolution}px{' rgb' if layer.is_torgb else ''}",
                  fill=(40, 40, 40))
    return np.asarray(img.resize((img.width * scale, img.height * scale), Image.NEAREST))
