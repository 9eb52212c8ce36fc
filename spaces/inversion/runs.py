"""Inversion › the runs: several inversion methods (Image2StyleGAN, Image2StyleGAN++, pSp, e4e, ReStyle,
hybrid, PTI) on one aligned photo, compared side by side, with the finished ones kept when stopped.

Adapters only; the work is `shared.inversion.compare` (runs, scores, encoders) over the methods of
`shared.inversion`. Session data lives in `gr.State`: the last comparison (`InversionSession`:
small CPU arrays). PTI's tuned generator is not kept (only its pivot latent).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr
import numpy as np

from shared.images import image_to_tensor, to_uint8_hwc
from shared.inversion import InversionCancelled
from shared.inversion.compare import (METHOD_LABELS, CompareOptions, MethodRun, default_identity, default_perceptual,
                                      encoder_availability, identity_note, iter_methods, load_encoders, runs_summary)
from spaces.handlers import StopFlags, progress_callback, user_errors
from spaces.inversion.photo import align, generator

_STOPS = StopFlags()   # session -> "stop" flag of its running comparison
API_INVERT = ("Invert a photo with one method ('w', 'w+', 'w+n', 'psp', 'e4e', 'restyle_psp', 'restyle_e4e', "
              "'hybrid', 'pti') after aligning it. Returns [target, reconstruction (+ ReStyle steps)] as PNG "
              "with captions, and a Markdown line with PSNR, the perceptual score and time.")
API_COMPARE = ("Invert a photo with several methods. Returns the gallery (target, then one reconstruction per "
               "method with PSNR / perceptual score / time), a Markdown table, the before/after pair of the "
               "first result, the ReStyle strip and the method to send.")


@dataclass(frozen=True, eq=False)
class RunRecord:
    """What the session keeps of one method's run (small, CPU)."""
    key: str
    label: str
    ws: np.ndarray                 # [1, num_ws, w_dim] float32
    image: np.ndarray              # uint8 [R, R, 3] reconstruction
    caption: str
    steps: tuple[np.ndarray, ...]  # ReStyle: one uint8 image per iteration


@dataclass(frozen=True, eq=False)
class InversionSession:
    """The session's last comparison: model, aligned target and the runs finished so far."""
    model_id: str
    target: np.ndarray             # uint8 [R, R, 3]
    runs: tuple[RunRecord, ...]

    def run(self, key: str | None) -> RunRecord:
        for r in self.runs:
            if key in (r.key, r.label):
                return r
        raise gr.Error(f"No result for {key!r} in this session; run it first (done: "
                       f"{', '.join(r.key for r in self.runs) or 'none'}).")


def _record(run: MethodRun) -> RunRecord:
    res = run.result
    steps = tuple(to_uint8_hwc(s.image)[0] for s in res.steps) if run.key.startswith("restyle") else ()
    return RunRecord(run.key, run.label, res.ws.numpy().astype(np.float32), to_uint8_hwc(res.image)[0],
                     run.caption(), steps)


def _outputs(session: InversionSession, runs: list[MethodRun], note: str, selected: str | None = None):
    gallery = [(session.target, "target (aligned)")] + [(r.image, r.caption) for r in session.runs]
    chosen = session.run(selected) if selected else (session.runs[-1] if session.runs else None)
    slider = (session.target, chosen.image) if chosen else None
    restyle = next((r for r in session.runs if r.steps), None)
    strip = ([(img, f"{restyle.label}: iteration {i + 1}") for i, img in enumerate(restyle.steps)]
             if restyle else [])
    table = runs_summary(runs) if runs else ""
    info = "\n\n".join(x for x in (table, note) if x)
    return (gallery, info, slider, gr.update(value=strip, visible=bool(strip)), session,
            gr.update(choices=[(r.label, r.key) for r in session.runs], value=chosen.key if chosen else None))


def on_stop(request: gr.Request):
    _STOPS.stop(request)


def _compare(ctx: Any, image: Any, mode: str, model_id: str, methods: list[str] | str | None, steps: float,
             lr: float, restyle_iterations: float, request: gr.Request | None, progress: gr.Progress | None):
    """Generator: align, then yield the tab's outputs after each method (partial results stay)."""
    methods = [methods] if isinstance(methods, str) else list(methods or [])
    for key in methods:
        if key not in METHOD_LABELS:
            raise gr.Error(f"Unknown inversion method {key!r}; choose from {', '.join(METHOD_LABELS)}.")
    unavailable = encoder_availability(model_id)
    for key in methods:
        if unavailable.get(key):
            raise gr.Error(unavailable[key])
    aligned, _ = align(ctx, image, mode, model_id)
    with user_errors():
        options = CompareOptions(steps=int(steps), lr=float(lr), restyle_iterations=int(restyle_iterations),
                                 noise_steps=max(1, int(steps) // 2), pti_steps=max(1, int(steps) // 2))
        card, G = generator(ctx, model_id, progress)
        if G.img_resolution != aligned.shape[0]:
            raise gr.Error(f"The aligned crop is {aligned.shape[0]} px but {card.id} makes {G.img_resolution} px "
                           f"images; align again.")
        perceptual = default_perceptual(ctx.device, models=ctx.models)
        identity = default_identity(ctx.device, models=ctx.models)
        encoders = load_encoders(methods, model_id, models=ctx.models)
    session = InversionSession(card.id, aligned, ())
    stop = _STOPS.start(request)
    runs: list[MethodRun] = []
    note = f"Perceptual score: **{perceptual.name}**" + (
        " (LPIPS' VGG16 weights are not on this machine, so its heads run over a fixed random trunk)"
        if "random" in perceptual.name else
        " (offline: LPIPS' VGG16 weights are not on this machine, so the demo world's predictor features "
        "serve as the perceptual loss; download `lpips-vgg16` in the Models tab for LPIPS)"
        if perceptual.name == "features:demo-predictor" else "") + ". " + identity_note(identity)
    try:
        with user_errors():
            for run in iter_methods(G, image_to_tensor(aligned), methods, options, perceptual=perceptual,
                                    encoders=encoders, progress=progress_callback(progress), should_stop=stop.is_set,
                                    identity=identity):
                runs.append(run)
                session = InversionSession(card.id, aligned, session.runs + (_record(run),))
                yield _outputs(session, runs, note)
    except InversionCancelled:
        yield _outputs(session, runs, note + f"\n\n**Stopped** after {len(runs)} of {len(methods)} method(s).")
    finally:  # one flag per running comparison, dropped when it ends
        _STOPS.finish(request, stop)


def on_compare(ctx: Any, image: Any, mode: str, model_id: str, methods: list[str] | None, steps: float, lr: float,
               restyle_iterations: float, request: gr.Request, progress: gr.Progress = gr.Progress()):
    yield from _compare(ctx, image, mode, model_id, methods, steps, lr, restyle_iterations, request, progress)


def on_invert(ctx: Any, image: Any, mode: str, model_id: str, method: str, steps: float, lr: float,
              restyle_iterations: float, request: gr.Request, progress: gr.Progress = gr.Progress()):
    """One method: [target, reconstruction (+ ReStyle steps)] and a metrics line."""
    if not method or not isinstance(method, str):
        raise gr.Error("Name one inversion method, e.g. 'w+'.")
    last = None
    for last in _compare(ctx, image, mode, model_id, [method], steps, lr, restyle_iterations, request, progress):
        pass
    if last is None or not last[4].runs:
        raise gr.Error("The inversion was stopped before it finished.")
    session: InversionSession = last[4]
    run = session.runs[0]
    gallery = [(session.target, "target (aligned)"), (run.image, run.caption)]
    gallery += [(img, f"iteration {i + 1}") for i, img in enumerate(run.steps)]
    return gallery, last[1]


def on_select(session: InversionSession | None, evt: gr.SelectData):
    """Clicking a reconstruction shows it in the slider and chooses it for sending."""
    index = evt.index if isinstance(evt.index, int) else (evt.index or [0])[0]
    if session is None or not 1 <= index <= len(session.runs):
        return gr.update(), gr.update()
    run = session.runs[index - 1]
    return (session.target, run.image), run.key


def on_choose(session: InversionSession | None, key: str | None):
    if session is None or not key:
        return gr.update()
    return session.target, session.run(key).image


def methods_note(available: dict[str, str | None]) -> str:
    missing = [f"- **{METHOD_LABELS[k]}**: {why}" for k, why in available.items() if why]
    return "Not available on this machine:\n" + "\n".join(missing) if missing else "All methods are available."
