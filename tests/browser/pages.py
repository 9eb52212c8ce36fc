"""What the browser tests do on a page: screenshots, tab switches and decoding a shown image.

Screenshots go to tests/artifacts/screenshots/ (git-ignored) for people to look at."""
from __future__ import annotations

import io
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

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
    """Click the tab (or sub-tab) called `label`; in a narrow window Gradio puts the tabs that do not
    fit behind a "⋯" menu at the end of the tab row, so look there when it is not shown."""
    tabs = page.get_by_role("tab", name=label, exact=True)
    for i in range(tabs.count()):
        if tabs.nth(i).is_visible():
            tabs.nth(i).click()
            return
    menus = page.locator(".overflow-menu")
    for i in range(menus.count()):
        menu = menus.nth(i)
        if not menu.is_visible():
            continue
        menu.locator("button").first.click()
        item = menu.locator(".overflow-dropdown button").filter(
            has_text=re.compile(rf"^\s*{re.escape(label)}\s*$"))
        if item.count():
            item.first.click()
            return
        menu.locator("button").first.click()  # close it again
    raise AssertionError(f"no tab called {label!r} is shown or behind a tab menu")


@contextmanager
def app_page(browser, url: str, width: int, height: int, *tabs: str) -> Iterator[Any]:
    """A fresh page on the app in a `width` x `height` window, the header loaded and `tabs` opened
    in order (a tab, then a section inside it); its browser context is closed afterwards."""
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    try:
        page.goto(url)
        page.get_by_text("StyleGAN applications side by side").wait_for()
        for label in tabs:
            open_tab(page, label)
        yield page
    finally:
        context.close()


def decoded_png(page, src: str) -> np.ndarray:
    """Fetch an <img> src through the page's own HTTP client and decode it."""
    response = page.request.get(src)
    assert response.ok, f"{src}: HTTP {response.status}"
    data = response.body()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{src} is not a PNG"
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


WINDOWS = {"desktop": (1400, 1000), "phone": (400, 800)}   # the window sizes every result must fit

# For each shown <img> under `root`: why it is not visible whole, if it is not. An image is cut
# when an ancestor that clips (overflow other than visible) does not contain its box, when
# object-fit "cover"/"none" crops it, when its component's floating label, icon buttons or caption
# lie over the drawn picture, or when it reaches outside the page's width.
_CLIPPED_JS = """(root) => {
  const out = [];
  const pageWidth = document.documentElement.clientWidth;
  for (const img of document.querySelectorAll(root + ' img')) {
    if (!img.naturalWidth || !img.offsetParent) continue;
    const r = img.getBoundingClientRect();
    if (r.width < 4 || r.height < 4) continue;
    const name = (img.closest('[id]') || img).id + ' ' + (img.alt || img.src.split('/').pop()).slice(0, 40);
    const fit = getComputedStyle(img).objectFit;
    const boxRatio = r.width / r.height, imgRatio = img.naturalWidth / img.naturalHeight;
    if ((fit === 'cover' || fit === 'none') && Math.abs(boxRatio / imgRatio - 1) > 0.03)
      out.push(name + ': cropped by object-fit ' + fit);
    // the drawn picture inside the <img> box (object-fit contain / scale-down letterbox it)
    const k = Math.min(r.width / img.naturalWidth, r.height / img.naturalHeight);
    const scale = fit === 'contain' || (fit === 'scale-down' && k < 1) ? k : fit === 'scale-down' ? 1 : null;
    const w = scale ? img.naturalWidth * scale : r.width, h = scale ? img.naturalHeight * scale : r.height;
    const d = {left: r.left + (r.width - w) / 2, top: r.top + (r.height - h) / 2};
    d.right = d.left + w; d.bottom = d.top + h;
    const block = img.closest('.block') || img.parentElement;
    const overlays = [...block.querySelectorAll(':scope > [data-testid="block-label"], .icon-button-wrapper'),
                      ...img.parentElement.querySelectorAll(':scope > .caption-label')];  // its own caption only
    for (const el of overlays) {
      const cs = getComputedStyle(el), b = el.getBoundingClientRect();
      if (cs.display === 'none' || cs.visibility === 'hidden' || Number(cs.opacity) === 0 || !b.width) continue;
      const ox = Math.min(b.right, d.right) - Math.max(b.left, d.left);
      const oy = Math.min(b.bottom, d.bottom) - Math.max(b.top, d.top);
      if (ox > 2 && oy > 2) out.push(name + ': covered by <' + el.tagName.toLowerCase() + ' class="' +
                                     el.className + '"> "' + (el.innerText || '').slice(0, 30) + '"');
    }
    if (r.left < -1 || r.right > pageWidth + 1)
      out.push(name + ': outside the page width (' + Math.round(r.left) + '..' + Math.round(r.right) + ')');
    for (let el = img.parentElement; el && el !== document.body; el = el.parentElement) {
      const cs = getComputedStyle(el);
      if (cs.overflowX === 'visible' && cs.overflowY === 'visible') continue;
      const b = el.getBoundingClientRect();
      if (r.top < b.top - 1 || r.bottom > b.bottom + 1 || r.left < b.left - 1 || r.right > b.right + 1) {
        out.push(name + ': cut by <' + el.tagName.toLowerCase() + ' class="' + el.className + '"> (image ' +
                 [r.top, r.bottom, r.left, r.right].map(Math.round) + ', box ' +
                 [b.top, b.bottom, b.left, b.right].map(Math.round) + ')');
        break;
      }
    }
  }
  return out;
}"""


def clipped_images(page, root: str = "body") -> list[str]:
    """Why each shown image under the CSS selector `root` is not visible whole (empty: all are)."""
    return page.evaluate(_CLIPPED_JS, root)


def shown_images(page, root: str) -> int:
    """How many images under `root` are displayed (loaded, on a visible element)."""
    return page.evaluate("(root) => [...document.querySelectorAll(root + ' img')]"
                         ".filter(i => i.naturalWidth && i.offsetParent).length", root)
