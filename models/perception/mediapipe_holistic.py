"""MediaPipe Holistic (the ``offline`` extra) mapped onto the OpenPose layouts.

MediaPipe 0.10.21's legacy ``mp.solutions.holistic`` ships its pose, face-mesh, hand and
segmentation models inside the wheel, so nothing downloads. It finds at most ONE person.

Mapping:
- body 18 from BlazePose's 33 landmarks (neck = shoulder midpoint, confidence = visibility);
- face 70 from the 478-point refined face mesh onto iBUG 68 + two pupils (the mesh->68
  correspondence follows Peizhi Yan's Mediapipe_2_Dlib_Landmarks table: a dlib point is one
  mesh vertex or the midpoint of two; pupils are the iris centres 468/473);
- hands 21 map 1:1; a hand the hand model misses is derived from the wrist and forearm
  direction with low confidence (:func:`.base.derive_hand`).
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import cv2
import numpy as np

from ..core.cache import model_cache
from ..core.schema import BODY, NUM_BODY, NUM_FACE, NUM_HAND, Person
from .base import Detection, derive_hand

logger = logging.getLogger(__name__)

# OpenPose body 18 <- BlazePose 33 (neck is computed).
_BLAZE = {"nose": 0, "left_eye": 2, "right_eye": 5, "left_ear": 7, "right_ear": 8,
          "left_shoulder": 11, "right_shoulder": 12, "left_elbow": 13, "right_elbow": 14,
          "left_wrist": 15, "right_wrist": 16, "left_pinky": 17, "right_pinky": 18,
          "left_index": 19, "right_index": 20, "left_thumb": 21, "right_thumb": 22,
          "left_hip": 23, "right_hip": 24, "left_knee": 25, "right_knee": 26,
          "left_ankle": 27, "right_ankle": 28}
BODY_FROM_BLAZEPOSE: tuple[int, ...] = tuple(
    -1 if name == "neck" else _BLAZE[name] for name in
    ("nose", "neck", "right_shoulder", "right_elbow", "right_wrist", "left_shoulder",
     "left_elbow", "left_wrist", "right_hip", "right_knee", "right_ankle", "left_hip",
     "left_knee", "left_ankle", "right_eye", "left_eye", "right_ear", "left_ear")
)

# iBUG 68 <- face mesh: each entry is (a, b); the point is the midpoint of vertices a and b.
FACE68_FROM_MESH: tuple[tuple[int, int], ...] = (
    # jaw 0-16 (subject's right to left)
    (127, 127), (234, 234), (93, 93), (132, 58), (58, 172), (136, 136), (150, 150),
    (176, 176), (152, 152), (400, 400), (379, 379), (365, 365), (397, 288), (361, 361),
    (323, 323), (454, 454), (356, 356),
    # right eyebrow 17-21, left eyebrow 22-26
    (70, 70), (63, 63), (105, 105), (66, 66), (107, 107),
    (336, 336), (296, 296), (334, 334), (293, 293), (300, 300),
    # nose bridge 27-30, lower nose 31-35
    (168, 6), (197, 195), (5, 5), (4, 4), (75, 75), (97, 97), (2, 2), (326, 326), (305, 305),
    # right eye 36-41, left eye 42-47
    (33, 33), (160, 160), (158, 158), (133, 133), (153, 153), (144, 144),
    (362, 362), (385, 385), (387, 387), (263, 263), (373, 373), (380, 380),
    # outer lips 48-59
    (61, 61), (39, 39), (37, 37), (0, 0), (267, 267), (269, 269), (291, 291),
    (321, 321), (314, 314), (17, 17), (84, 84), (91, 91),
    # inner lips 60-67
    (78, 78), (82, 82), (13, 13), (312, 312), (308, 308), (317, 317), (14, 14), (87, 87),
)
RIGHT_IRIS_CENTER, LEFT_IRIS_CENTER = 468, 473

MIN_SIDE = 128  # smaller inputs are upscaled to this short side before detection
MAX_SIDE = 1280  # larger inputs are downscaled to this long side (the models run at 256 px)
VISIBILITY_THRESHOLD = 0.1  # BlazePose landmarks less visible than this count as missing


DEBUG_ENV = "DANCE_REENACT_DEBUG"  # set (to anything but 0) to see MediaPipe's native logs
_STDERR_LOCK = threading.Lock()


@contextmanager
def quiet_native_logs() -> Iterator[None]:
    """Keep MediaPipe's native log lines ("All log messages before absl::InitializeLog()",
    "Created TensorFlow Lite XNNPACK delegate", "Feedback manager requires ...") off the
    console while a graph starts and runs its first frame.

    MediaPipe 0.10.21 logs through C++ absl, which reads neither ``GLOG_minloglevel`` nor
    ``TF_CPP_MIN_LOG_LEVEL`` (mediapipe issue #5737), so the only switch is the process's
    file descriptor 2: it points at the null device for the duration of the block (keep the
    block short; Python's own ``sys.stderr`` is flushed first). With ``DANCE_REENACT_DEBUG``
    set nothing is hidden.
    """
    os.environ.setdefault("GLOG_minloglevel", "2")  # for builds that do read it
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if os.environ.get(DEBUG_ENV, "0") not in ("", "0"):
        yield
        return
    with _STDERR_LOCK:
        try:
            sys.stderr.flush()
            saved = os.dup(2)
        except (OSError, ValueError):  # no fd 2 (an embedded interpreter): nothing to hide
            yield
            return
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            os.close(null)


def _require_mediapipe():
    try:
        with quiet_native_logs():
            import mediapipe as mp
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise RuntimeError(
            "the mediapipe backend needs the 'offline' extra: pip install 'mediapipe==0.10.21' "
            "(the last release whose wheel ships the holistic models)") from exc
    if not hasattr(mp, "solutions") or not hasattr(mp.solutions, "holistic"):
        raise RuntimeError(f"mediapipe {getattr(mp, '__version__', '?')} has no legacy "
                           "holistic solution; install mediapipe==0.10.21")
    return mp


class HolisticDetector:
    """A MediaPipe Holistic graph mapped to OpenPose people.

    Args:
        static_image_mode: True treats every frame independently (photos); False tracks
            across consecutive frames (a video: faster and steadier).
        with_mask: compute the person segmentation.
        model_complexity: BlazePose 0 (lite), 1 (full) or 2 (heavy).
        min_detection_confidence: person-detector threshold.
        derive_hands: place hands the hand model misses from the forearm (low confidence).
    """

    def __init__(self, *, static_image_mode: bool = True, with_mask: bool = True,
                 model_complexity: int = 1, min_detection_confidence: float = 0.5,
                 derive_hands: bool = True) -> None:
        mp = _require_mediapipe()
        self.with_mask = with_mask
        self.derive_hands = derive_hands
        with quiet_native_logs():
            self._graph = mp.solutions.holistic.Holistic(
                static_image_mode=static_image_mode, model_complexity=model_complexity,
                enable_segmentation=with_mask, refine_face_landmarks=True,
                min_detection_confidence=min_detection_confidence)
        self._lock = threading.Lock()
        self._started = False

    def close(self) -> None:
        with quiet_native_logs():  # the graph flushes its last warnings as it stops
            self._graph.close()

    def __enter__(self) -> HolisticDetector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __call__(self, rgb: np.ndarray) -> list[Detection]:
        """Detect the person in one frame.

        Args:
            rgb: uint8 (H, W, 3) RGB, any size.
        Returns:
            zero or one :class:`Detection` in pixels of ``rgb``; the mask (if asked) is
            float32 (H, W).
        """
        rgb = np.asarray(rgb)
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError(f"expected uint8 RGB (H, W, 3), got {rgb.dtype} {rgb.shape}")
        h, w = rgb.shape[:2]
        scale = 1.0
        if max(h, w) > MAX_SIDE:
            scale = MAX_SIDE / max(h, w)
        elif min(h, w) < MIN_SIDE:
            scale = MIN_SIDE / min(h, w)
        work = rgb
        if scale != 1.0:
            size = (max(1, round(w * scale)), max(1, round(h * scale)))
            interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
            work = cv2.resize(rgb, size, interpolation=interp)
        work = np.ascontiguousarray(work)
        with self._lock:
            if self._started:
                res = self._graph.process(work)
            else:  # the graph logs natively while it starts on its first frame
                with quiet_native_logs():
                    res = self._graph.process(work)
                self._started = True
        if res.pose_landmarks is None:
            return []
        # Landmarks are normalised to the (resized) frame: 0..1 of it is 0..1 of the original.
        sx, sy = float(w), float(h)

        person, score = _map_pose(res.pose_landmarks.landmark, sx, sy)
        if res.face_landmarks is not None:
            person.face = _map_face(res.face_landmarks.landmark, sx, sy)
        hands = {"left": res.left_hand_landmarks, "right": res.right_hand_landmarks}
        for side, lm in hands.items():
            if lm is not None:
                setattr(person, f"{side}_hand", _map_hand(lm.landmark, sx, sy))
        derived = (_derive_missing_hands(person, res.pose_landmarks.landmark, sx, sy)
                   if self.derive_hands else set())
        mask = None
        if self.with_mask and res.segmentation_mask is not None:
            mask = np.asarray(res.segmentation_mask, dtype=np.float32)
            if mask.shape != (h, w):
                mask = cv2.resize(mask, (w, h), interpolation=cv2.INTER_LINEAR)
            mask = np.clip(mask, 0.0, 1.0)
        return [Detection(person=person, mask=mask, score=score, derived_hands=derived)]


def _inside(x: float, y: float) -> bool:
    return -0.02 <= x <= 1.02 and -0.02 <= y <= 1.02


def _map_pose(lms, sx: float, sy: float) -> tuple[Person, float]:
    body = np.zeros((NUM_BODY, 3), dtype=np.float32)
    for i, j in enumerate(BODY_FROM_BLAZEPOSE):
        if j < 0:
            continue
        lm = lms[j]
        vis = float(lm.visibility)
        if vis >= VISIBILITY_THRESHOLD and _inside(lm.x, lm.y):
            body[i] = (lm.x * sx, lm.y * sy, vis)
    rs, ls = body[BODY["right_shoulder"]], body[BODY["left_shoulder"]]
    if rs[2] > 0 and ls[2] > 0:
        body[BODY["neck"]] = ((rs[0] + ls[0]) / 2, (rs[1] + ls[1]) / 2, min(rs[2], ls[2]))
    used = [lms[j].visibility for j in BODY_FROM_BLAZEPOSE if j >= 0]
    return Person(body=body), float(np.clip(np.mean(used), 0.0, 1.0))


def _map_face(lms, sx: float, sy: float) -> np.ndarray:
    mesh = np.array([(lm.x * sx, lm.y * sy) for lm in lms], dtype=np.float32)
    face = np.zeros((NUM_FACE, 3), dtype=np.float32)
    pairs = np.asarray(FACE68_FROM_MESH)
    face[:68, :2] = (mesh[pairs[:, 0]] + mesh[pairs[:, 1]]) / 2
    if len(mesh) > LEFT_IRIS_CENTER:
        face[68, :2] = mesh[RIGHT_IRIS_CENTER]
        face[69, :2] = mesh[LEFT_IRIS_CENTER]
    else:  # unrefined mesh: pupils as the eye centres
        face[68, :2] = face[36:42, :2].mean(0)
        face[69, :2] = face[42:48, :2].mean(0)
    face[:, 2] = 1.0
    return face


def _map_hand(lms, sx: float, sy: float) -> np.ndarray:
    hand = np.zeros((NUM_HAND, 3), dtype=np.float32)
    for i, lm in enumerate(lms[:NUM_HAND]):
        hand[i] = (lm.x * sx, lm.y * sy, 1.0)
    return hand


def _derive_missing_hands(person: Person, lms, sx: float, sy: float) -> set[str]:
    """SPEC §6: the hand model misses most hands; place them from the forearm instead.

    Returns the sides that were derived."""
    body = person.body
    derived: set[str] = set()
    for side in ("left", "right"):
        if (getattr(person, f"{side}_hand")[:, 2] > 0).any():
            continue
        e, w = body[BODY[f"{side}_elbow"]], body[BODY[f"{side}_wrist"]]
        if e[2] <= 0 or w[2] <= 0:
            continue
        # BlazePose's index/pinky/thumb points give the hand's direction and thumb side
        # when they are visible; otherwise the forearm continues and the thumb faces the neck.
        idx, pky, thb = (lms[_BLAZE[f"{side}_{k}"]] for k in ("index", "pinky", "thumb"))
        direction = None
        thumb = body[BODY["neck"], :2] if body[BODY["neck"], 2] > 0 else None
        if min(idx.visibility, pky.visibility) >= 0.5:
            knuckles = np.array([(idx.x + pky.x) / 2 * sx, (idx.y + pky.y) / 2 * sy])
            direction = knuckles - w[:2]
        if thb.visibility >= 0.5:
            thumb = np.array([thb.x * sx, thb.y * sy])
        setattr(person, f"{side}_hand",
                derive_hand(e[:2], w[:2], thumb_towards=thumb, direction=direction))
        derived.add(side)
    return derived


def _shared_detector(with_mask: bool, derive_hands: bool) -> HolisticDetector:
    """The photo-mode graph for these options, kept in the pack's model cache (closed when
    evicted or cleared)."""
    return model_cache().get_or_create(
        "mediapipe_static", (with_mask, derive_hands),
        lambda: HolisticDetector(static_image_mode=True, with_mask=with_mask,
                                 derive_hands=derive_hands))


def detect_people(rgb: np.ndarray, *, with_mask: bool = True,
                  derive_hands: bool = True) -> list[Detection]:
    """Find the (at most one) person in a photo with MediaPipe Holistic.

    Args:
        rgb: uint8 (H, W, 3) RGB of any size (grayscale/RGBA: convert first, e.g. with
            ``nodes.sockets.frame_to_rgb_uint8``).
        with_mask: also return the person segmentation.
        derive_hands: place undetected hands from the forearm (confidence 0.2).
    Returns:
        ``[]`` or ``[Detection]`` with keypoints in pixels of ``rgb`` in the OpenPose layouts
        of ``models.schema`` and, if asked, a float32 (H, W) mask in 0..1.
    """
    return _shared_detector(with_mask, derive_hands)(rgb)


@contextmanager
def video_detector(*, with_mask: bool = True,
                   derive_hands: bool = True) -> Iterator[HolisticDetector]:
    """A tracking detector for consecutive frames of ONE video, closed afterwards."""
    det = HolisticDetector(static_image_mode=False, with_mask=with_mask,
                           derive_hands=derive_hands)
    try:
        yield det
    finally:
        det.close()
