"""3D rendering › the event handlers: UI values in, one call to `shared.rendering3d`, results out.

Adapters only (hysts's Spaces); the cameras, orbits, density grids and meshes are
`shared.rendering3d`. Every user mistake leaves as `gr.Error` with one sentence.
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import gradio as gr
import numpy as np
import torch

from shared import hub
from shared.errors import AlignmentError
from shared.images import image_to_tensor, to_uint8_hwc
from shared.inversion import InversionCancelled, OptimizeOptions, PTIOptions
from shared.inversion.compare import default_perceptual, prepare_target
from shared.inversion.view3d import Photo3DOptions, invert_in_3d
from shared.latents import check_seeds
from shared.mixing import write_video
from shared.rendering3d import (ARCHS, DEFAULT_FOV, DEFAULT_LEVEL, RenderCancelled, View, density_grid,
                                depth_to_image, extract_mesh, latent_for_seed, orbit_views, render_orbit,
                                render_view, write_glb)
from spaces.handlers import StopFlags, model_card, progress_callback, user_errors
from spaces.model_picker import card_summary

TASK = "3d-rendering"
PHOTO_ALIGN = (("FFHQ alignment (finds the face)", "ffhq"), ("Centre crop (already aligned)", "center"))
PHOTO_MAX_STEPS, PHOTO_MAX_PTI = 2000, 1000
VIDEO_MIN_SIDE = 256        # small models are enlarged (nearest) to at least this in the video
STOPS = StopFlags()         # one flag per session, for the orbit video and the mesh


def model_ids(ctx: Any) -> list[str]:
    """Registry records of 3D-aware generators (StyleNeRF, EG3D)."""
    return [i for i in ctx.registry.ids(task=TASK) if ctx.registry.get(i).arch in ARCHS]


def available_ids(ctx: Any) -> list[str]:
    """The 3D records whose weights are on this machine (local file, HUB_MODEL_PATH_<ID> or Hub cache)."""
    return [i for i in model_ids(ctx) if hub.is_cached(ctx.registry.get(i))]


def availability_line(ctx: Any) -> str:
    """One line: which 3D models can render now, and how to get the others."""
    have = available_ids(ctx)
    now = ", ".join(f"`{i}`" for i in have) if have else "none yet"
    return (f"**3D models on this machine:** {now}. Others: StyleNeRF downloads from the Hub "
            "(`facebook/stylenerf-ffhq-config-basic`) when online (or in the Models tab); EG3D pickles come from "
            "NVIDIA NGC into `$HUB_WEIGHTS_DIR`; any record can point at a local file with `HUB_MODEL_PATH_<ID>`.")


def generator(ctx: Any, model_id: str | None, progress: gr.Progress | None = None) -> tuple[Any, Any]:
    """(card, loaded 3D generator), or a `gr.Error` saying what to pick or fetch."""
    card = model_card(ctx, model_id)
    if card.arch not in ARCHS:
        raise gr.Error(f"{card.id} is a {card.arch} model; the 3D tab needs a StyleNeRF or EG3D generator.")
    with user_errors():
        return card, ctx.models.generator(card.id, progress=progress_callback(progress))


def on_model(ctx: Any, model_id: str | None):
    """Model picked: its summary, and its own field of view and density level as slider defaults."""
    if not model_id:
        return card_summary(None), gr.update(), gr.update()
    card = ctx.registry.get(model_id)
    return card_summary(card), DEFAULT_FOV.get(card.arch, 18.0), DEFAULT_LEVEL.get(card.arch, 10.0)


def _latent(G: Any, seed: float | None, psi: float) -> torch.Tensor:
    if seed is None:
        raise gr.Error("Type a seed (a whole number) first.")
    with user_errors():
        (s,) = check_seeds([int(seed)])
        return latent_for_seed(G, s, float(psi))


def _view(yaw: float, pitch: float, fov: float | None) -> View:
    return View(float(yaw or 0.0), float(pitch or 0.0), None if not fov else float(fov))


def _pair(out) -> tuple[np.ndarray, np.ndarray]:
    size = int(out.img.shape[-1])
    return to_uint8_hwc(out.img)[0], to_uint8_hwc(depth_to_image(out.depth, size))[0]


def on_render(ctx: Any, model_id: str, seed: float | None, psi: float, yaw: float, pitch: float, fov: float,
              progress: gr.Progress | None = None):
    """One view: the image, its depth map (near = white) and a line with the camera and time."""
    card, G = generator(ctx, model_id, progress)
    ws = _latent(G, seed, psi)
    view = _view(yaw, pitch, fov)
    with user_errors():
        out = render_view(G, ws, view)
    img, depth = _pair(out)
    info = (f"**{card.id}** · seed {int(seed)} · ψ {float(psi):g} · yaw {view.yaw:g}°, pitch {view.pitch:g}°, "
            f"fov {view.fov if view.fov is not None else DEFAULT_FOV[card.arch]:g}° · {img.shape[1]}×{img.shape[0]} px "
            f"(depth {out.depth.shape[-1]} px) in {out.seconds:.2f} s")
    return img, depth, info


def _orbit_video(orbit: Any, fps: float, name: str) -> tuple[str, np.ndarray]:
    """The orbit as an MP4 (image | depth per frame, small models enlarged by nearest to at least
    VIDEO_MIN_SIDE) in a fresh folder; returns its path and the frames written."""
    size = int(orbit.img.shape[-1])
    u8 = np.concatenate([to_uint8_hwc(orbit.img), to_uint8_hwc(depth_to_image(orbit.depth, size))], axis=2)
    k = max(1, -(-VIDEO_MIN_SIDE // size))
    if k > 1:
        u8 = u8.repeat(k, axis=1).repeat(k, axis=2)
    with user_errors():
        return write_video(u8, Path(tempfile.mkdtemp(prefix="hub-orbit-")) / name, fps=float(fps)), u8


def on_orbit(ctx: Any, model_id: str, seed: float | None, psi: float, pitch: float, fov: float, frames: float,
             fps: float, yaw_range: float, request: Any, progress: gr.Progress | None = None):
    """An orbit as MP4: the image with its depth map beside it, frame by frame."""
    card, G = generator(ctx, model_id, progress)
    ws = _latent(G, seed, psi)
    with user_errors():
        views = orbit_views(int(frames), yaw_range=float(yaw_range), pitch=float(pitch or 0.0),
                            fov=None if not fov else float(fov))
    stop = STOPS.start(request)
    try:
        with user_errors():
            orbit = render_orbit(G, ws, views, progress=progress_callback(progress), should_stop=stop.is_set)
    except RenderCancelled as e:
        raise gr.Error(f"Stopped ({e}); no video was written.") from e
    finally:
        STOPS.finish(request, stop)
    video, u8 = _orbit_video(orbit, fps, "orbit.mp4")
    info = (f"**{card.id}** · {len(views)} frames at {float(fps):g} fps, yaw ±{float(yaw_range):g}° · "
            f"image and depth side by side, {u8.shape[2]}×{u8.shape[1]} px · rendered in {orbit.seconds:.1f} s "
            f"({orbit.seconds / len(views):.2f} s per frame)")
    return video, info


def on_mesh(ctx: Any, model_id: str, seed: float | None, psi: float, resolution: float, level: float | None,
            request: Any, progress: gr.Progress | None = None):
    """The density field on a grid -> marching cubes -> GLB (shown and downloadable)."""
    card, G = generator(ctx, model_id, progress)
    ws = _latent(G, seed, psi)
    t0 = time.perf_counter()
    stop = STOPS.start(request)
    try:
        with user_errors():
            grid = density_grid(G, ws, int(resolution), progress=progress_callback(progress), should_stop=stop.is_set)
            mesh = extract_mesh(G, ws, grid, None if level is None else float(level))
            path = write_glb(mesh, Path(tempfile.mkdtemp(prefix="hub-mesh-")) / f"{card.id}-seed{int(seed)}.glb")
    except RenderCancelled as e:
        raise gr.Error(f"Stopped ({e}); no mesh was made.") from e
    finally:
        STOPS.finish(request, stop)
    info = (f"**{card.id}** · seed {int(seed)} · {int(resolution)}³ grid, density {grid.sigma.min():.3g} to "
            f"{grid.sigma.max():.3g}, cut at {mesh.level:g} · {len(mesh.vertices):,} vertices, {len(mesh.faces):,} "
            f"triangles · {time.perf_counter() - t0:.1f} s")
    return path, path, info


def on_stop(request: gr.Request):
    STOPS.stop(request)


def on_compare(ctx: Any, model_a: str, model_b: str, seed: float | None, psi: float, yaw: float, pitch: float,
               progress: gr.Progress | None = None):
    """The same seed and camera angles through two 3D models (each at its own default field of view,
    since the two define it differently), with load and render times."""
    if not model_a or not model_b:
        raise gr.Error("Pick two 3D models to compare.")
    gallery, rows = [], []
    view = _view(yaw, pitch, None)
    for model_id in (model_a, model_b):
        t0 = time.perf_counter()
        card, G = generator(ctx, model_id, progress)
        loaded = time.perf_counter() - t0
        ws = _latent(G, seed, psi)
        with user_errors():
            out = render_view(G, ws, view)
        img, depth = _pair(out)
        gallery += [(img, f"{card.id}"), (depth, f"{card.id} depth")]
        rows.append(f"| {card.id} | {card.arch} | {img.shape[1]} px | {loaded:.2f} s | {out.seconds:.2f} s |")
    table = ("| model | arch | image | load | render |\n|---|---|---|---|---|\n" + "\n".join(rows) +
             f"\n\nSeed {int(seed)}, ψ {float(psi):g}, yaw {view.yaw:g}°, pitch {view.pitch:g}°; each model at "
             "its own default field of view. Load time is 0 when the model was already in memory.")
    return gallery, table


def _photo_target(image: Any, mode: str, G: Any) -> tuple[torch.Tensor, np.ndarray, str]:
    """The photo at G's resolution as a [1, 3, R, R] tensor, the aligned uint8 image and how it was made."""
    if image is None:
        raise gr.Error("Upload a portrait photo first.")
    if mode not in dict((v, k) for k, v in PHOTO_ALIGN):
        raise gr.Error("Choose FFHQ alignment or centre crop.")
    try:
        with user_errors():
            face = prepare_target(image, mode, int(G.img_resolution))
    except AlignmentError as e:
        raise gr.Error(f"{e} Upload a photo with one clearly visible face, or choose centre crop if it is already "
                       "a face crop.") from e
    how = "FFHQ-aligned" if face.method.startswith("ffhq") else "centre-cropped"
    return image_to_tensor(face.image), face.image, how


def on_photo(ctx: Any, model_id: str, image: Any, mode: str, camera: str, yaw: float, pitch: float, steps: float,
             pti_steps: float, frames: float, fps: float, make_mesh: bool, level: float | None, request: Any,
             progress: gr.Progress | None = None):
    """Your photo in 3D: align, invert (camera estimated or given, W fit, optional PTI), then the
    photo beside its reconstruction and side views, an orbit video and optionally a mesh."""
    card, G = generator(ctx, model_id, progress)
    target, aligned, how = _photo_target(image, mode, G)
    if not 1 <= int(steps or 0) <= PHOTO_MAX_STEPS:
        raise gr.Error(f"Fitting steps must be between 1 and {PHOTO_MAX_STEPS}.")
    if not 0 <= int(pti_steps or 0) <= PHOTO_MAX_PTI:
        raise gr.Error(f"Generator tuning steps must be between 0 and {PHOTO_MAX_PTI} (0: no tuning).")
    with user_errors():
        given = _view(yaw, pitch, None) if camera == "given" else None
        views = orbit_views(int(frames), yaw_range=25.0)
        options = Photo3DOptions(latent=OptimizeOptions(steps=int(steps), lr=0.05, space="w", w_avg_samples=2000),
                                 view=given,
                                 pti=PTIOptions(steps=int(pti_steps)) if int(pti_steps or 0) > 0 else None)
    device = G.w_avg.device
    perceptual = default_perceptual(device, models=ctx.models)
    report = progress_callback(progress)
    stop = STOPS.start(request)
    try:
        with user_errors():
            fit = invert_in_3d(G, target.to(device), options, perceptual=perceptual, seed=0,
                               progress=None if report is None else (lambda f, m: report(0.8 * f, m)),
                               should_stop=stop.is_set)
            orbit = render_orbit(fit.generator, fit.ws, views, should_stop=stop.is_set,
                                 progress=None if report is None else (lambda f, m: report(0.8 + 0.15 * f, m)))
            sides = [render_view(fit.generator, fit.ws, View(y, fit.view.pitch)) for y in (-30.0, 30.0)]
            glb = None
            if make_mesh:
                grid = density_grid(fit.generator, fit.ws, 64, should_stop=stop.is_set)
                glb = write_glb(extract_mesh(fit.generator, fit.ws, grid, None if level is None else float(level)),
                                Path(tempfile.mkdtemp(prefix="hub-mesh-")) / f"{card.id}-photo.glb")
    except (InversionCancelled, RenderCancelled) as e:
        raise gr.Error(f"Stopped ({e}); nothing was kept.") from e
    finally:
        STOPS.finish(request, stop)
    video, _ = _orbit_video(orbit, fps, "photo-orbit.mp4")
    gallery = [(aligned, f"your photo ({how})"), (to_uint8_hwc(fit.image)[0], "reconstruction"),
               (to_uint8_hwc(sides[0].img)[0], "yaw −30°"), (to_uint8_hwc(sides[1].img)[0], "yaw +30°")]
    info = f"**{card.id}** · {fit.summary()} · perceptual loss: {perceptual.name}"
    return gallery, video, glb, info
