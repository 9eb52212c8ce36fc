"""The corpus of hostile and odd inputs (issue 19 item 3): each case is one API call a user or a
script could make, and what the app must answer: a sentence (a regular expression over the
`AppError` text) or a normal result (`expect=None`, checked by `check`).

Files are written on demand into a folder (`Case.args(folder)`), so the corpus costs nothing to
import. `tests/api/test_hostile_inputs.py` runs it through `gradio_client` and checks after each
case that the app still serves; `python -m tests.api.hostile_inputs http://127.0.0.1:7860/` prints
the table for the note against a running app.
"""
from __future__ import annotations

import io
import pickle
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from gradio_client import handle_file
from PIL import Image

from shared import registry
from shared.portraits import render_seeds
from shared.images import to_uint8_hwc

DEMO = registry.DEFAULT_GENERATOR_ID
DEMO_CLIP = "demo-portraits-clip"
NOT_AN_IMAGE = r"not an image that can be read"


@dataclass(frozen=True)
class Case:
    name: str                                  # what the input is, as in the note's table
    endpoint: str
    args: Callable[[Path], tuple]              # folder -> positional API arguments
    expect: str | None                         # regex the error must match; None: the call succeeds
    check: Callable[[Any], bool] | None = None  # on success: the result is right


# ---- images ------------------------------------------------------------------------------------
def _portrait(size: int = 256) -> Image.Image:
    return Image.fromarray(to_uint8_hwc(render_seeds([7], size).img)[0])


def _write(folder: Path, name: str, data: bytes) -> str:
    path = folder / name
    path.write_bytes(data)
    return str(path)


def _encode(img: Image.Image, fmt: str, **kw: Any) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def _png_bomb(width: int = 30_000, height: int = 30_000) -> bytes:
    """A valid, tiny PNG whose header declares width x height (grey): what Pillow sees on open."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def _gif(folder: Path) -> str:
    frames = [_portrait(128), Image.new("RGB", (128, 128), (255, 0, 0)), Image.new("RGB", (128, 128), (0, 0, 255))]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    return _write(folder, "animated.gif", buf.getvalue())


def _rgba(folder: Path) -> str:
    rgba = np.dstack([np.asarray(_portrait(128)), np.full((128, 128), 255, np.uint8)])
    rgba[:, :64, 3] = 0
    return _write(folder, "transparent.png", _encode(Image.fromarray(rgba, "RGBA"), "PNG"))


def _exif_rotated(folder: Path) -> str:
    """A 'phone photo': stored 200 wide x 100 tall with EXIF orientation 6 (upright: 100 x 200)."""
    exif = Image.Exif()
    exif[0x0112] = 6
    img = _portrait(200).crop((0, 50, 200, 150))  # 200 x 100 as stored
    return _write(folder, "phone.jpg", _encode(img, "JPEG", quality=90, exif=exif))


def _sixteen_bit(folder: Path) -> str:
    grey = np.asarray(_portrait(128).convert("L")).astype(np.uint16) * 257
    return _write(folder, "grey16.png", _encode(Image.fromarray(grey), "PNG"))


def _align(photo: Callable[[Path], str]) -> Callable[[Path], tuple]:
    return lambda folder: (handle_file(photo(folder)), "center", DEMO)


def _aligned_ok(result: Any) -> bool:
    crop, line = result
    return Path(crop).is_file() and "photo" in line


def _info_has(text: str) -> Callable[[Any], bool]:
    return lambda result: text in result[1]


IMAGE_CASES = [
    Case("random bytes named .png", "/align",
         _align(lambda f: _write(f, "noise.png", np.random.default_rng(1).bytes(4096))), NOT_AN_IMAGE),
    Case("random bytes named .jpg", "/align",
         _align(lambda f: _write(f, "noise.jpg", np.random.default_rng(2).bytes(4096))), NOT_AN_IMAGE),
    Case("0-byte file", "/align", _align(lambda f: _write(f, "empty.png", b"")), r"file is empty \(0 bytes\)"),
    Case("truncated JPEG", "/align",
         _align(lambda f: _write(f, "cut.jpg", _encode(_portrait(), "JPEG")[:1500])), r"damaged or incomplete"),
    Case("PNG signature then garbage", "/align",
         _align(lambda f: _write(f, "fake.png", b"\x89PNG\r\n\x1a\n" + b"\0" * 64)), NOT_AN_IMAGE + "|damaged"),
    Case("decompression bomb (30000x30000 declared, 100 bytes)", "/align",
         _align(lambda f: _write(f, "bomb.png", _png_bomb())), r"more pixels than can be opened safely"),
    Case("PNG declaring 10000x10000 (100 MP)", "/align",
         _align(lambda f: _write(f, "huge.png", _png_bomb(10_000, 10_000))), r"declares 10000x10000 px"),
    Case("1x1 image", "/align",
         _align(lambda f: _write(f, "dot.png", _encode(Image.new("RGB", (1, 1)), "PNG"))),
         r"only 1x1 px; use one at least 64 px"),
    Case("20x20 image", "/align",
         _align(lambda f: _write(f, "tiny.png", _encode(_portrait().resize((20, 20)), "PNG"))), r"only 20x20 px"),
    Case("300x40 strip", "/align",
         _align(lambda f: _write(f, "strip.png", _encode(_portrait().resize((300, 40)), "PNG"))), r"only 300x40 px"),
    Case("very large JPEG (5000x4500)", "/align",
         _align(lambda f: _write(f, "large.jpg", _encode(_portrait().resize((5000, 4500)), "JPEG", quality=70))),
         None, _info_has("4096×3686 photo")),
    Case("animated GIF (3 frames)", "/align", _align(_gif), None, _aligned_ok),
    Case("16-bit grey PNG", "/align", _align(_sixteen_bit), None, _aligned_ok),
    Case("CMYK JPEG", "/align",
         _align(lambda f: _write(f, "cmyk.jpg", _encode(_portrait().convert("CMYK"), "JPEG"))), None, _aligned_ok),
    Case("greyscale JPEG", "/align",
         _align(lambda f: _write(f, "grey.jpg", _encode(_portrait().convert("L"), "JPEG"))), None, _aligned_ok),
    Case("RGBA PNG with transparency", "/align", _align(_rgba), None, _aligned_ok),
    Case("EXIF-rotated phone JPEG (stored 200x100, orientation 6)", "/align", _align(_exif_rotated), None,
         _info_has("100×200 photo")),
    Case("SVG upload", "/align",
         _align(lambda f: _write(f, "drawing.svg", b'<svg xmlns="http://www.w3.org/2000/svg" width="99" height="99">'
                                 b'<circle r="40"/></svg>')), r"SVG and HTML files are not photos"),
    Case("SVG renamed .png", "/align",
         _align(lambda f: _write(f, "drawing.png", b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"/>')),
         r"SVG and HTML files are not photos"),
    Case("HTML page named .jpg", "/align",
         _align(lambda f: _write(f, "page.jpg", b"<!DOCTYPE html><html><script>alert(1)</script></html>")),
         r"SVG and HTML files are not photos"),
    Case("EPS (Ghostscript) named .png", "/align",
         _align(lambda f: _write(f, "doc.png", b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 100 100\nshowpage\n")),
         NOT_AN_IMAGE),
]


# ---- latents -----------------------------------------------------------------------------------
def _latent(folder: Path, name: str, data: Any) -> tuple:
    path = folder / name
    torch.save(data, path)
    return (handle_file(str(path)),)


class _Exploit:
    """Unpickling this would run `exec`; a safe loader refuses the global."""
    def __reduce__(self):
        return (exec, ("open('/tmp/hub-pwned', 'w').write('pwned')",))


def _pickle_bomb(folder: Path) -> tuple:
    path = folder / "latent.pt"
    path.write_bytes(pickle.dumps({"ws": _Exploit(), "model_id": DEMO}))
    return (handle_file(str(path)),)


def _ws(shape: tuple[int, ...], fill: float | None = None) -> torch.Tensor:
    ws = torch.randn(shape, generator=torch.Generator().manual_seed(0))
    if fill is not None:
        ws[..., 0] = fill
    return ws


LATENT_CASES = [
    Case("latent of the wrong shape [1, 3, 7]", "/upload_latent",
         lambda f: _latent(f, "w.pt", {"ws": _ws((1, 3, 7)), "model_id": DEMO}), r"needs \[1, \d+, \d+\]"),
    Case("latent with 4 axes", "/upload_latent",
         lambda f: _latent(f, "w4.pt", {"ws": _ws((1, 1, 3, 7)), "model_id": DEMO}), r"expected \[1, num_ws, w_dim\]"),
    Case("latent holding NaN", "/upload_latent",
         lambda f: _latent(f, "nan.pt", {"ws": _ws((1, 8, 64), float("nan")), "model_id": DEMO}), r"NaN or infinite"),
    Case("latent holding +inf", "/upload_latent",
         lambda f: _latent(f, "inf.pt", {"ws": _ws((1, 8, 64), float("inf")), "model_id": DEMO}), r"NaN or infinite"),
    Case("latent of an unknown model", "/upload_latent",
         lambda f: _latent(f, "other.pt", {"ws": _ws((1, 18, 512)), "model_id": "someone-elses-gan"}),
         r"belongs to 'someone-elses-gan', which the hub does not know"),
    Case("latent of another model (FFHQ-1024, not on this machine)", "/upload_latent",
         lambda f: _latent(f, "ffhq.pt", {"ws": _ws((1, 18, 512)), "model_id": "stylegan2-ffhq-1024"}),
         r"offline|not on this machine|download"),
    Case("text file named .pt", "/upload_latent", lambda f: (handle_file(_write(f, "notes.pt", b"hello")),),
         r"not a latent file saved by this hub"),
    Case("pickle that runs code on load (exec in __reduce__)", "/upload_latent", _pickle_bomb,
         r"not a latent file saved by this hub"),
]


# ---- prompts -----------------------------------------------------------------------------------
def _global(neutral: str, target: str) -> Callable[[Path], tuple]:
    return lambda folder: (DEMO, DEMO_CLIP, "3", None, neutral, target, 2.0, 0.1)


PROMPT_CASES = [
    Case("prompt with control characters (NUL, BEL, ESC)", "/styleclip_global",
         _global("a face", "a \x00smiling\x07 face\x1b[31m"), None,
         lambda r: "a smiling face[31m" in r[1] and not any(c in r[1] for c in "\x00\x07\x1b")),
    Case("right-to-left prompt (Arabic, with a bidi override)", "/styleclip_global",
         _global("وجه", "وجه \u202eمبتسم"), None, lambda r: "وجه مبتسم" in r[1] and "\u202e" not in r[1]),
    Case("prompt of 10,000 characters", "/styleclip_global", _global("a face", "smile " * 1667),
         r"has 10,00\d characters"),
    Case("prompt of emoji only", "/styleclip_global", _global("a face", "😀😀😀"), r"has no words"),
    Case("empty prompt", "/styleclip_global", _global("a face", "   "), r"is empty"),
]


# ---- numeric and choice arguments ----------------------------------------------------------------
def _generate(**kw: Any) -> Callable[[Path], tuple]:
    args = dict(model=DEMO, seeds="0", psi=0.7, cutoff=0, class_idx=None, tx=0.0, ty=0.0, rotate=0.0, noise="const")
    args.update(kw)
    return lambda folder: tuple(args.values())


NUMBER_CASES = [
    Case("psi 5 (slider is -1..2)", "/generate", _generate(psi=5.0), r"greater than|maximum|between"),
    Case("psi -1e308", "/generate", _generate(psi=-1e308), r"less than|minimum|between"),
    Case("psi as text 'abc'", "/generate", _generate(psi="abc"), r"number"),
    Case("cutoff -3", "/generate", _generate(cutoff=-3), r"cutoff"),
    Case("cutoff 10**9", "/generate", _generate(cutoff=10**9), r"cutoff"),
    Case("cutoff 2.5 (not whole)", "/generate", _generate(cutoff=2.5), None),
    Case("class label 5 on an unconditional model", "/generate", _generate(class_idx=5), r"class|label|conditional"),
    Case("translate x 7 (slider is -1..1)", "/generate", _generate(tx=7.0), r"greater than|maximum|between"),
    Case("rotate as text '90deg'", "/generate", _generate(rotate="90deg"), r"number"),
    Case("noise mode 'loud'", "/generate", _generate(noise="loud"), r"not in the list of choices|noise"),
    Case("seeds 0-99999999999 (too many)", "/generate", _generate(seeds="0-99999999999"), r"more than \d+ seeds|too large"),
    Case("seeds '²' (a Unicode digit)", "/generate", _generate(seeds="²"), r"Could not read"),
    Case("seeds '-5'", "/generate", _generate(seeds="-5"), r"Could not read"),
    Case("seeds as a list [1, 2]", "/generate", _generate(seeds=[1, 2]), r"seed|text"),
    Case("unknown model id", "/generate", _generate(model="no-such-model"), r"not in the list of choices|no model"),
    Case("model id with path traversal", "/generate", _generate(model="../../etc/passwd"),
         r"not in the list of choices|no model"),
]

CASES = IMAGE_CASES + LATENT_CASES + PROMPT_CASES + NUMBER_CASES


if __name__ == "__main__":  # the note's table: python -m tests.api.hostile_inputs <url of a running app>
    import sys
    import tempfile

    from gradio_client import Client

    client = Client(sys.argv[1], verbose=False)
    folder = Path(tempfile.mkdtemp(prefix="hostile-"))
    print("| input | endpoint | answer |\n|---|---|---|")
    for case in CASES:
        try:
            result = client.predict(*case.args(folder), api_name=case.endpoint)
            answer = "served normally"
        except Exception as e:  # noqa: BLE001 - the table records whatever comes back
            answer = f"{type(e).__name__}: {str(e).splitlines()[0][:160]}"
        print(f"| {case.name} | `{case.endpoint}` | {answer} |")
