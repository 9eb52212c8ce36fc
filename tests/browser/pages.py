"""What the browser tests do on a page: screenshots, tab switches and decoding a shown image.

Screenshots go to tests/artifacts/screenshots/ (git-ignored) for people to look at."""
from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

SHOTS = Path(__file__).resolve().parents[1] / "artifacts" / "screenshots"
WAIT_MS = 120_000   # Playwright default timeout of every page


def screenshot(page, name: str, *, full_page: bool = True) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    return path


def open_tab(page, label: str) -> None:
    page.get_by_role("tab", name=label, exact=True).click()


def decoded_png(page, src: str) -> np.ndarray:
    """Fetch an <img> src through the page's own HTTP client and decode it."""
    response = page.request.get(src)
    assert response.ok, f"{src}: HTTP {response.status}"
    data = response.body()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{src} is not a PNG"
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
