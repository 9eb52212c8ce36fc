"""API fixtures: the app launched in-process on 127.0.0.1 (a free port, offline, its own empty Hub
cache) once per test module, a `gradio_client` connected to it, and a portrait to upload."""
from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from gradio_client import Client
from PIL import Image

from app import build_demo
from shared.context import HubContext, Settings, create_context
from shared.images import to_uint8_hwc
from shared.portraits import render_seeds
from tests.api.calls import new_client


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, HubContext, object]]:
    """(url, ctx, demo) of a running app with its own empty Hub cache, offline."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HUB_CACHE_DIR", str(tmp_path_factory.mktemp("hub-cache")))
        mp.setenv("HUB_WEIGHTS_DIR", str(tmp_path_factory.mktemp("weights")))
        mp.setenv("HF_HUB_OFFLINE", "1")
        ctx = create_context(device=torch.device("cpu"), settings=Settings(queue_max_size=8, max_images=8))
        demo = build_demo(ctx)
        demo.queue(max_size=ctx.settings.queue_max_size, default_concurrency_limit=1)
        port = free_port()
        demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
        try:
            yield f"http://127.0.0.1:{port}/", ctx, demo
        finally:
            demo.close()


@pytest.fixture(scope="module")
def client(app) -> Client:
    return new_client(app)


@pytest.fixture(scope="module")
def portrait(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A demo-world portrait saved as a 256 px PNG, as a user would upload it."""
    path = tmp_path_factory.mktemp("inputs") / "portrait.png"
    Image.fromarray(to_uint8_hwc(render_seeds([7], 256).img)[0]).save(path)
    return path
