"""API fixtures: the app launched in-process on 127.0.0.1 (a free port, offline, its own empty Hub
cache) once per test module, a `gradio_client` connected to it, and a portrait to upload."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from gradio_client import Client
from PIL import Image

from shared.context import HubContext
from shared.images import to_uint8_hwc
from shared.portraits import render_seeds
from tests.api.calls import new_client
from tests.running_app import running_app




@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, HubContext, object]]:
    """(url, ctx, demo) of a running app with its own empty Hub cache, offline."""
    with running_app(tmp_path_factory) as running:
        yield running


@pytest.fixture(scope="module")
def client(app) -> Client:
    return new_client(app)


@pytest.fixture(scope="module")
def portrait(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A demo-world portrait saved as a 256 px PNG, as a user would upload it."""
    path = tmp_path_factory.mktemp("inputs") / "portrait.png"
    Image.fromarray(to_uint8_hwc(render_seeds([7], 256).img)[0]).save(path)
    return path
