"""Images at the hub's edges: user files in, tensors inside, bytes out.

Inside the hub an image batch is float `[N, 3, H, W]` in [-1, 1] (NVlabs' convention, see
`gen_images.py` in github.com/NVlabs/stylegan3, which maps it with `x * 127.5 + 128` and a clamp).
Only at the edge does it become uint8 `[N, H, W, 3]` (or one contact sheet for a grid).

Every image a user uploads enters through `read_upload` (the tabs' upload boxes call it when the
file arrives): it refuses what is not a photo with one sentence (`AlignmentError`), guards memory
before decoding (a declared-size limit below Pillow's `Image.MAX_IMAGE_PIXELS` bomb check, JPEGs
decoded at reduced DCT scale), and says what it changed (downscaled, first frame of an animation,
transparency on white) in `LoadedImage.notices`.
"""
from __future__ import annotations

import io
import logging
import math
import os
import struct
from dataclasses import dataclass
from typing import BinaryIO, Union

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from shared.errors import AlignmentError, InputError

__all__ = ["ALLOWED_FORMATS", "ImageSource", "LoadedImage", "MAX_IMAGE_PIXELS", "MAX_IMAGE_SIDE", "MIN_IMAGE_SIDE",
           "MIN_UPLOAD_SIDE", "image_grid", "image_to_tensor", "load_user_image", "read_image", "read_upload",
           "to_uint8_hwc"]

log = logging.getLogger(__name__)

ImageSource = Union[str, os.PathLike, bytes, BinaryIO, Image.Image, np.ndarray]

MAX_IMAGE_SIDE = 4096         # images are downscaled to this long side before anything else
MAX_IMAGE_PIXELS = 80_000_000  # declared width x height refused above this, before decoding (< Pillow's
                               # 89.5 M warning and 179 M DecompressionBombError thresholds)
MIN_IMAGE_SIDE = 16           # the least any method can use
MIN_UPLOAD_SIDE = 64          # uploads smaller than this on either side are refused (the demo world's size)
# What Pillow may decode (JPEG includes multi-picture MPO files); its other plugins, e.g. EPS through
# Ghostscript, are never reached from an upload.
ALLOWED_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF")


def to_uint8_hwc(images: torch.Tensor) -> np.ndarray:
    """Map a batch of images from [-1, 1] to displayable bytes.

    Args:
        images: float tensor [N, C, H, W] (C = 1 or 3) in [-1, 1], any device; values outside
            the range are clipped.
    Returns:
        np.uint8 array [N, H, W, C] on the CPU (-1 -> 0, 0 -> 128, 1 -> 255).
    """
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"images must be [N, 1|3, H, W], got {tuple(images.shape)}")
    x = images.detach().to("cpu", torch.float32)
    x = (x * 127.5 + 128).clamp(0, 255).to(torch.uint8)  # [N, C, H, W]
    return x.permute(0, 2, 3, 1).contiguous().numpy()


def image_to_tensor(image: np.ndarray) -> torch.Tensor:
    """uint8 [H, W, 3] -> float32 [1, 3, H, W] in [-1, 1] (the inverse of `to_uint8_hwc`, up to rounding).

    Raises:
        InputError: the image is not a uint8 RGB array.
    """
    arr = np.asarray(image)
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.dtype != np.uint8:
        raise InputError(f"Expected a uint8 RGB image [H, W, 3], got {arr.dtype} {tuple(arr.shape)}.")
    return torch.from_numpy(arr.copy()).permute(2, 0, 1).unsqueeze(0).float().sub(128.0).div(127.5)


def image_grid(images: np.ndarray, *, columns: int | None = None, pad: int = 0,
               fill: int = 255) -> np.ndarray:
    """Tile uint8 images row by row into one contact sheet.

    Args:
        images: uint8 array [N, H, W, C] (as `to_uint8_hwc` returns).
        columns: images per row; None picks ceil(sqrt(N)).
        pad: pixels between tiles and around the sheet.
        fill: value of the padding and of empty cells.
    Returns:
        uint8 array [rows * (H + pad) + pad, columns * (W + pad) + pad, C].
    """
    if images.ndim != 4 or images.dtype != np.uint8:
        raise ValueError(f"images must be uint8 [N, H, W, C], got {images.dtype} {images.shape}")
    n, h, w, c = images.shape
    if n == 0:
        raise ValueError("image_grid needs at least one image")
    cols = columns or math.ceil(math.sqrt(n))
    if cols < 1:
        raise ValueError(f"columns must be >= 1, got {cols}")
    cols = min(cols, n)
    rows = math.ceil(n / cols)
    sheet = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad, c), fill, dtype=np.uint8)
    for i in range(n):
        r, q = divmod(i, cols)
        y, x = pad + r * (h + pad), pad + q * (w + pad)
        sheet[y:y + h, x:x + w] = images[i]
    return sheet


# ---- reading user images ---------------------------------------------------------------------
@dataclass(frozen=True)
class LoadedImage:
    """An image as read from a user: uint8 RGB [H, W, 3] upright, its size in the file (w, h),
    and one sentence per change made on the way in (empty when none)."""
    image: np.ndarray
    source_size: tuple[int, int]
    notices: tuple[str, ...] = ()


def read_upload(source: ImageSource) -> LoadedImage:
    """What an upload box hands on: `read_image` with the upload minimum of `MIN_UPLOAD_SIDE` px."""
    return read_image(source, min_side=MIN_UPLOAD_SIDE)


def load_user_image(source: ImageSource, *, max_side: int = MAX_IMAGE_SIDE) -> np.ndarray:
    """uint8 RGB [H, W, 3] of `read_image(source, max_side=max_side)`, without the notices."""
    return read_image(source, max_side=max_side).image


def read_image(source: ImageSource, *, min_side: int = MIN_IMAGE_SIDE,
               max_side: int = MAX_IMAGE_SIDE) -> LoadedImage:
    """Read a user's image into uint8 RGB [H, W, 3], upright and at most `max_side` px on the long side.

    Handles grey (L, 1), palette (P), CMYK (through its ICC profile when it has one), 16-bit and
    float images (I;16, I, F: 16-bit values scale by 1/257, floats in [0, 1] by 255), EXIF-rotated
    phone photos (`ImageOps.exif_transpose`) and animations (first frame, said). Transparency
    (RGBA, LA, PA, P with a transparent colour) is composited on white: transparent pixels often
    hold arbitrary colours, and white is what a viewer shows. Larger images are downscaled with
    Lanczos (JPEGs decode at a reduced DCT scale first); landmarks and crops then refer to the
    downscaled image, which at 4096 px still gives a face filling the frame more than 1024 px.
    Files declaring more than `MAX_IMAGE_PIXELS` are refused before any pixel is decoded.

    Args:
        source: a path, bytes, a binary file object, a PIL image, or an array [H, W], [H, W, 1|3|4]
            of uint8/uint16/bool/float (arrays are taken as RGB(A), not BGR).
        min_side: images smaller than this on either side are refused.
        max_side: images larger than this on the long side are downscaled to it.
    Raises:
        AlignmentError: not an image (or SVG/HTML, or empty), damaged or truncated, too small, too
            many pixels to decode safely.
    """
    notices: list[str] = []
    if isinstance(source, np.ndarray):
        rgb = _array_to_rgb(source)
        size = (rgb.shape[1], rgb.shape[0])
    else:
        img, size = _open_image(source, max_side, notices)
        rgb = _pil_to_rgb(img, notices)
    h, w = rgb.shape[:2]
    if min(h, w) < min_side:
        raise AlignmentError(f"The image is only {w}x{h} px; use one at least {min_side} px on each side.")
    if max(h, w) > max_side:
        scale = max_side / max(h, w)
        rgb = np.asarray(Image.fromarray(rgb).resize((max(1, round(w * scale)), max(1, round(h * scale))),
                                                     Image.Resampling.LANCZOS, reducing_gap=3.0))
    if (rgb.shape[1], rgb.shape[0]) != size and max(size) > max_side:
        notices.append(f"The image was {size[0]}x{size[1]} px; it was scaled down to {rgb.shape[1]}x{rgb.shape[0]} px "
                       f"(the limit is {max_side} px on the long side).")
    return LoadedImage(np.ascontiguousarray(rgb), size, tuple(notices))


def _open_image(source: ImageSource, max_side: int, notices: list[str]) -> tuple[Image.Image, tuple[int, int]]:
    """(decoded image turned upright, its stored size); errors become sentences."""
    if isinstance(source, Image.Image):
        return _upright(source), source.size
    if not isinstance(source, (str, os.PathLike, bytes, bytearray)) and not hasattr(source, "read"):
        raise AlignmentError(f"Expected an image file or array, got {type(source).__name__}.")
    name = os.path.basename(os.fspath(source)) if isinstance(source, (str, os.PathLike)) else "the upload"
    try:
        stream = io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else source
        _refuse_non_photos(stream)
        img = Image.open(stream, formats=ALLOWED_FORMATS)
    except AlignmentError:
        raise
    except (FileNotFoundError, IsADirectoryError, PermissionError) as e:
        raise AlignmentError(f"The file {name} could not be read ({e.strerror}).") from e
    except UnidentifiedImageError as e:
        raise AlignmentError(("This file is not an image that can be read; upload a JPEG, PNG or WebP "
                             "photo (convert iPhone HEIC photos to JPEG first).")) from e
    except Image.DecompressionBombError as e:
        raise AlignmentError(f"The image declares more pixels than can be opened safely "
                             f"({MAX_IMAGE_PIXELS // 1_000_000} megapixels at most); downscale it below "
                             f"{max_side} px on the long side.") from e
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, struct.error) as e:  # a damaged header
        raise AlignmentError("The image file is damaged or incomplete (truncated); save it again and "
                             "re-upload it.") from e
    w, h = img.size
    if w * h > MAX_IMAGE_PIXELS:
        img.close()
        raise AlignmentError(f"The image declares {w}x{h} px ({w * h / 1e6:.0f} megapixels), more than the "
                             f"{MAX_IMAGE_PIXELS // 1_000_000} megapixels that can be opened safely; downscale "
                             f"it below {max_side} px on the long side.")
    try:
        if getattr(img, "is_animated", False):
            img.seek(0)
            notices.append("The file holds several frames (an animation); only the first frame is used.")
        if img.format in ("JPEG", "MPO") and max(w, h) > max_side:
            scale = max_side / max(w, h)
            img.draft(img.mode, (math.ceil(w * scale), math.ceil(h * scale)))
        img.load()
        upright = _upright(img)
    except Image.DecompressionBombError as e:
        raise AlignmentError(f"The image declares more pixels than can be opened safely; downscale it below "
                             f"{max_side} px on the long side.") from e
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, struct.error) as e:
        raise AlignmentError("The image file is damaged or incomplete (truncated); save it again and "
                             "re-upload it.") from e
    turned = upright is not img and upright.size == img.size[::-1] and w != h
    return upright, (h, w) if turned else (w, h)


def _refuse_non_photos(stream: str | os.PathLike | BinaryIO) -> None:
    """Empty files and markup (SVG, HTML) get their own sentence; a file object is rewound."""
    if isinstance(stream, (str, os.PathLike)):
        with open(stream, "rb") as f:
            head = f.read(512)
    else:
        start = stream.tell()
        head = stream.read(512)
        stream.seek(start)
    if not head:
        raise AlignmentError("The file is empty (0 bytes), not an image; upload a JPEG, PNG or WebP photo.")
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if text.startswith((b"<?xml", b"<svg", b"<!doctype", b"<html", b"<!--")) or b"<svg" in text:
        raise AlignmentError("SVG and HTML files are not photos; upload a JPEG, PNG or WebP image "
                             "(export the drawing as PNG first).")


def _upright(img: Image.Image) -> Image.Image:
    try:
        orientation = img.getexif().get(0x0112, 1)
    except (OSError, SyntaxError, ValueError, TypeError, KeyError):
        return img  # unreadable EXIF: keep the stored orientation
    return ImageOps.exif_transpose(img) if orientation not in (None, 1) else img


def _pil_to_rgb(img: Image.Image, notices: list[str] | None = None) -> np.ndarray:
    mode = img.mode
    if mode == "RGB":
        return np.asarray(img)
    if mode.startswith("I;16"):  # 16-bit grey: full range 0..65535
        return _array_to_rgb(np.rint(np.asarray(img, dtype=np.float64) / 257.0).astype(np.uint8))
    if mode in ("I", "F"):
        return _array_to_rgb(np.asarray(img))
    if mode == "CMYK":
        return np.asarray(_cmyk_to_rgb(img))
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or (mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        if notices is not None and rgba.getextrema()[3][0] < 255:
            notices.append("The image has transparent areas; they were filled with white.")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return np.asarray(Image.alpha_composite(white, rgba).convert("RGB"))
    try:
        return np.asarray(img.convert("RGB"))
    except ValueError as e:
        raise AlignmentError(f"Images in colour mode {mode} are not supported; save the photo as RGB.") from e


def _cmyk_to_rgb(img: Image.Image) -> Image.Image:
    icc = img.info.get("icc_profile")
    if icc:
        from PIL import ImageCms
        try:
            src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
            return ImageCms.profileToProfile(img, src, ImageCms.createProfile("sRGB"), outputMode="RGB")
        except (ImageCms.PyCMSError, OSError) as e:
            log.debug("CMYK ICC profile unusable (%s); converting without it", e)
    return img.convert("RGB")


def _array_to_rgb(arr: np.ndarray) -> np.ndarray:
    a = np.asarray(arr)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[..., 0]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (3, 4)) or a.size == 0:
        raise AlignmentError(f"An image array must be [H, W] or [H, W, 3|4], got shape {tuple(a.shape)}.")
    if a.dtype == np.uint8:
        u8 = a
    elif a.dtype == bool:
        u8 = a.astype(np.uint8) * 255
    elif np.issubdtype(a.dtype, np.integer):
        wide = a.astype(np.float64)
        u8 = np.rint(np.clip(wide / 257.0 if wide.max() > 255 else wide, 0, 255)).astype(np.uint8)
    elif np.issubdtype(a.dtype, np.floating):
        f = np.nan_to_num(a.astype(np.float64))
        u8 = np.rint(np.clip(f * 255.0 if f.max() <= 1.0 else f, 0, 255)).astype(np.uint8)
    else:
        raise AlignmentError(f"Image arrays of type {a.dtype} are not supported; use uint8 RGB.")
    if u8.ndim == 2:
        return np.repeat(u8[..., None], 3, axis=2)
    if u8.shape[2] == 4:
        return _pil_to_rgb(Image.fromarray(np.ascontiguousarray(u8), "RGBA"))
    return u8

