"""What users and scripts send, property-tested (issue 19 item 3): the seed parser, the image reader
every upload goes through (`shared.images.read_upload`) and the readers of uploaded `.pt` files either
return a valid value or raise the library's one-sentence error, never anything else."""
from __future__ import annotations

import io
import random
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from shared.errors import AlignmentError, CheckpointError, InputError
from shared.images import MAX_IMAGE_PIXELS, MAX_IMAGE_SIDE, MIN_UPLOAD_SIDE, read_image, read_upload
from shared.inversion.compare import load_latent_file
from shared.latents import MAX_SEED, parse_seeds
from shared.loaders._common import file_format, torch_load_weights

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))


# ---- the seed parser ---------------------------------------------------------------------------
@FUZZ
@given(text=st.text(max_size=40), max_count=st.integers(1, 64))
def test_any_seed_text_gives_valid_seeds_or_a_sentence(text, max_count):
    try:
        seeds = parse_seeds(text, max_count=max_count, rng=random.Random(0))
    except InputError as e:
        assert str(e).endswith((".", ")")) and len(str(e)) < 200
        return
    assert 1 <= len(seeds) <= max_count and len(set(seeds)) == len(seeds) or text.strip().lower().startswith("random")
    assert all(type(s) is int and 0 <= s <= MAX_SEED for s in seeds)


@FUZZ
@given(text=st.text(alphabet="0123456789-, ;random:x*²٣\t", max_size=30))
def test_seed_like_text_gives_valid_seeds_or_a_sentence(text):
    try:
        seeds = parse_seeds(text, max_count=16, rng=random.Random(0))
    except InputError:
        return
    assert all(type(s) is int and 0 <= s <= MAX_SEED for s in seeds)


@FUZZ
@given(seeds=st.lists(st.integers(0, MAX_SEED), min_size=1, max_size=20), sep=st.sampled_from([",", ", ", " ", ";"]))
def test_a_written_list_of_seeds_reads_back(seeds, sep):
    assert parse_seeds(sep.join(map(str, seeds)), max_count=64) == list(dict.fromkeys(seeds))


@FUZZ
@given(a=st.integers(0, MAX_SEED - 100), n=st.integers(0, 63))
def test_a_range_reads_as_every_seed_in_it(a, n):
    assert parse_seeds(f"{a} - {a + n}", max_count=64) == list(range(a, a + n + 1))
    if n:
        with pytest.raises(InputError, match="runs backwards"):
            parse_seeds(f"{a + n}-{a}")


@FUZZ
@given(n=st.integers(-5, 80), seed=st.integers(0, 2**32))
def test_random_seeds_are_reproducible_with_a_given_rng(n, seed):
    text = f"random:{n}"
    if not 1 <= n <= 64:
        with pytest.raises(InputError):
            parse_seeds(text, max_count=64, rng=random.Random(seed))
        return
    assert parse_seeds(text, max_count=64, rng=random.Random(seed)) == parse_seeds(text, max_count=64,
                                                                                     rng=random.Random(seed))


# ---- the image reader --------------------------------------------------------------------------
def _encoded(fmt: str, size=(96, 80), mode="RGB") -> bytes:
    rng = np.random.default_rng(0)
    arr = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).convert(mode).save(buf, fmt)
    return buf.getvalue()


_SAMPLES = [_encoded("PNG"), _encoded("JPEG"), _encoded("GIF"), _encoded("WEBP"), _encoded("BMP"), _encoded("TIFF")]


def _mutated(base: bytes, at: int, junk: bytes) -> bytes:
    at %= len(base)
    return base[:at] + junk + base[at + len(junk):]


@FUZZ
@given(data=st.one_of(st.binary(max_size=600),
                      st.builds(_mutated, st.sampled_from(_SAMPLES), st.integers(0, 10**6), st.binary(min_size=1, max_size=12)),
                      st.builds(lambda b, n: b[:n], st.sampled_from(_SAMPLES), st.integers(0, 4000))))
def test_any_bytes_read_as_an_rgb_image_or_a_sentence(data):
    try:
        loaded = read_upload(data)
    except AlignmentError as e:
        assert len(str(e)) < 300 and "Traceback" not in str(e)
        return
    h, w, c = loaded.image.shape
    assert c == 3 and loaded.image.dtype == np.uint8 and min(h, w) >= MIN_UPLOAD_SIDE and max(h, w) <= MAX_IMAGE_SIDE


def _png_header_only(width: int, height: int) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b""))


@pytest.mark.parametrize("width, height", [(30_000, 30_000), (10_000, 9_000), (100_000, 1_000)])
def test_decompression_bombs_are_refused_from_the_header(width, height):
    """Refused before a pixel is decoded: the file is ~100 bytes, the image would be gigabytes."""
    assert width * height > MAX_IMAGE_PIXELS
    with pytest.raises(AlignmentError, match="more pixels than can be opened safely|megapixels"):
        read_upload(_png_header_only(width, height))


def test_large_images_are_downscaled_with_a_notice():
    loaded = read_upload(_encoded("JPEG", size=(MAX_IMAGE_SIDE + 904, 1000)))
    assert loaded.source_size == (5000, 1000) and loaded.image.shape == (819, 4096, 3)
    assert loaded.notices == ("The image was 5000x1000 px; it was scaled down to 4096x819 px (the limit is "
                              "4096 px on the long side).",)


def test_small_images_are_refused_below_the_stated_minimum():
    with pytest.raises(AlignmentError, match=f"only 63x200 px; use one at least {MIN_UPLOAD_SIDE} px"):
        read_upload(_encoded("PNG", size=(63, 200)))
    assert read_upload(_encoded("PNG", size=(64, 64))).image.shape == (64, 64, 3)
    assert read_image(_encoded("PNG", size=(20, 20))).image.shape == (20, 20, 3)  # methods' own floor is lower


def test_animation_transparency_and_rotation_are_said_or_undone():
    frames = [Image.new("RGB", (80, 80), c) for c in ((200, 10, 10), (10, 200, 10))]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], duration=50)
    gif = read_upload(buf.getvalue())
    assert gif.notices == ("The file holds several frames (an animation); only the first frame is used.",)
    assert tuple(gif.image[0, 0]) == (200, 10, 10)
    rgba = Image.new("RGBA", (80, 80), (0, 0, 255, 0))
    buf = io.BytesIO()
    rgba.save(buf, "PNG")
    clear = read_upload(buf.getvalue())
    assert clear.notices == ("The image has transparent areas; they were filled with white.",)
    assert (clear.image == 255).all()
    exif = Image.Exif()
    exif[0x0112] = 6
    buf = io.BytesIO()
    Image.new("RGB", (200, 100), (90, 90, 90)).save(buf, "JPEG", exif=exif)
    turned = read_upload(buf.getvalue())
    assert turned.image.shape == (200, 100, 3) and turned.source_size == (100, 200) and turned.notices == ()


def test_formats_outside_the_allowed_list_are_not_decoded(tmp_path: Path):
    """EPS would run Ghostscript, ICO/PSD/PCX and the rest are no photo format: all refused."""
    eps = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 100 100\nshowpage\n"
    buf = io.BytesIO()
    Image.new("RGB", (100, 100)).save(buf, "PCX")
    for data in (eps, buf.getvalue()):
        with pytest.raises(AlignmentError, match="not an image that can be read"):
            read_upload(data)


# ---- uploaded .pt files ------------------------------------------------------------------------
def _saved(obj, legacy: bool = False) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf, _use_new_zipfile_serialization=not legacy)
    return buf.getvalue()


_LATENTS = [_saved({"ws": torch.zeros(1, 4, 8), "model_id": "m", "method": "e4e"}),
            _saved({"ws": torch.zeros(1, 4, 8), "model_id": "m"}, legacy=True)]


@FUZZ
@given(data=st.one_of(st.binary(max_size=400),
                      st.builds(_mutated, st.sampled_from(_LATENTS), st.integers(0, 10**6), st.binary(min_size=1, max_size=8)),
                      st.builds(lambda b, n: b[:n], st.sampled_from(_LATENTS), st.integers(0, 3000))))
def test_any_pt_file_reads_or_gets_a_sentence(data, tmp_path_factory):
    path = tmp_path_factory.mktemp("pt") / "upload.pt"
    path.write_bytes(data)
    try:
        ws, model_id, _ = load_latent_file(path)
        assert ws.ndim == 3 and torch.isfinite(ws).all() and isinstance(model_id, str)
    except InputError:
        pass
    kind = file_format(path)
    if kind in ("zip", "legacy-torch"):
        try:
            torch_load_weights(path, kind)
        except CheckpointError:
            pass
