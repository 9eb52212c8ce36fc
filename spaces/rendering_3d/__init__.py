"""3D rendering tab: StyleNeRF (Gu et al., ICLR 2022; facebookresearch/StyleNeRF) and EG3D (Chan et
al., CVPR 2022; NVlabs/eg3d) rendered from any camera: a view with its depth map, an orbit video, a
mesh from the density field, and two models side by side.

Layout and wiring only: the model picker, seed and camera controls shared by four sections; the
handlers are `spaces.rendering_3d.actions`, the work `shared.rendering3d`.
"""
from __future__ import annotations

from functools import partial
from typing import Any

import gradio as gr

from shared.rendering3d import DEFAULT_FOV, DEFAULT_LEVEL, FOV_RANGE, MESH_RESOLUTIONS, PITCH_LIMIT, YAW_LIMIT
from spaces.handlers import checked_image_upload, gpu
from spaces.model_picker import card_summary, default_model, model_choices, picker_info
from spaces.rendering_3d import actions
from spaces.rendering_3d.actions import TASK

__all__ = ["build_tab"]

INTRO = """### 3D rendering
Generate faces with 3D-aware generators and look at them from any camera: **StyleNeRF** (a style-based
NeRF with a 2D up-sampler) and **EG3D** (tri-planes, volume rendering and super-resolution). Move the
camera (sliders render on release), see the **depth map** beside the image, make an **orbit video**,
cut a **mesh** out of the density field (marching cubes, GLB), compare two models on the same seed, or put
**your photo in 3D** (inversion at an estimated camera, then any view of that person)."""


def _choices(ctx: Any) -> list[tuple[str, str]]:
    ids = set(actions.model_ids(ctx))
    return [(label, i) for label, i in model_choices(ctx, TASK) if i in ids]


def build_tab(ctx: Any) -> None:
    choices = _choices(ctx)
    have = actions.available_ids(ctx)
    first = default_model(ctx, choices, have[0] if have else None)
    arch = ctx.registry.get(first).arch if first else "eg3d"
    second = default_model(ctx, choices, have[1] if len(have) > 1 else first)
    with gr.Tab("3D rendering", id=TASK):
        gr.Markdown(INTRO)
        gr.Markdown(actions.availability_line(ctx), elem_id="r3d-available")
        with gr.Row():
            model = gr.Dropdown(choices, value=first, label="3D model", elem_id="r3d-model", scale=1, min_width=260,
                                info=picker_info(ctx, choices))
            with gr.Column(scale=1, min_width=260):
                about = gr.Markdown(card_summary(ctx.registry.get(first) if first else None))
        with gr.Row():
            seed = gr.Number(0, precision=0, label="Seed", elem_id="r3d-seed", min_width=100)
            psi = gr.Slider(-1.0, 2.0, value=0.7, step=0.05, label="Truncation ψ")
        with gr.Row():
            yaw = gr.Slider(-YAW_LIMIT, YAW_LIMIT, value=0, step=1, label="Yaw (°)", elem_id="r3d-yaw",
                            info="positive: the camera moves to its right")
            pitch = gr.Slider(-PITCH_LIMIT, PITCH_LIMIT, value=0, step=1, label="Pitch (°)",
                              info="positive: the camera moves down")
            fov = gr.Slider(*FOV_RANGE, value=DEFAULT_FOV[arch], step=0.1, label="Field of view (°)",
                            info="the model's own convention; reset on model change")
        with gr.Tabs():
            view_ev = _view_section(ctx, model, seed, psi, yaw, pitch, fov)
            _orbit_section(ctx, model, seed, psi, pitch, fov)
            level = _mesh_section(ctx, model, seed, psi, arch)
            _compare_section(ctx, model, seed, psi, yaw, pitch, choices, second)
            _photo_section(ctx, model, yaw, pitch, level)
    model.change(partial(actions.on_model, ctx), model, [about, fov, level], api_visibility="private", queue=False)
    for slider in (yaw, pitch, fov):
        slider.release(view_ev[0], view_ev[1], view_ev[2], api_visibility="private", concurrency_id="gpu",
                       trigger_mode="always_last")


def _view_section(ctx: Any, model, seed, psi, yaw, pitch, fov):
    with gr.Tab("View", id="r3d-view"):
        run = gr.Button("Render", variant="primary", elem_id="r3d-render")
        with gr.Row():
            image = gr.Image(label="Image", format="png", type="numpy", height=320, elem_id="r3d-image",
                             min_width=240,
                             elem_classes=["pixel-view"])
            depth = gr.Image(label="Depth (near = white)", format="png", type="numpy", height=320,
                             elem_id="r3d-depth", min_width=240, elem_classes=["pixel-view"])
        info = gr.Markdown(elem_id="r3d-info")

    @gpu(duration=60)
    def render(m, s, p, y, pt, f, progress: gr.Progress = gr.Progress()):
        return actions.on_render(ctx, m, s, p, y, pt, f, progress)

    inputs, outputs = [model, seed, psi, yaw, pitch, fov], [image, depth, info]
    run.click(render, inputs, outputs, api_name="render_3d", concurrency_id="gpu",
              api_description="Render one view of a 3D model: (model, seed, psi, yaw°, pitch°, fov°) -> image, "
                              "depth map (near = white), info line.")
    return render, inputs, outputs


def _orbit_section(ctx: Any, model, seed, psi, pitch, fov) -> None:
    with gr.Tab("Orbit video", id="r3d-orbit"):
        with gr.Row():
            frames = gr.Slider(2, 240, value=24, step=1, label="Frames")
            fps = gr.Slider(1, 60, value=12, step=1, label="Frames per second")
            yaw_range = gr.Slider(0, 60, value=25, step=1, label="Yaw swing (±°)",
                                  info="pitch swings a quarter of it, around the pitch slider")
        with gr.Row():
            run = gr.Button("Make orbit video", variant="primary", elem_id="r3d-orbit-run")
            stop = gr.Button("Stop", variant="stop", elem_id="r3d-orbit-stop")
        video = gr.Video(label="Orbit (image | depth)", format="mp4", loop=True, autoplay=True, height=360,
                         elem_id="r3d-video")
        info = gr.Markdown(elem_id="r3d-orbit-info")

    @gpu(duration=300)
    def orbit(m, s, p, pt, f, n, r, yr, request: gr.Request, progress: gr.Progress = gr.Progress()):
        return actions.on_orbit(ctx, m, s, p, pt, f, n, r, yr, request, progress)

    event = run.click(orbit, [model, seed, psi, pitch, fov, frames, fps, yaw_range], [video, info],
                      api_name="orbit_3d", concurrency_id="gpu",
                      api_description="Orbit video of a 3D model: (model, seed, psi, pitch°, fov°, frames, fps, "
                                      "yaw swing°) -> MP4 (image and depth side by side), info line.")
    stop.click(actions.on_stop, None, None, cancels=[event], api_visibility="private", queue=False)


def _mesh_section(ctx: Any, model, seed, psi, arch: str):
    with gr.Tab("Mesh", id="r3d-mesh"):
        with gr.Row():
            resolution = gr.Radio(list(MESH_RESOLUTIONS), value=64, label="Grid resolution (cells per side)")
            level = gr.Number(DEFAULT_LEVEL[arch], label="Density level", elem_id="r3d-level",
                              info="the surface is where the density crosses this value")
        with gr.Row():
            run = gr.Button("Extract mesh", variant="primary", elem_id="r3d-mesh-run")
            stop = gr.Button("Stop", variant="stop")
        with gr.Row():
            viewer = gr.Model3D(label="Mesh (GLB)", elem_id="r3d-model3d", height=360)
            with gr.Column():
                download = gr.File(label="Download GLB", elem_id="r3d-glb")
                info = gr.Markdown(elem_id="r3d-mesh-info")

    @gpu(duration=300)
    def mesh(m, s, p, r, lv, request: gr.Request, progress: gr.Progress = gr.Progress()):
        return actions.on_mesh(ctx, m, s, p, r, lv, request, progress)

    event = run.click(mesh, [model, seed, psi, resolution, level], [viewer, download, info], api_name="mesh_3d",
                      concurrency_id="gpu",
                      api_description="Mesh of a 3D model's density field: (model, seed, psi, grid resolution, "
                                      "density level) -> GLB shown, GLB file, info line (the density range).")
    stop.click(actions.on_stop, None, None, cancels=[event], api_visibility="private", queue=False)
    return level


def _compare_section(ctx: Any, model, seed, psi, yaw, pitch, choices, second) -> None:
    with gr.Tab("Side by side", id="r3d-compare"):
        with gr.Row():
            model_b = gr.Dropdown(choices, value=second, label="Second 3D model", elem_id="r3d-model-b")
            run = gr.Button("Compare", variant="primary", elem_id="r3d-compare-run")
        gallery = gr.Gallery(label="Image and depth of each model", columns=4, format="png", elem_id="r3d-gallery")
        table = gr.Markdown(elem_id="r3d-compare-info")

    @gpu(duration=120)
    def compare(a, b, s, p, y, pt, progress: gr.Progress = gr.Progress()):
        return actions.on_compare(ctx, a, b, s, p, y, pt, progress)

    run.click(compare, [model, model_b, seed, psi, yaw, pitch], [gallery, table], api_name="compare_3d",
              concurrency_id="gpu",
              api_description="The same seed and camera through two 3D models: (model A, model B, seed, psi, yaw°, "
                              "pitch°) -> gallery (image, depth per model), Markdown table with timings.")


def _photo_section(ctx: Any, model, yaw, pitch, level) -> None:
    with gr.Tab("Your photo in 3D", id="r3d-photo"):
        gr.Markdown("Upload a portrait: it is aligned, fitted in W at its camera (estimated from a few candidate "
                    "views, or the yaw/pitch sliders above), optionally the generator is tuned around it (PTI, a "
                    "private copy), then you get the fit, side views, an orbit video and a mesh of that person.")
        with gr.Row():
            photo = checked_image_upload(gr.Image(label="Portrait photo", type="numpy", height=280,
                                                  elem_id="r3d-photo-input", sources=["upload", "clipboard"]))
            with gr.Column():
                align = gr.Radio(actions.PHOTO_ALIGN, value="ffhq", label="Crop")
                camera = gr.Radio([("Estimate the camera", "estimate"), ("Use the yaw/pitch sliders", "given")],
                                  value="estimate", label="Camera of the photo")
                steps = gr.Slider(10, actions.PHOTO_MAX_STEPS, value=200, step=10, label="Fitting steps (W)")
                pti_steps = gr.Slider(0, actions.PHOTO_MAX_PTI, value=0, step=10,
                                      label="Generator tuning steps (PTI; 0 = off)")
                with gr.Row():
                    frames = gr.Slider(2, 120, value=24, step=1, label="Orbit frames")
                    fps = gr.Slider(1, 60, value=12, step=1, label="Frames per second")
                mesh = gr.Checkbox(False, label="Also extract a mesh (64³ grid, at the Mesh section's density level)")
        with gr.Row():
            run = gr.Button("Put my photo in 3D", variant="primary", elem_id="r3d-photo-run")
            stop = gr.Button("Stop", variant="stop", elem_id="r3d-photo-stop")
        gallery = gr.Gallery(label="Photo, reconstruction and side views", columns=4, format="png",
                             elem_id="r3d-photo-gallery")
        with gr.Row():
            video = gr.Video(label="Orbit (image | depth)", format="mp4", loop=True, autoplay=True, height=300,
                             elem_id="r3d-photo-video")
            viewer = gr.Model3D(label="Mesh (GLB)", height=300, elem_id="r3d-photo-mesh")
        info = gr.Markdown(elem_id="r3d-photo-info")

    @gpu(duration=600)
    def photo_3d(m, img, a, cam, y, pt, n, k, nf, f, me, lv, request: gr.Request,
                 progress: gr.Progress = gr.Progress()):
        return actions.on_photo(ctx, m, img, a, cam, y, pt, n, k, nf, f, me, lv, request, progress)

    event = run.click(photo_3d, [model, photo, align, camera, yaw, pitch, steps, pti_steps, frames, fps, mesh, level],
                      [gallery, video, viewer, info], api_name="photo_3d", concurrency_id="gpu",
                      api_description="Your photo in 3D: (model, photo, crop 'ffhq'|'center', camera "
                                      "'estimate'|'given', yaw°, pitch°, fitting steps, PTI steps, orbit frames, fps, "
                                      "mesh?, density level) -> gallery "
                                      "(photo, reconstruction, yaw ±30°), orbit MP4, GLB or None, info line.")
    stop.click(actions.on_stop, None, None, cancels=[event], api_visibility="private", queue=False)
