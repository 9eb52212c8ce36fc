"""How the API tests talk to the running app through `gradio_client`: a client, one call with a
timeout, the liveness check after a bad input, and decoding the PNGs that come back."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from gradio_client import Client
from PIL import Image

TIMEOUT = 120


def new_client(app) -> Client:
    return Client(app[0], verbose=False)


def call(client: Client, *args, api_name: str):
    return client.submit(*args, api_name=api_name).result(timeout=TIMEOUT)


def assert_still_serving(client: Client) -> None:
    assert "Device" in call(client, api_name="/status")


def png(path: str) -> np.ndarray:
    data = Path(path).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "gallery images must be PNG"
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
