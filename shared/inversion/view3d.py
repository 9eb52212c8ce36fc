"""Your photo in 3D: inversion into a 3D-aware generator (EG3D, StyleNeRF) at a camera, then any
other view, orbit or mesh of that person.

Neither official repository ships a projector (NVlabs/eg3d has none; facebookresearch/StyleNeRF
issues #7, #21 and #53 report that naive inversion does not converge). What the community's
EG3D projectors and the PTI paper (Roich et al., "Pivotal Tuning for Latent-based Editing of Real
Images", ACM TOG 2022) agree on, and what we do:

- the latent is fitted **in W**, not W+, by default: W+ reproduces the input view but bends the
  geometry so that other views break; the fit runs through the same optimiser as 2D inversion
  (`optimize_latent`: NVlabs' projector schedule, perceptual + pixel loss);
- the camera is **given** or **estimated**: a short W fit from each of a few candidate views
  (yaw x pitch grid) and the view whose fit reaches the lowest loss wins;
- then, optionally, **PTI**: a private copy of the generator is tuned around the pivot (the shared
  generator is never changed), which recovers detail the latent alone cannot.

EG3D conditions its mapping on a camera; as `gen_videos.py` does, the mapping always sees the
frontal conditioning camera, so identity stays fixed while the rendering camera moves.

Crop convention. Photos are FFHQ-aligned (the crop StyleNeRF was trained on). EG3D's FFHQ was
re-cropped (`dataset_preprocessing/ffhq/crop_images_in_the_wild.py`: five landmarks fitted by a
similarity transform to the Basel Face Model's mean landmarks, the image rescaled to 1024 px with
scale factor 300, a 700 px centre crop resized to 512): the face sits slightly smaller and lower
than in an FFHQ crop. That fit needs the BFM landmark file, which is not redistributable here, so
EG3D photos use the FFHQ crop too; the camera search absorbs part of the difference.

Nothing here imports gradio. Images are [1, 3, R, R] in [-1, 1].
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from torch import nn

from shared.errors import InputError
from shared.inversion.losses import PerceptualLoss, psnr
from shared.inversion.optimize import OptimizeOptions, WStats, compute_w_stats, optimize_latent
from shared.inversion.pti import PTIOptions, pivotal_tuning
from shared.inversion.result import InversionResult, Monitor, Progress, ShouldStop
from shared.rendering3d import ARCHS, DEFAULT_FOV, View, check_view, render_image

__all__ = ["CAMERA_CANDIDATES", "Photo3D", "Photo3DOptions", "ViewGenerator", "estimate_view", "invert_in_3d"]

#: candidate views (yaw, pitch in degrees) of the camera search: aligned portraits are near frontal
CAMERA_CANDIDATES: tuple[tuple[float, float], ...] = tuple(
    (float(y), float(p)) for p in (-10, 0, 10) for y in (-30, -15, 0, 15, 30))


class ViewGenerator(nn.Module):
    """A 3D generator seen from one camera with the 2D generators' interface (`mapping`,
    `synthesis(ws, noise_mode=...)`, `num_ws`, `w_dim`, `z_dim`, `img_resolution`), so the 2D
    inversion methods (W/W+ optimisation, PTI) run on it unchanged. `G` is the wrapped module:
    PTI's tuned copy of a ViewGenerator holds the tuned 3D generator there."""

    def __init__(self, G: nn.Module, view: View):
        super().__init__()
        arch = getattr(G, "arch", None)
        if arch not in ARCHS:
            raise InputError(f"This is a {arch or type(G).__name__} model; putting a photo in 3D needs a StyleNeRF "
                             "or EG3D generator.")
        self.G, self.view, self.source_arch = G, check_view(view), arch
        self.z_dim, self.w_dim, self.num_ws = G.z_dim, G.w_dim, G.num_ws
        self.c_dim = 0
        self.img_resolution, self.img_channels = G.img_resolution, 3

    @property
    def w_avg(self) -> torch.Tensor:
        return self.G.w_avg

    def mapping(self, z: torch.Tensor, c: torch.Tensor | None = None, truncation_psi: float = 1,
                truncation_cutoff: int | None = None, **kwargs: Any) -> torch.Tensor:
        if self.source_arch == "eg3d":
            c = self.G.camera(0.0, 0.0, DEFAULT_FOV["eg3d"]).to(z.device).expand(z.shape[0], -1)
        else:
            c = None
        return self.G.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff, **kwargs)

    def synthesis(self, ws: torch.Tensor, noise_mode: str = "const", **kwargs: Any) -> torch.Tensor:
        """The image of ws from this generator's camera (noise is the 3D generator's own, constant)."""
        return render_image(self.G, ws, self.view)[0]

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None, truncation_psi: float = 1,
                truncation_cutoff: int | None = None, **kwargs: Any) -> torch.Tensor:
        return self.synthesis(self.mapping(z, c, truncation_psi, truncation_cutoff))


def _latent_options() -> OptimizeOptions:
    return OptimizeOptions(steps=300, lr=0.05, space="w", w_avg_samples=2000)


@dataclass(frozen=True)
class Photo3DOptions:
    """Settings of `invert_in_3d`.

    latent:        the W (or W+) fit at the chosen camera.
    view:          the photo's camera, or None to estimate it among `candidates`.
    candidates:    (yaw, pitch) pairs tried by the estimate; `search_steps` W steps from each.
    pti:           PTI settings for tuning the generator around the fitted latent, or None for none.
    """
    latent: OptimizeOptions = field(default_factory=_latent_options)
    view: View | None = None
    candidates: tuple[tuple[float, float], ...] = CAMERA_CANDIDATES
    search_steps: int = 15
    pti: PTIOptions | None = None

    def __post_init__(self) -> None:
        if self.view is None and not self.candidates:
            raise InputError("Give the photo's camera or at least one candidate view to estimate it.")
        if self.view is None and self.search_steps < 1:
            raise InputError("Estimating the camera needs at least one step per candidate view.")


@dataclass(frozen=True, eq=False)
class Photo3D:
    """A photo put in 3D: `generator` (the shared one, or PTI's tuned private copy) renders `ws`
    from any view; `view` is the camera it was fitted at; `image` the reconstruction there."""
    ws: torch.Tensor                   # [1, num_ws, w_dim] (CPU)
    generator: nn.Module               # the 3D generator to render with
    view: View
    image: torch.Tensor                # [1, 3, R, R] reconstruction at `view` (CPU)
    psnr: float                        # dB against the photo at `view`
    tuned: bool                        # PTI tuned `generator`
    camera_losses: dict[tuple[float, float], float]   # the search's final loss per candidate ({} when given)
    result: InversionResult            # the last method's result (W fit or PTI)
    seconds: float

    space: str                         # 'w' or 'w+'

    def summary(self) -> str:
        camera = "estimated" if self.camera_losses else "given"
        pti = " + PTI" if self.tuned else ""
        return (f"{self.space.upper()} fit{pti} · camera {camera}: yaw {self.view.yaw:+.0f}°, "
                f"pitch {self.view.pitch:+.0f}° · PSNR {self.psnr:.2f} dB at that view · {self.seconds:.1f} s")


def estimate_view(G: nn.Module, target: torch.Tensor, options: Photo3DOptions = Photo3DOptions(), *,
                  perceptual: PerceptualLoss | None = None, w_stats: WStats | None = None,
                  seed: int | torch.Generator = 0, progress: Progress | None = None,
                  should_stop: ShouldStop | None = None, _monitor: Monitor | None = None
                  ) -> tuple[View, dict[tuple[float, float], float]]:
    """The candidate view from which a short W fit explains `target` best, and every candidate's
    final loss. Raises InversionCancelled on stop."""
    monitor = _monitor or Monitor(progress, should_stop)
    search = replace(options.latent, steps=options.search_steps, space="w")
    fov = None if options.view is None else options.view.fov
    losses: dict[tuple[float, float], float] = {}
    n = len(options.candidates)
    for k, (yaw, pitch) in enumerate(options.candidates):
        wrapped = ViewGenerator(G, View(yaw, pitch, fov))
        res = optimize_latent(wrapped, target, search, perceptual=perceptual, w_stats=w_stats, seed=seed,
                              method="camera-search", _monitor=monitor.sub(k / n, 1 / n))
        losses[(yaw, pitch)] = float(res.losses[-1]["loss"])
    yaw, pitch = min(losses, key=losses.__getitem__)
    return View(yaw, pitch, fov), losses


def invert_in_3d(G: nn.Module, target: torch.Tensor, options: Photo3DOptions = Photo3DOptions(), *,
                 perceptual: PerceptualLoss | None = None, w_stats: WStats | None = None,
                 seed: int | torch.Generator = 0, progress: Progress | None = None,
                 should_stop: ShouldStop | None = None) -> Photo3D:
    """Put the aligned photo `target` [1, 3, R, R] into the 3D generator G (see the module docstring).

    Raises InputError for a wrong model or image shape; InversionCancelled (with the partial W fit
    or PTI result) when `should_stop()` turns true."""
    t0 = time.perf_counter()
    ViewGenerator(G, View())   # checks the architecture before any work
    r = G.img_resolution
    if target.ndim != 4 or tuple(target.shape) != (1, 3, r, r):
        raise InputError(f"The photo must be [1, 3, {r}, {r}] (the model's resolution), got {list(target.shape)}; "
                         "align it first.")
    dev = next(G.parameters()).device
    stats = w_stats or compute_w_stats(ViewGenerator(G, View()), options.latent.w_avg_samples)
    monitor = Monitor(progress, should_stop)
    steps = {"search": 0 if options.view is not None else options.search_steps * len(options.candidates),
             "fit": options.latent.steps, "pti": 0 if options.pti is None else options.pti.steps}
    total = max(sum(steps.values()), 1)
    at = 0.0
    losses: dict[tuple[float, float], float] = {}
    view = options.view
    if view is None:
        share = steps["search"] / total
        view, losses = estimate_view(G, target, options, perceptual=perceptual, w_stats=stats, seed=seed,
                                     _monitor=monitor.sub(at, share))
        at += share
    wrapped = ViewGenerator(G, check_view(view))
    share = steps["fit"] / total
    result = optimize_latent(wrapped, target, options.latent, perceptual=perceptual, w_stats=stats, seed=seed,
                             method="3d-" + options.latent.space, _monitor=monitor.sub(at, share))
    at += share
    generator, tuned = G, False
    if options.pti is not None:
        pti_monitor = monitor.sub(at, 1.0 - at)
        result = pivotal_tuning(wrapped, target, options.pti, perceptual=perceptual, pivot_ws=result.ws, seed=seed,
                                progress=None if progress is None else
                                (lambda f, m: progress(pti_monitor.offset + pti_monitor.scale * f, m)),
                                should_stop=should_stop)
        generator, tuned = result.extra["generator"].G, True
    with torch.no_grad():
        image = render_image(generator, result.ws.to(dev), view)[0].float().cpu()
    value = float(psnr(image, target.cpu().float()))
    return Photo3D(result.ws.detach().cpu(), generator, view, image, value, tuned, losses, result,
                   time.perf_counter() - t0, options.latent.space)
