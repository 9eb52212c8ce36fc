"""Browser fixtures: the app launched in-process on 127.0.0.1 (offline, a private Hub cache), Debian's
chromium driven by Playwright (sync API), and a fresh page on the app per test."""
from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from app import CSS, THEME, build_demo
from shared.context import Settings, create_context

CHROMIUM = Path(os.environ.get("HUB_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
WAIT_MS = 120_000


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HUB_CACHE_DIR", str(tmp_path_factory.mktemp("hub-cache")))
        mp.setenv("HUB_WEIGHTS_DIR", str(tmp_path_factory.mktemp("weights")))
        mp.setenv("HF_HUB_OFFLINE", "1")
        ctx = create_context(device=torch.device("cpu"), settings=Settings(queue_max_size=8, max_images=8))
        demo = build_demo(ctx)
        demo.queue(max_size=8, default_concurrency_limit=1)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True,
                    theme=THEME, css=CSS)
        try:
            yield f"http://127.0.0.1:{port}/"
        finally:
            demo.close()


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: apt-get install -y chromium")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser, url: str):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    pg = context.new_page()
    pg.set_default_timeout(WAIT_MS)
    pg.goto(url)
    pg.get_by_text("StyleGAN applications side by side").wait_for()
    yield pg
    context.close()
