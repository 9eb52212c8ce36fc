"""The app launched in-process for the API and browser tests: offline, a private Hub cache and
weights folder, on a free port of 127.0.0.1, with extra environment (e.g. HUB_MODEL_PATH_<ID>)
set for its lifetime."""
from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import torch

from app import CSS, THEME, build_demo
from shared.context import HubContext, Settings, create_context
from spaces.handlers import launch_limits


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running_app(tmp_path_factory: pytest.TempPathFactory, *, env: dict[str, str] | None = None,
                styled: bool = False) -> Iterator[tuple[str, HubContext, object]]:
    """(url, ctx, demo) of a running app; `styled` adds the app's theme and CSS (browser tests)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HUB_CACHE_DIR", str(tmp_path_factory.mktemp("hub-cache")))
        mp.setenv("HUB_WEIGHTS_DIR", str(tmp_path_factory.mktemp("weights")))
        mp.setenv("HF_HUB_OFFLINE", "1")
        for var, value in (env or {}).items():
            mp.setenv(var, value)
        ctx = create_context(device=torch.device("cpu"), settings=Settings(queue_max_size=8, max_images=8))
        demo = build_demo(ctx)
        demo.queue(max_size=ctx.settings.queue_max_size, default_concurrency_limit=1)
        port = free_port()
        demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True,
                    **launch_limits(), **({"theme": THEME, "css": CSS} if styled else {}))
        try:
            yield f"http://127.0.0.1:{port}/", ctx, demo
        finally:
            demo.close()
