"""What every tab's event handlers share: the ZeroGPU decorator, user-facing errors, model lookup.

Handlers are adapters (hysts's Spaces, gradio-app docs): UI values in, one call to a pure
function in `shared/`, the result out. Errors a user can cause arrive here as exceptions with
one-sentence messages (`InputError`, `HubError`, `CheckpointError`) and leave as `gr.Error`,
which Gradio shows in the page and `gradio_client` raises as `AppError` with the same text.
"""
from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import gradio as gr
import torch

from shared.errors import CheckpointError, InputError
from shared.hub import HubError
from spaces.model_picker import STYLEGAN_ARCHS

__all__ = ["StopFlags", "gpu", "gpu_handler", "model_card", "progress_callback", "stylegan_generator",
           "user_errors"]

F = TypeVar("F", bound=Callable[..., Any])


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


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn the library's user-facing exceptions into `gr.Error` with their message."""
    try:
        yield
    except gr.Error:
        raise
    except (InputError, HubError, CheckpointError) as e:
        raise gr.Error(str(e)) from e
    except torch.OutOfMemoryError as e:
        raise gr.Error("The device ran out of memory; ask for fewer images at once or a smaller model.") from e


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
    the handler calls `start` before its work and `finish` in a `finally`."""

    def __init__(self) -> None:
        self._flags: dict[str, threading.Event] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _key(request: Any) -> str:
        return getattr(request, "session_hash", None) or "api"

    def start(self, request: Any) -> threading.Event:
        """A fresh flag for this session's new run (replacing an older run's)."""
        with self._lock:
            event = self._flags[self._key(request)] = threading.Event()
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
