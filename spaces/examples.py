"""Examples that run: clicking one fills the inputs and then runs the tab's action, as its button does.

Gradio's `gr.Examples(run_on_click=True)` runs `fn` on the example's own inputs only; the hub's
actions read more fields than an example sets (model, options, the session's latents), so the run is
chained after the fill instead, with the same inputs, outputs and GPU queue as the button. Results
are not cached (`cache_examples`): they come from the shipped demo world, which is retrained now
and then, and a cache on disk would go on showing the old networks' images.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import gradio as gr

__all__ = ["run_after_fill"]


def run_after_fill(examples: gr.Examples, fn: Callable, inputs: Sequence[Any], outputs: Sequence[Any],
                   **event_kwargs: Any) -> Any:
    """Run `fn(inputs) -> outputs` after a click on one of `examples` has filled its inputs."""
    event = getattr(examples, "load_input_event", None)
    if event is None:
        raise ValueError("run_after_fill needs uncached examples inside a Blocks context")
    # A private event still takes an api_name (the function's, by default): name it apart so it
    # never takes the name of the button's public endpoint.
    name = getattr(fn, "__name__", None) or getattr(getattr(fn, "func", None), "__name__", "run")
    return event.then(fn, list(inputs), list(outputs), api_visibility="private",
                      api_name=f"example_{name.lstrip('_')}", **event_kwargs)
