"""Faults inside a handler (issue 19 item 4): a bug and a CUDA out-of-memory both reach the caller as
one sentence, the log keeps the trace (bug) or a warning (memory), and the app keeps serving; a
model evicted from the cache while requests use it changes nothing they return.

The faults are simulated by replacing the library function the Generate tab calls, for one request.
"""
from __future__ import annotations

import logging
import re
import threading
import time

import pytest
import torch
from gradio_client.exceptions import AppError

from spaces.generate import tab as generate_tab
from spaces.handlers import OUT_OF_MEMORY
from tests.api.calls import assert_still_serving, call
from tests.api.hostile_inputs import DEMO


def _generate(client, seeds: str = "0-1"):
    return call(client, DEMO, seeds, 0.7, 0, None, 0.0, 0.0, 0.0, "const", api_name="/generate")


def test_an_unexpected_exception_becomes_a_sentence_and_a_logged_trace(client, monkeypatch, caplog):
    def broken(*args, **kwargs):
        raise RuntimeError("tensor mismatch in /srv/secret/weights.pkl")

    monkeypatch.setattr(generate_tab, "generate_images", broken)
    with caplog.at_level(logging.INFO, logger="spaces.handlers"), pytest.raises(AppError) as info:
        _generate(client)
    message = str(info.value)
    ref = re.search(r"Something went wrong on the server \(error ref ([0-9a-f]{8})\); it has been logged", message)
    assert ref, message
    assert "secret" not in message and "RuntimeError" not in message and "Traceback" not in message
    logged = [r for r in caplog.records if ref.group(1) in r.getMessage()]
    assert logged and logged[0].levelno == logging.ERROR and logged[0].exc_info is not None
    assert "tensor mismatch" in str(logged[0].exc_info[1])
    monkeypatch.undo()
    assert len(_generate(client)[0]) == 2  # the same endpoint works again
    assert_still_serving(client)


def test_cuda_out_of_memory_says_to_ask_for_fewer_images(client, monkeypatch, caplog):
    def out_of_memory(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    monkeypatch.setattr(generate_tab, "generate_images", out_of_memory)
    with caplog.at_level(logging.INFO, logger="spaces.handlers"), pytest.raises(AppError, match=re.escape(OUT_OF_MEMORY)):
        _generate(client, "0-7")
    assert any(r.levelno == logging.WARNING and "out of device memory" in r.getMessage() for r in caplog.records)
    monkeypatch.undo()
    assert len(_generate(client)[0]) == 2
    assert_still_serving(client)


def test_generator_handlers_stay_generators_and_keep_their_signature(app):
    """Gradio streams generator handlers and reads gr.Request / gr.Progress from signatures and hints."""
    import inspect
    demo = app[2]
    fns = {f.api_name: f.fn for f in demo.fns.values() if f.api_name and f.fn is not None}
    assert all(getattr(fn, "_hub_guarded", False) for fn in fns.values())
    compare = fns["compare"]
    assert inspect.isgeneratorfunction(compare)
    assert "request" in inspect.signature(compare).parameters


def test_a_model_evicted_while_requests_use_it(app, client):
    """The model cache drops the demo generator again and again while /generate runs: every request
    completes with the same images (a request holds its own reference; the next one reloads)."""
    from pathlib import Path
    ctx = app[1]
    reference = [Path(item["image"]).read_bytes() for item in _generate(client, "0-3")[0]]
    stop = threading.Event()

    def evict_again_and_again() -> None:
        while not stop.is_set():
            ctx.models.evict(DEMO)
            time.sleep(0.005)

    evictor = threading.Thread(target=evict_again_and_again)
    evictor.start()
    try:
        for _ in range(4):
            images = [Path(item["image"]).read_bytes() for item in _generate(client, "0-3")[0]]
            assert images == reference
    finally:
        stop.set()
        evictor.join()
    assert_still_serving(client)
