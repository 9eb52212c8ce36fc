"""What every tab's event handlers share, and how the app meets what users send: the ZeroGPU
decorator, user-facing errors, model lookup, checked uploads and numbers, a sentence for every
failure, the server's limits, and result images that reach the browser whole.

Handlers are adapters (hysts's Spaces, gradio-app docs): UI values in, one call to a pure
function in `shared/`, the result out. Errors a user can cause arrive here as exceptions with
one-sentence messages (`InputError`, `HubError`, `CheckpointError`, `AlignmentError`) and leave as
`gr.Error`, which Gradio shows in the page and `gradio_client` raises as `AppError` with the same
text. `app.build_demo` applies the app-wide parts once the tabs are built: `write_results_atomically`,
`check_number_inputs`, `guard_handlers`; `launch_limits` goes to `demo.launch` (see SECURITY.md).
"""
from __future__ import annotations

import base64
import binascii
import functools
import inspect
import logging
import math
import os
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import gradio as gr
import torch
from gradio import processing_utils
from PIL import Image

from shared import hub
from shared.errors import AlignmentError, CheckpointError, InputError
from shared.hub import HubError
from shared.images import read_upload
from spaces.model_picker import STYLEGAN_ARCHS

__all__ = ["DEFAULT_MAX_UPLOAD_MB", "OUT_OF_MEMORY", "StopFlags", "check_number_inputs", "checked_image_upload",
           "gpu", "gpu_handler", "guard_handlers", "launch_limits", "model_card", "progress_callback", "redact_paths",
           "stylegan_generator", "user_errors", "write_results_atomically"]

F = TypeVar("F", bound=Callable[..., Any])
log = logging.getLogger(__name__)

# The largest file a user may upload: photos are far smaller, but a StyleCLIP mapper saved with its
# decoder (a whole FFHQ StyleGAN2) is ~130 MB. Gradio refuses bigger uploads before writing them.
DEFAULT_MAX_UPLOAD_MB = 200


def _zero_gpu_decorator() -> Callable[..., Any]:
    """`spaces.GPU` of Hugging Face's package (re-exported by our `spaces/__init__.py`, which
    shares its import name), or its no-op stand-in where that package is not installed."""
    import spaces
    return spaces.GPU


def gpu(duration: int = 60) -> Callable[[F], F]:
    """`@spaces.GPU(duration=...)` on ZeroGPU Spaces; returns the function unchanged elsewhere."""
    decorator = _zero_gpu_decorator()

    def wrap(fn: F) -> F:
        return decorator(duration=duration)(fn)

    return wrap


def gpu_handler(fn: Callable[..., Any], ctx: Any, duration: int = 60) -> Callable[..., Any]:
    """`fn(ctx, *inputs, progress=...)` as a Gradio event handler with a progress bar, under
    `@spaces.GPU(duration)` on ZeroGPU (the common shape of the tabs' long-running handlers)."""
    @gpu(duration=duration)
    def handler(*args: Any, progress: gr.Progress = gr.Progress()) -> Any:
        return fn(ctx, *args, progress=progress)

    handler.__name__ = handler.__qualname__ = fn.__name__.lstrip("_")
    handler.__doc__ = fn.__doc__
    return handler


OUT_OF_MEMORY = "The device ran out of memory; ask for fewer images at once or a smaller model."
USER_ERRORS = (InputError, HubError, CheckpointError, AlignmentError)  # each carries one sentence for the user


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn the library's user-facing exceptions into `gr.Error` with their message (no stack trace
    printed: a user's mistake is not a server error)."""
    try:
        yield
    except gr.Error:
        raise
    except USER_ERRORS as e:
        raise gr.Error(redact_paths(str(e)), print_exception=False) from e
    except torch.OutOfMemoryError as e:
        log.warning("out of device memory: %s", str(e).splitlines()[0] if str(e) else "")
        raise gr.Error(OUT_OF_MEMORY, print_exception=False) from e


def redact_paths(message: str) -> str:
    """`message` with the server's own folders named by their setting instead of spelled out: the
    weights folder as `$HUB_WEIGHTS_DIR`, the Hub cache as `$HUB_CACHE_DIR`, the home folder as `~`.
    The sentence stays actionable for whoever runs the app ("put it in $HUB_WEIGHTS_DIR/...") and
    tells a caller of a hosted app nothing about the server's disk."""
    for folder, name in ((hub.weights_dir(), "$HUB_WEIGHTS_DIR"), (hub.cache_dir(), "$HUB_CACHE_DIR"),
                         (Path.home(), "~")):
        for spelling in {str(folder), str(folder.resolve())}:
            if len(spelling) > 1:
                message = message.replace(spelling, name)
    return message


def guard_handlers(demo: gr.Blocks) -> int:
    """Wrap every event handler of `demo` so that nothing but a sentence leaves it.

    A `gr.Error` passes as it is; the library's user errors and CUDA out-of-memory become their
    sentence (as `user_errors` does, for handlers that did not use it); any other exception is a
    bug: its stack trace goes to the log (ERROR, with a short reference), and the user gets a
    sentence with that reference instead of Gradio's "the upstream app has raised an exception".
    The app keeps serving either way. Generator handlers stay generators (Gradio streams them) and
    `functools.wraps` keeps the signature and type hints Gradio reads (`gr.Request`, `gr.Progress`).
    Returns how many handlers were wrapped; call it once the tabs are built.
    """
    count = 0
    for block_fn in demo.fns.values():
        if block_fn.fn is not None and not getattr(block_fn.fn, "_hub_guarded", False):
            block_fn.fn = _guarded(block_fn.fn, block_fn.api_name or getattr(block_fn.fn, "__name__", "handler"))
            count += 1
    return count


def _guarded(fn: Callable[..., Any], name: str) -> Callable[..., Any]:
    if inspect.isasyncgenfunction(fn) or inspect.iscoroutinefunction(fn):
        return fn  # none of the hub's handlers is async; Gradio's own are left alone

    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def handler(*args: Any, **kwargs: Any) -> Any:
            with _as_sentences(name):
                yield from fn(*args, **kwargs)
    else:
        @functools.wraps(fn)
        def handler(*args: Any, **kwargs: Any) -> Any:
            with _as_sentences(name):
                return fn(*args, **kwargs)

    handler._hub_guarded = True  # type: ignore[attr-defined]
    return handler


@contextmanager
def _as_sentences(name: str) -> Iterator[None]:
    try:
        with user_errors():
            yield
    except gr.Error:
        raise
    except Exception as e:  # a bug: logged with its trace; the user gets a sentence and the app goes on
        ref = uuid.uuid4().hex[:8]
        log.exception("unexpected error in handler %s (ref %s)", name, ref)
        raise gr.Error(f"Something went wrong on the server (error ref {ref}); it has been logged. Try again, "
                       f"or with other settings; if it happens again, report the ref.", print_exception=False) from e


def model_card(ctx: Any, model_id: str | None) -> Any:
    """The registry card of `model_id`, or a `gr.Error` saying to pick a listed model."""
    if not model_id:
        raise gr.Error("Pick a model from the list first.")
    try:
        return ctx.registry.get(model_id)
    except KeyError:
        raise gr.Error(f"There is no model called {model_id!r}; pick one from the Model list.") from None


def stylegan_generator(ctx: Any, model_id: str | None, purpose: str,
                       progress: gr.Progress | None = None) -> tuple[Any, Any]:
    """(card, loaded generator) of a StyleGAN2/3 registry model, or a `gr.Error` saying that
    `purpose` ("inversion", "mixing", ...) needs one."""
    card = model_card(ctx, model_id)
    if card.arch not in STYLEGAN_ARCHS:
        raise gr.Error(f"{card.id} is a {card.arch} model; {purpose} needs a StyleGAN2 or StyleGAN3 generator.")
    if card.arch == "stylegan1" and purpose != "mixing":   # v1 records: Generate and Mixing only
        raise gr.Error(f"{card.id} is a StyleGAN (v1) model, which works in Generate and Mixing; {purpose} needs "
                       "a StyleGAN2 or StyleGAN3 generator.")
    with user_errors():
        return card, ctx.models.generator(card.id, progress=progress_callback(progress))


def progress_callback(progress: gr.Progress | None) -> Callable[[float, str], None] | None:
    """Adapt `gr.Progress` to the library's `progress(fraction, text)` callbacks."""
    if progress is None:
        return None

    def report(fraction: float, text: str = "") -> None:
        progress(float(fraction), desc=text or None)

    return report


class StopFlags:
    """One "stop" flag per browser session for a tab's long-running handler (cooperative
    cancellation: the method polls `event.is_set` between steps). A Stop button calls `stop`;
    the handler calls `start` before its work and `finish` in a `finally`.

    A session runs one such job per tab at a time, so `start` also raises the flag of the session's
    previous run if it is still going. That run can only be one nobody waits for any more: a job
    cancelled through the API (`gradio_client`'s `job.cancel()` drops the result but cannot stop a
    Python thread), whose optimisation would otherwise go on in the background, holding memory and
    CPU beyond the queue's concurrency limit (issue 19).
    """

    def __init__(self) -> None:
        self._flags: dict[str, threading.Event] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _key(request: Any) -> str:
        return getattr(request, "session_hash", None) or "api"

    def start(self, request: Any) -> threading.Event:
        """A fresh flag for this session's new run; an older run of the session still going is stopped."""
        with self._lock:
            older = self._flags.get(self._key(request))
            event = self._flags[self._key(request)] = threading.Event()
        if older is not None:
            older.set()
        return event

    def stop(self, request: Any) -> None:
        """Raise the flag of this session's running work, if any."""
        with self._lock:
            event = self._flags.get(self._key(request))
        if event is not None:
            event.set()

    def finish(self, request: Any, event: threading.Event) -> None:
        """Drop the flag when the run that made it ends (a newer run's flag stays)."""
        with self._lock:
            if self._flags.get(self._key(request)) is event:
                del self._flags[self._key(request)]


# ---- what the server accepts and serves ----------------------------------------------------------
def launch_limits(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Keyword arguments for `demo.launch` that bound what users can send and read.

    `max_file_size` (HUB_MAX_UPLOAD_MB, default `DEFAULT_MAX_UPLOAD_MB`): Gradio's upload route refuses
    bigger files (HTTP 413) while they stream in; the page and `gradio_client` read the limit from the
    app's config and say so before sending. `allowed_paths=[]`: Gradio's file route serves only what the
    app put in its cache (results, uploads) and nothing else on the disk (see SECURITY.md).
    """
    env = os.environ if env is None else env
    raw = env.get("HUB_MAX_UPLOAD_MB", "").strip()
    try:
        mb = int(raw) if raw else DEFAULT_MAX_UPLOAD_MB
    except ValueError:
        raise ValueError(f"HUB_MAX_UPLOAD_MB must be a whole number of megabytes, got {raw!r}") from None
    if mb < 1:
        raise ValueError(f"HUB_MAX_UPLOAD_MB must be at least 1, got {mb}")
    return {"max_file_size": mb * gr.FileSize.MB, "allowed_paths": []}


# ---- numbers from the page or the API ---------------------------------------------------------
def check_number_inputs(demo: gr.Blocks) -> int:
    """Give every `gr.Number` and `gr.Slider` of `demo` a type check before Gradio's own.

    The page only sends numbers, but an API call can send anything JSON holds: Gradio's bound check
    then fails on a string with a bare `TypeError` (the caller sees "the upstream Gradio app has
    raised an exception"), an unbounded `gr.Number` hands the string to the handler, and a NaN
    (which Python's JSON reader accepts) passes every bound. Here a numeric string becomes its
    number, and anything else that is not a finite number is refused with a sentence naming the
    field. Returns how many fields were checked. Call it once the tabs are built.
    """
    fields = [b for b in demo.blocks.values() if isinstance(b, (gr.Number, gr.Slider))]
    for field in fields:
        field.preprocess = _number_check(field, field.preprocess)  # type: ignore[method-assign]
    return len(fields)


def _number_check(field: Any, inner: Callable[[Any], Any]) -> Callable[[Any], Any]:
    name = field.label or "A number field"
    may_be_empty = isinstance(field, gr.Number)  # an empty Number field is None; a slider always has a value

    def preprocess(payload: Any) -> Any:
        if payload is None and may_be_empty:
            return inner(payload)
        value = payload
        if isinstance(value, str):
            try:
                value = float(value.strip())
            except ValueError:
                value = None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise gr.Error(f"{name} must be a number, not {str(payload)[:40]!r}.", print_exception=False)
        if isinstance(value, float) and not math.isfinite(value):
            raise gr.Error(f"{name} must be a finite number, not {value}.", print_exception=False)
        return inner(value)

    return preprocess


# ---- uploaded images ----------------------------------------------------------------------------
def checked_image_upload(image: gr.Image, *, check_on_upload: bool = True) -> gr.Image:
    """Make the upload box `image` (type "numpy" or "pil") read every file through
    `shared.images.read_upload`, and check it as soon as it arrives.

    Gradio would decode the upload itself (any Pillow format, no size or pixel limit, no word on
    what it changed); instead the file goes through the hub's reader: a non-image, an empty or
    truncated file, SVG/HTML, a decompression bomb or a tiny image is refused with its sentence
    (`gr.Error`), and what was changed on the way in (downscaled, first frame, transparency) is
    said with `gr.Warning`. With `check_on_upload` the same check runs on the box's (private) upload
    event, so the page answers when the file is dropped, not only at the next action (pass False
    where the tab already has an input/upload event taking the box); API calls get it when their
    request arrives. Replaces this instance's `preprocess` (a subclass
    would make Gradio write a `.pyi` stub beside this module).
    """
    if image.type not in ("numpy", "pil"):
        raise ValueError(f"checked_image_upload takes gr.Image(type='numpy' or 'pil'), got type={image.type!r}")

    def preprocess(payload: Any) -> Any:
        if payload is None:
            return None
        try:
            loaded = read_upload(_upload_source(payload))
        except AlignmentError as e:
            raise gr.Error(str(e), print_exception=False) from e
        for notice in loaded.notices:
            gr.Warning(notice)
        return Image.fromarray(loaded.image) if image.type == "pil" else loaded.image

    image.preprocess = preprocess  # type: ignore[method-assign]
    if check_on_upload:
        checked = image.upload(_accept_upload, image, None, api_visibility="private", show_progress="hidden",
                               concurrency_limit=None)
        checked.failure(_clear_box, None, image, api_visibility="private", queue=False)  # a refused file leaves
    return image


def _clear_box() -> None:
    """Empty an upload box whose file was refused (its sentence is already shown)."""
    return None


def _accept_upload(image: Any) -> None:
    """The upload event's handler: the check is the box's preprocess; nothing else to do."""


def _upload_source(payload: Any) -> str | bytes:
    """The file path of an upload, or the bytes of a `data:` URL (pasted images)."""
    url = getattr(payload, "url", None) or ""
    if url.startswith("data:"):
        try:
            return base64.b64decode(url.partition(",")[2], validate=True)
        except (binascii.Error, ValueError) as e:
            raise gr.Error("The pasted image could not be decoded; upload it as a file instead.") from e
    if not getattr(payload, "path", None):
        raise gr.Error("The upload arrived without a file; upload the image again.")
    return str(payload.path)


# ---- result images ------------------------------------------------------------------------------
_gradio_save_pil_to_cache = processing_utils.save_pil_to_cache  # Gradio's own (kept for the regression test)


def _save_pil_to_cache_atomically(img: Image.Image, cache_dir: str, name: str = "image",
                                  format: str = "webp") -> str:
    """`gradio.processing_utils.save_pil_to_cache` with the same bytes and the same path, written
    once: staged under a private name in the same folder, then renamed into place."""
    data = processing_utils.encode_pil_to_bytes(img, format)
    folder = Path(cache_dir) / processing_utils.hash_bytes(data)
    folder.mkdir(exist_ok=True, parents=True)
    path = (folder / f"{name}.{format}").resolve()
    # The folder is named by the hash of the bytes, so a file already there holds these bytes: hand
    # it out as it is (touched, so that Gradio's delete_cache ages it from now) and never rewrite it.
    if path.is_file() and path.stat().st_size == len(data):
        os.utime(path)
        return str(path)
    fd, staging = tempfile.mkstemp(dir=folder, prefix=f".{name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(staging, path)  # atomic: a reader has the old inode (the same bytes) or this one
    except BaseException:
        Path(staging).unlink(missing_ok=True)
        raise
    return str(path)


def write_results_atomically() -> None:
    """Make Gradio write each image a handler returns (numpy or PIL) into its cache once, atomically.

    Gradio 6.31 saves such an image at `<cache>/<sha256 of the bytes>/image.<format>` with a plain
    `Path.write_bytes`, i.e. truncate then write. Two requests with the same result (the same seeds,
    the same edit) share that path, so the second rewrites the file while the first one's download
    streams it with the Content-Length it read before: the client gets `RemoteProtocolError: peer
    closed connection (received 0 bytes, expected N)` and the server logs h11's "Too little data for
    declared Content-Length" (issue 19: 1-2 of 40 identical /generate calls from 8 clients lost).
    Gradio's `save_file_to_cache` (for the file paths handlers return) already stages and renames;
    this gives the in-memory image path the same discipline for every image component at once
    (Image, Gallery, AnnotatedImage), with unchanged bytes and URLs. Call it before serving;
    calling it again changes nothing.
    """
    processing_utils.save_pil_to_cache = _save_pil_to_cache_atomically
