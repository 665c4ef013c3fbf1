"""Faces: 68-point landmarks, alignment to a canonical crop, and the weightless FaceRefine.

Landmark backends (all return iBUG-68 points in pixels of the frame, or None when no face):

- ``mediapipe``: MediaPipe's face mesh (the model ships inside the ``mediapipe`` 0.10.21 wheel,
  no download), mapped onto iBUG 68 with the perception stage's
  :data:`~.perception.mediapipe_holistic.FACE68_FROM_MESH` (one map for the whole pack).
- ``fan68``: the FAN 68-point ONNX from the weight registry, run with onnxruntime on a square
  crop around a face box found by OpenCV's frontal-face Haar cascade (ships with OpenCV).
  Its contract: input ``[1, 3, 256, 256]`` float RGB in 0..1, output 0 ``[1, 68, 3]`` =
  (x, y, score) in the 64x64 heatmap grid (times 4 = crop pixels); a model that only gives
  heatmaps ``[1, 68, 64, 64]`` is decoded by arg-max.

Alignment: a similarity transform (rotation, uniform scale, translation) that maps five points
(eye centres, nose tip, mouth corners) onto :data:`CANONICAL_5`, a template in a 256x256 crop
with the face centred and some forehead and chin visible (the ArcFace 5-point template scaled
by 2 and lifted by 20 px).

The weightless FaceRefine (SPEC §4) warps the target's face onto the generated face by a
similarity fitted on the stable landmarks (brows, eyes, nose, mouth corners), matches its
colour to the frame in Lab space inside the face mask (mean and standard deviation), and blends
it through a feathered face mask, or with Poisson (seamless) cloning. Pixels outside the blend
mask are returned bit-identical.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..core.schema import FACE_REGIONS
from ..perception.mediapipe_holistic import FACE68_FROM_MESH

logger = logging.getLogger(__name__)

CROP_SIZE = 256
# ArcFace's 112x112 5-point template (eye centres, nose tip, mouth corners), scaled x2 about
# its centre into 256x256 and lifted 20 px so forehead and chin fit.
_ARCFACE_112 = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
                         [41.5493, 92.3655], [70.7299, 92.2041]], np.float64)
CANONICAL_5: np.ndarray = (_ARCFACE_112 - 56.0) * 2.0 + np.array([128.0, 108.0])

# iBUG indices of the points that move little with expression: used to fit target -> frame.
STABLE_68: tuple[int, ...] = (FACE_REGIONS["right_eyebrow"] + FACE_REGIONS["left_eyebrow"]
                              + FACE_REGIONS["nose_bridge"] + FACE_REGIONS["nose_lower"]
                              + FACE_REGIONS["right_eye"] + FACE_REGIONS["left_eye"]
                              + (48, 54))
LANDMARK_BACKENDS: tuple[str, ...] = ("mediapipe", "fan68")


# --------------------------------------------------------------------------------------------
# geometry
# --------------------------------------------------------------------------------------------

def five_points(lm68: np.ndarray) -> np.ndarray:
    """iBUG 68 -> the 5 alignment points (right eye, left eye, nose tip, mouth corners).

    Shape: (68, 2+) -> (5, 2) float64.
    """
    lm = np.asarray(lm68, np.float64)[:, :2]
    return np.stack([lm[36:42].mean(0), lm[42:48].mean(0), lm[30], lm[48], lm[54]])


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity (Umeyama, no reflection) mapping ``src`` onto ``dst``.

    Shape: (N, 2), (N, 2) -> (2, 3) float64 affine matrix ``[sR | t]``.
    """
    src = np.asarray(src, np.float64)
    dst = np.asarray(dst, np.float64)
    mu_s, mu_d = src.mean(0), dst.mean(0)
    s0, d0 = src - mu_s, dst - mu_d
    var = (s0 ** 2).sum() / len(src)
    if var < 1e-12:
        raise ValueError("landmarks are degenerate (all points coincide)")
    cov = d0.T @ s0 / len(src)
    u, sig, vt = np.linalg.svd(cov)
    d = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        d[1, 1] = -1.0
    rot = u @ d @ vt
    scale = float(np.trace(np.diag(sig) @ d) / var)
    mat = np.zeros((2, 3))
    mat[:, :2] = scale * rot
    mat[:, 2] = mu_d - scale * rot @ mu_s
    return mat


def alignment_matrix(lm68: np.ndarray, size: int = CROP_SIZE) -> np.ndarray:
    """The similarity that maps a frame onto the canonical ``size`` x ``size`` face crop.

    Shape: (68, 2+) -> (2, 3).
    """
    return similarity_transform(five_points(lm68), CANONICAL_5 * (size / CROP_SIZE))


def transform_points(points: np.ndarray, mat: np.ndarray) -> np.ndarray:
    """Apply a (2, 3) affine to (N, 2) points."""
    pts = np.asarray(points, np.float64)[:, :2]
    return pts @ mat[:, :2].T + mat[:, 2]


def align_face(rgb: np.ndarray, lm68: np.ndarray, size: int = CROP_SIZE
               ) -> tuple[np.ndarray, np.ndarray]:
    """Crop the face to the canonical template.

    Returns:
        (crop uint8 (size, size, 3), matrix (2, 3) frame -> crop).
    """
    mat = alignment_matrix(lm68, size)
    crop = cv2.warpAffine(rgb, mat, (size, size), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REFLECT101)
    return crop, mat


def face_hull_mask(lm68: np.ndarray, h: int, w: int, *, forehead: float = 0.25) -> np.ndarray:
    """Binary face region: the hull of the jaw and the brows lifted by ``forehead`` of the
    brow-to-chin height (covers the forehead the 68 points miss). Returns uint8 (h, w) 0/1."""
    lm = np.asarray(lm68, np.float64)[:, :2]
    brows = lm[17:27].copy()
    chin = lm[8]
    up = brows.mean(0) - chin
    brows = brows + up * forehead
    pts = np.concatenate([lm[0:17], brows[::-1]])
    hull = cv2.convexHull(np.round(pts).astype(np.int32))
    mask = np.zeros((h, w), np.uint8)
    cv2.fillConvexPoly(mask, hull, 1)
    return mask


def feather(mask: np.ndarray, radius: int) -> np.ndarray:
    """Soft mask in 0..1: ``mask`` eroded by ``radius`` then blurred by ``radius``, so the
    result is 0 wherever ``mask`` is 0. Shape (h, w) -> float32 (h, w)."""
    m = (mask > 0).astype(np.uint8)
    if radius <= 0:
        return m.astype(np.float32)
    k = 2 * radius + 1
    eroded = cv2.erode(m, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
    soft = cv2.GaussianBlur(eroded.astype(np.float32), (k, k), radius / 2.0)
    return np.where(m > 0, soft, 0.0).astype(np.float32)


def match_color_lab(src: np.ndarray, ref: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Shift ``src``'s Lab mean and standard deviation inside ``mask`` to ``ref``'s.

    Shape: uint8 (h, w, 3) RGB x2, mask (h, w) -> uint8 (h, w, 3).
    """
    sel = mask > 0
    if sel.sum() < 16:
        return src
    s = cv2.cvtColor(src, cv2.COLOR_RGB2LAB).astype(np.float32)
    r = cv2.cvtColor(ref, cv2.COLOR_RGB2LAB).astype(np.float32)
    ms, ss = s[sel].mean(0), s[sel].std(0) + 1e-3
    mr, sr = r[sel].mean(0), r[sel].std(0) + 1e-3
    gain = np.clip(sr / ss, 0.5, 2.0)
    out = (s - ms) * gain + mr
    return cv2.cvtColor(np.clip(out + 0.5, 0, 255).astype(np.uint8), cv2.COLOR_LAB2RGB)


def refine_alignment_ecc(src: np.ndarray, dst: np.ndarray, mat: np.ndarray, mask: np.ndarray,
                         *, max_shift: float = 0.05, iterations: int = 60) -> np.ndarray:
    """Polish a landmark-fitted affine ``src -> dst`` by ECC image alignment inside ``mask``.

    Landmarks of a generated (blurry, noisy) face are off by a few pixels, enough to lower
    the match; ECC maximises the correlation of the two faces' intensities instead. The
    result is kept only if ECC converges and moves the face centre by less than
    ``max_shift`` of the face size; otherwise ``mat`` is returned unchanged.

    Shape: uint8 (h, w, 3) x2, (2, 3), (h, w) -> (2, 3).
    """
    ys, xs = np.nonzero(mask)
    if len(xs) < 64:
        return mat
    x0, x1, y0, y1 = xs.min(), xs.max() + 1, ys.min(), ys.max() + 1
    size = float(max(x1 - x0, y1 - y0))
    pad = int(0.1 * size)
    x0, y0 = max(0, x0 - pad), max(0, y0 - pad)
    x1, y1 = min(dst.shape[1], x1 + pad), min(dst.shape[0], y1 + pad)
    # work in the box around the face: shift the transform into box coordinates
    shift = np.array([[1, 0, -x0], [0, 1, -y0]], np.float64)
    m_box = shift @ np.vstack([mat, [0, 0, 1]])
    bw, bh = int(x1 - x0), int(y1 - y0)
    tpl = cv2.cvtColor(dst[y0:y1, x0:x1], cv2.COLOR_RGB2GRAY).astype(np.float32)
    pre = cv2.cvtColor(cv2.warpAffine(src, m_box[:2], (bw, bh), flags=cv2.INTER_LINEAR,
                                      borderMode=cv2.BORDER_REPLICATE),
                       cv2.COLOR_RGB2GRAY).astype(np.float32)
    # ECC finds W with tpl(x) ~ pre(W x); then src -> box is W^-1 m_box
    warp = np.eye(2, 3, dtype=np.float32)
    crit = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, iterations, 1e-5)
    try:
        _, warp = cv2.findTransformECC(tpl, pre, warp, cv2.MOTION_AFFINE, crit,
                                       (mask[y0:y1, x0:x1] > 0).astype(np.uint8), 5)
    except cv2.error:
        return mat
    w_inv = np.vstack([cv2.invertAffineTransform(warp.astype(np.float64)), [0, 0, 1]])
    new = (np.linalg.inv(np.vstack([shift, [0, 0, 1]])) @ w_inv
           @ np.vstack([m_box, [0, 0, 1]]))[:2]
    c = np.array([xs.mean(), ys.mean()])
    c_src = cv2.invertAffineTransform(mat) @ np.append(c, 1.0)
    moved = np.linalg.norm(new @ np.append(c_src, 1.0) - c)
    lin_old, lin_new = mat[:, :2], new[:, :2]
    if moved > max_shift * size or np.abs(lin_new - lin_old).max() > 0.15 * np.abs(lin_old).max():
        return mat
    return new


def blend_into(frame: np.ndarray, src: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """``frame * (1 - alpha) + src * alpha``; pixels with alpha == 0 stay bit-identical."""
    a = alpha[..., None].astype(np.float32)
    mixed = frame.astype(np.float32) * (1.0 - a) + src.astype(np.float32) * a
    mixed = np.clip(mixed + 0.5, 0, 255).astype(np.uint8)
    return np.where(a > 0, mixed, frame)


# --------------------------------------------------------------------------------------------
# landmark detectors
# --------------------------------------------------------------------------------------------

class MediaPipeFaceLandmarks:
    """MediaPipe face mesh (offline; the model is inside the mediapipe 0.10.21 wheel).

    Call with an RGB uint8 frame -> (68, 2) float pixels of the largest face, or None.
    Use as a context manager, or call :meth:`close`.
    """

    def __init__(self, *, min_confidence: float = 0.5) -> None:
        from ..perception.mediapipe_holistic import _require_mediapipe, quiet_native_logs

        mp = _require_mediapipe()
        with quiet_native_logs():
            self._mesh = mp.solutions.face_mesh.FaceMesh(
                static_image_mode=True, max_num_faces=4, refine_landmarks=False,
                min_detection_confidence=min_confidence)
            self._mesh.process(np.zeros((64, 64, 3), np.uint8))  # start the graph quietly
        self._pairs = np.asarray(FACE68_FROM_MESH)

    def __call__(self, rgb: np.ndarray) -> np.ndarray | None:
        h, w = rgb.shape[:2]
        if min(h, w) < 32:  # the detector's anchors cannot find a face this small
            return None
        res = self._mesh.process(np.ascontiguousarray(rgb))
        if not res.multi_face_landmarks:
            return None
        best, best_area = None, -1.0
        for face in res.multi_face_landmarks:
            mesh = np.array([[p.x * w, p.y * h] for p in face.landmark], np.float64)
            pts = (mesh[self._pairs[:, 0]] + mesh[self._pairs[:, 1]]) / 2
            span = pts.max(0) - pts.min(0)
            if span[0] * span[1] > best_area:
                best, best_area = pts, span[0] * span[1]
        return best

    def close(self) -> None:
        from ..perception.mediapipe_holistic import quiet_native_logs

        with quiet_native_logs():  # the graph flushes its last warnings as it stops
            self._mesh.close()

    def __enter__(self) -> MediaPipeFaceLandmarks:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def haar_face_boxes(rgb: np.ndarray) -> list[tuple[int, int, int, int]]:
    """Frontal face boxes (x, y, w, h) by OpenCV's Haar cascade, largest first."""
    path = Path(cv2.data.haarcascades) / "haarcascade_frontalface_default.xml"
    cascade = cv2.CascadeClassifier(str(path))
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    side = max(24, min(rgb.shape[:2]) // 16)
    boxes = cascade.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5,
                                     minSize=(side, side))
    out = [tuple(int(v) for v in b) for b in (boxes if len(boxes) else [])]
    return sorted(out, key=lambda b: -b[2] * b[3])  # type: ignore[return-value]


# face-alignment (1adrianb/face-alignment, ``face_alignment/api.py`` get_landmarks_from_image,
# ``face_alignment/utils.py``): crop centre = box centre moved up by CENTER_Y_OFFSET * box
# height, crop side = SCALE_FACTOR * (w + h) / REFERENCE_SCALE, resized to 256.
FAN_CENTER_Y_OFFSET = 0.12
FAN_SCALE_FACTOR = 200.0
FAN_REFERENCE_SCALE = 195.0  # S3FD, dlib, BlazeFace and given boxes; 165 for RetinaFace & co


def fan_crop_matrix(box: tuple[float, float, float, float], size: int = 256,
                    reference_scale: float = FAN_REFERENCE_SCALE) -> np.ndarray:
    """The (2, 3) affine frame -> FAN crop of face-alignment for one face box.

    Args:
        box: (x, y, w, h) face box in frame pixels.
        size: crop side (FAN's 256).
        reference_scale: face-alignment's ``reference_scale`` of the detector the box comes
            from (195 for S3FD-like boxes).
    Returns:
        float64 (2, 3): crop = mat @ (x, y, 1). The square of side
        ``200 * (w + h) / reference_scale`` centred at the box centre moved up by
        ``0.12 * h`` maps onto the ``size`` x ``size`` crop (upstream's ``crop`` cuts the same
        square on integer pixel bounds).
    """
    x, y, w, h = (float(v) for v in box)
    cx, cy = x + w / 2.0, y + h / 2.0 - FAN_CENTER_Y_OFFSET * h
    side = FAN_SCALE_FACTOR * (w + h) / reference_scale
    k = size / side
    return np.array([[k, 0.0, size / 2.0 - k * cx], [0.0, k, size / 2.0 - k * cy]])


def fan_heatmap_peaks(hm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """face-alignment's ``get_preds_fromhm`` for one face: (K, H, W) heatmaps -> (K, 2)
    points in heatmap pixels (arg-max, a quarter pixel towards the higher neighbour, +0.5 as
    its 1-based ``-0.5``) and (K,) peak values."""
    k, h, w = hm.shape
    flat = hm.reshape(k, -1)
    idx = flat.argmax(1)
    px, py = idx % w, idx // w
    pts = np.stack([px, py], 1).astype(np.float64) + 0.5
    for j in range(k):
        x, y = int(px[j]), int(py[j])
        if 0 < x < w - 1 and 0 < y < h - 1:
            pts[j] += 0.25 * np.sign([hm[j, y, x + 1] - hm[j, y, x - 1],
                                      hm[j, y + 1, x] - hm[j, y - 1, x]])
    return pts, flat.max(1)


class Fan68Landmarks:
    """FAN 68-point landmarks from an ONNX file (registry ``fan68``) on a Haar face box.

    The crop is face-alignment's (:func:`fan_crop_matrix`): a square of side
    ``200 * (w + h) / 195`` centred ``0.12 * h`` above the box centre, resized to 256, RGB
    divided by 255. face-alignment tunes the 195 for S3FD boxes and uses it for dlib,
    BlazeFace and user-given boxes too; OpenCV's Haar frontal-face box is square and covers
    about the same brows-to-chin area, so it is used as an S3FD box (no rescaling).
    Heatmap outputs are decoded like ``get_preds_fromhm`` (:func:`fan_heatmap_peaks`), without
    its final rounding to integer pixels.
    """

    INPUT = 256

    def __init__(self, path: str | Path, *, min_score: float = 0.0) -> None:
        import onnxruntime as ort

        try:
            self._sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        except Exception as exc:
            raise RuntimeError(f"{path} is not a loadable ONNX model ({exc}); delete it and "
                               "fetch it again") from exc
        inp = self._sess.get_inputs()
        if len(inp) != 1 or list(inp[0].shape)[1:] not in ([3, 256, 256], ["?", 256, 256]):
            raise RuntimeError(f"{path} does not look like the FAN 68-point model: input "
                               f"{[(i.name, i.shape) for i in inp]}, expected one "
                               "[1, 3, 256, 256] input")
        self._input = inp[0].name
        self.min_score = min_score

    def _decode(self, outputs: list[np.ndarray]) -> tuple[np.ndarray, float]:
        """Crop-pixel points (68, 2) and a score from the model's outputs."""
        for out in outputs:
            if out.ndim == 3 and out.shape[1] == 68 and out.shape[2] in (2, 3):
                score = float(out[0, :, 2].mean()) if out.shape[2] == 3 else 1.0
                return out[0, :, :2].astype(np.float64) * (self.INPUT / 64.0), score
        for out in outputs:
            if out.ndim == 4 and out.shape[1] == 68:
                pts, peak = fan_heatmap_peaks(np.asarray(out[0], np.float32))
                return pts * (self.INPUT / out.shape[3]), float(peak.mean())
        raise RuntimeError("the FAN model returned no [1, 68, 3] landmarks or [1, 68, H, W] "
                           f"heatmaps (got shapes {[o.shape for o in outputs]})")

    def landmarks_in_box(self, rgb: np.ndarray, box: tuple[float, float, float, float]
                         ) -> tuple[np.ndarray, float]:
        """(68, 2) frame-pixel landmarks and their score for one (x, y, w, h) face box."""
        mat = fan_crop_matrix(box, self.INPUT)
        crop = cv2.warpAffine(rgb, mat, (self.INPUT, self.INPUT), flags=cv2.INTER_LINEAR)
        blob = crop.astype(np.float32).transpose(2, 0, 1)[None] / 255.0
        pts, score = self._decode(self._sess.run(None, {self._input: blob}))
        return transform_points(pts, cv2.invertAffineTransform(mat)), score

    def __call__(self, rgb: np.ndarray) -> np.ndarray | None:
        if min(rgb.shape[:2]) < 32:
            return None
        boxes = haar_face_boxes(rgb)
        if not boxes:
            return None
        pts, score = self.landmarks_in_box(rgb, boxes[0])
        if score < self.min_score:
            return None
        return pts

    def close(self) -> None:
        pass

    def __enter__(self) -> Fan68Landmarks:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


LandmarkFn = Callable[[np.ndarray], "np.ndarray | None"]


# --------------------------------------------------------------------------------------------
# faces of any size: a face box first, then landmarks on the upscaled crop
# --------------------------------------------------------------------------------------------

# The smallest face (the larger side of its 68 landmarks' box, in frame pixels) that the
# crop-and-upscale path below landmarks well. Measured on the astronaut and the guitarist
# dev photo, each downscaled (with anti-aliasing), shifted by sub-pixel offsets and rotated
# by up to 8 degrees, the 68 points compared with those of the full-size face: mean error
# <= 1.3% of the face's size down to 24 px, 1.7% at 20 px, up to 5% at 16 px; 12 px is not
# found at all. MediaPipe's face mesh run on a whole 512 px frame stops finding the face
# below ~56 px (it detects faces relative to the frame): small faces need the crop.
MIN_FACE_PX = 24
LANDMARK_CROP = 256  # face crops are resized to this side before landmarking
CROP_MARGIN = 2.2  # crop side = this x the face box side


def face_size(lm68: np.ndarray) -> float:
    """The larger side of the landmarks' bounding box, in pixels."""
    lm = np.asarray(lm68, np.float64)[:, :2]
    return float(max(np.ptp(lm[:, 0]), np.ptp(lm[:, 1])))


def box_of_mask(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """(x, y, w, h) of the nonzero pixels of a mask, or None when empty."""
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return None
    return int(xs.min()), int(ys.min()), int(xs.max() - xs.min() + 1), \
        int(ys.max() - ys.min() + 1)


def landmarks_in_box(detect: LandmarkFn, rgb: np.ndarray, box: tuple[float, ...], *,
                     side: int = LANDMARK_CROP, margin: float = CROP_MARGIN
                     ) -> np.ndarray | None:
    """Landmark the face in ``box`` (x, y, w, h) on a square crop around it resized to
    ``side`` (small faces are upscaled, so the landmarker sees them at the size it was trained
    for). Returns (68, 2) in frame pixels, or None."""
    x, y, w, h = (float(v) for v in box[:4])
    span = max(w, h, 4.0) * margin
    scale = side / span
    cx, cy = x + w / 2.0, y + h / 2.0
    mat = np.array([[scale, 0.0, side / 2.0 - scale * cx], [0.0, scale, side / 2.0 - scale * cy]])
    src = rgb
    if scale < 1.0:  # shrinking a big face: pre-blur against aliasing
        src = cv2.GaussianBlur(rgb, (0, 0), 0.5 / scale)
    crop = cv2.warpAffine(src, mat, (side, side), flags=cv2.INTER_CUBIC,
                          borderMode=cv2.BORDER_REPLICATE)
    lm = detect(crop)
    if lm is None:
        return None
    return transform_points(lm, cv2.invertAffineTransform(mat))


class MediaPipeFaceBoxes:
    """Face boxes by MediaPipe's full-range face detector (in the wheel): the whole frame,
    then overlapping half-size tiles (a face of ~20 px in a 512 px frame is found on a tile).

    Call with RGB uint8 -> [(x, y, w, h), ...] largest first.
    """

    def __init__(self, *, min_confidence: float = 0.5) -> None:
        from ..perception.mediapipe_holistic import _require_mediapipe, quiet_native_logs

        mp = _require_mediapipe()
        with quiet_native_logs():
            self._det = mp.solutions.face_detection.FaceDetection(
                model_selection=1, min_detection_confidence=min_confidence)
            self._det.process(np.zeros((64, 64, 3), np.uint8))  # start the graph quietly

    def _run(self, rgb: np.ndarray, x0: int = 0, y0: int = 0) -> list[tuple[int, ...]]:
        h, w = rgb.shape[:2]
        res = self._det.process(np.ascontiguousarray(rgb))
        out = []
        for d in res.detections or []:
            b = d.location_data.relative_bounding_box
            out.append((int(round(b.xmin * w)) + x0, int(round(b.ymin * h)) + y0,
                        int(round(b.width * w)), int(round(b.height * h))))
        return out

    def __call__(self, rgb: np.ndarray) -> list[tuple[int, int, int, int]]:
        h, w = rgb.shape[:2]
        boxes = self._run(rgb)
        if not boxes and min(h, w) >= 64:
            th, tw = h // 2, w // 2
            for ty in (0, h // 4, h - th):
                for tx in (0, w // 4, w - tw):
                    boxes += self._run(rgb[ty:ty + th, tx:tx + tw], tx, ty)
        return sorted(boxes, key=lambda b: -b[2] * b[3])  # type: ignore[return-value]

    def close(self) -> None:
        from ..perception.mediapipe_holistic import quiet_native_logs

        with quiet_native_logs():
            self._det.close()


@dataclass(frozen=True)
class FoundFace:
    """What :class:`FaceFinder` saw: ``landmarks`` (68, 2) when a usable face was found;
    ``size`` the face's size in pixels (0 when nothing was seen); ``status`` one of
    ``ok``, ``small`` (a face smaller than ``min_face_px``) or ``none``."""

    landmarks: np.ndarray | None
    size: float
    status: str


class FaceFinder:
    """68 landmarks of a face of any size: a face box (a hint such as the parsing's face
    labels, else the landmarker on the whole frame, else :class:`MediaPipeFaceBoxes`), a crop
    around it upscaled to :data:`LANDMARK_CROP`, the landmarker on the crop, mapped back.

    Faces smaller than ``min_face_px`` are reported as ``small`` rather than landmarked
    badly.
    """

    def __init__(self, detect: LandmarkFn, *, min_face_px: int = MIN_FACE_PX,
                 boxes: Callable[[np.ndarray], list] | None = None) -> None:
        self.detect = detect
        self.min_face_px = int(min_face_px)
        self._boxes = boxes
        self._own_boxes: MediaPipeFaceBoxes | None = None

    def _face_boxes(self, rgb: np.ndarray) -> list:
        if self._boxes is None:
            try:
                self._own_boxes = MediaPipeFaceBoxes()
            except RuntimeError:  # pragma: no cover - the mediapipe extra is missing
                self._boxes = lambda _rgb: haar_face_boxes(_rgb)
            else:
                self._boxes = self._own_boxes
        return self._boxes(rgb)

    def __call__(self, rgb: np.ndarray, hint: tuple[int, int, int, int] | None = None
                 ) -> FoundFace:
        candidates: list[tuple[float, ...]] = []
        whole = None
        if hint is not None:
            candidates.append(hint)
        else:
            whole = self.detect(rgb) if min(rgb.shape[:2]) >= 32 else None
            if whole is not None:
                lo = whole.min(0)
                s = face_size(whole)
                candidates.append((lo[0], lo[1], s, s))
            else:
                candidates += self._face_boxes(rgb)[:3]
        seen = 0.0
        for box in candidates:
            lm = landmarks_in_box(self.detect, rgb, box)
            if lm is None:
                seen = max(seen, float(max(box[2], box[3])))
                continue
            cx, cy = box[0] + box[2] / 2.0, box[1] + box[3] / 2.0
            if np.hypot(*(lm[30] - (cx, cy))) > max(box[2], box[3]):
                continue  # landmarks of another face in the crop
            size = face_size(lm)
            if size < self.min_face_px:
                return FoundFace(None, size, "small")
            return FoundFace(lm, size, "ok")
        if whole is not None:
            size = face_size(whole)
            return FoundFace(whole, size, "ok") if size >= self.min_face_px \
                else FoundFace(None, size, "small")
        if 0 < seen < self.min_face_px:
            return FoundFace(None, seen, "small")
        return FoundFace(None, seen, "none")

    def close(self) -> None:
        if self._own_boxes is not None:
            self._own_boxes.close()
            self._own_boxes = None

    def __enter__(self) -> FaceFinder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def make_landmarker(backend: str, *, fan_path: str | Path | None = None
                    ) -> MediaPipeFaceLandmarks | Fan68Landmarks:
    """A landmark detector by name (``mediapipe`` or ``fan68``; fan68 needs ``fan_path``)."""
    if backend == "mediapipe":
        return MediaPipeFaceLandmarks()
    if backend == "fan68":
        if fan_path is None:
            from ..io.weights import resolve

            fan_path = resolve("fan68")
        return Fan68Landmarks(fan_path)
    raise ValueError(f"unknown landmark backend {backend!r}; use one of {LANDMARK_BACKENDS}")


# --------------------------------------------------------------------------------------------
# weightless FaceRefine
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class FaceTarget:
    """The target photo's face, prepared once: RGB frame, its 68 landmarks, its face mask."""

    rgb: np.ndarray
    landmarks: np.ndarray
    mask: np.ndarray

    @classmethod
    def from_image(cls, rgb: np.ndarray, landmarks: np.ndarray) -> FaceTarget:
        h, w = rgb.shape[:2]
        return cls(rgb, np.asarray(landmarks, np.float64), face_hull_mask(landmarks, h, w))


def refine_face_weightless(frame: np.ndarray, frame_lm: np.ndarray, target: FaceTarget, *,
                           feather_px: int | None = None, color_match: bool = True,
                           seamless: bool = False, region: np.ndarray | None = None,
                           refine_alignment: bool = True) -> np.ndarray:
    """Paste the target's face onto the frame's face (SPEC §4 weightless FaceRefine).

    Args:
        frame: uint8 (H, W, 3) RGB, the generated frame f0.
        frame_lm: (68, 2) landmarks of the face in ``frame``.
        target: the prepared target face.
        feather_px: feather radius; None = 6% of the face width.
        color_match: match the pasted face's Lab mean/std to the frame's inside the mask.
        seamless: Poisson-blend with ``cv2.seamlessClone`` (keeps the frame's shading).
        region: optional (H, W) mask the blend is restricted to (e.g. the face labels of a
            parsing).
        refine_alignment: polish the landmark fit by ECC image alignment
            (:func:`refine_alignment_ecc`).
    Returns:
        uint8 (H, W, 3); pixels outside the blend mask are bit-identical to ``frame``.
    """
    h, w = frame.shape[:2]
    if region is not None:
        # landmarks found anywhere but on the rendered head (a face-like fold of a shirt, a
        # second face) are not pasted on: the nose tip must lie on the head region
        nx, ny = (int(round(float(c))) for c in frame_lm[30])
        grown = cv2.dilate((region > 0).astype(np.uint8), np.ones((9, 9), np.uint8))
        if not (0 <= nx < w and 0 <= ny < h) or not grown[ny, nx]:
            return frame
    mat = similarity_transform(target.landmarks[list(STABLE_68)], frame_lm[list(STABLE_68)])
    if refine_alignment:
        fit_mask = cv2.erode(face_hull_mask(frame_lm, h, w), np.ones((5, 5), np.uint8))
        mat = refine_alignment_ecc(target.rgb, frame, mat, fit_mask)
    face = face_hull_mask(frame_lm, h, w)
    if region is not None:
        face &= (region > 0).astype(np.uint8)
    if face.sum() < 16:
        return frame
    face_w = float(np.ptp(frame_lm[0:17, 0])) or float(w)
    radius = max(1, int(round(0.06 * face_w))) if feather_px is None else int(feather_px)
    # work inside the face's box (plus the feather's reach): the cost follows the face's size,
    # not the frame's, and nothing outside the box can change
    ys, xs = np.nonzero(face)
    pad = radius + 4
    x0, y0 = max(0, int(xs.min()) - pad), max(0, int(ys.min()) - pad)
    x1, y1 = min(w, int(xs.max()) + 1 + pad), min(h, int(ys.max()) + 1 + pad)
    rw, rh = x1 - x0, y1 - y0
    m_roi = mat.copy()
    m_roi[:, 2] -= (x0, y0)
    src = target.rgb
    scale = float(np.sqrt(abs(np.linalg.det(mat[:, :2]))))
    if scale < 0.8:  # the target's face is shrunk onto a small face: low-pass it first, or
        # the bilinear warp aliases it into a harsh, noisy face
        src = cv2.GaussianBlur(src, (0, 0), 0.45 / scale)
    warped = cv2.warpAffine(src, m_roi, (rw, rh), flags=cv2.INTER_LINEAR,
                            borderMode=cv2.BORDER_REPLICATE)
    tmask = cv2.warpAffine(target.mask, m_roi, (rw, rh), flags=cv2.INTER_NEAREST)
    sub = frame[y0:y1, x0:x1]
    mask = face[y0:y1, x0:x1] & tmask
    if mask.sum() < 16:
        return frame
    sel = mask > 0
    if float(warped[sel].std()) < max(2.0, 0.25 * float(target.rgb[target.mask > 0].std())):
        # nothing but a flat block to paste (the warp sampled outside the target's face, or
        # the target's face is blank): keep the frame
        return frame
    if color_match:
        warped = match_color_lab(warped, sub, mask)
    if seamless:
        core = cv2.erode(mask, np.ones((3, 3), np.uint8))
        cy, cx = np.nonzero(core)
        if len(cx) >= 16 and cx.min() > 0 and cy.min() > 0 and cx.max() < rw - 1 \
                and cy.max() < rh - 1:
            center = (int((cx.min() + cx.max() + 1) // 2), int((cy.min() + cy.max() + 1) // 2))
            try:
                cloned = cv2.seamlessClone(warped, np.ascontiguousarray(sub), core * 255,
                                           center, cv2.NORMAL_CLONE)
                # seamlessClone's box centring can be off by a pixel: keep the frame outside
                warped = np.where(core[..., None] > 0, cloned, warped)
            except cv2.error:  # pragma: no cover - opencv refuses odd geometry
                logger.debug("seamlessClone failed; falling back to feathering")
    out = frame.copy()
    out[y0:y1, x0:x1] = blend_into(sub, warped, feather(mask, radius))
    return out


def paste_crop(frame: np.ndarray, crop: np.ndarray, crop_alpha: np.ndarray, mat: np.ndarray,
               *, border: int = 8) -> np.ndarray:
    """Warp an aligned crop back into the frame and blend it through its alpha.

    Args:
        frame: uint8 (H, W, 3).
        crop: uint8 (S, S, 3), the refined crop.
        crop_alpha: float (S, S) in 0..1, the network's blending mask.
        mat: (2, 3) frame -> crop matrix from :func:`align_face`.
        border: the alpha fades to 0 over this many crop pixels at the crop's edge.
    Returns: uint8 (H, W, 3); pixels the crop does not cover are bit-identical.
    """
    h, w = frame.shape[:2]
    s = crop.shape[0]
    a = crop_alpha.astype(np.float32).copy()
    if border > 0:
        ramp = np.minimum(np.arange(s), np.arange(s)[::-1]).astype(np.float32)
        edge = np.clip(ramp / float(border), 0, 1)
        a *= edge[:, None] * edge[None, :]
    inv = cv2.invertAffineTransform(mat)
    back = cv2.warpAffine(crop, inv, (w, h), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)
    alpha = cv2.warpAffine(a, inv, (w, h), flags=cv2.INTER_LINEAR, borderValue=0.0)
    alpha[alpha < 1.0 / 512] = 0.0
    return blend_into(frame, back, alpha)
