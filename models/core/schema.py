"""The one place for the label schema, keypoint layouts, colour maps and POSE_KEYPOINT conversion.

Everything that names a label, a joint, a limb or a colour imports it from here.

Label schema (22): the 20 VIP/CIHP labels plus left/right hand drawn from hand keypoints
(paper §3.1). B2F additionally gets five face labels drawn from face landmarks (27 channels).

Keypoints follow the OpenPose layouts that comfyui_controlnet_aux emits: body 18 (COCO order),
face 70 (iBUG 68 + two pupils), hands 21 each. Coordinates inside the pack are pixels of the
frame they belong to; POSE_KEYPOINT payloads may be normalised (0..1) or in pixels, and
:func:`frame_to_people` accepts both. The convention is decided once per sequence
(:func:`sequence_is_normalized`); frames this pack writes also name it (``"coordinates"``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

# --------------------------------------------------------------------------------------------
# Labels
# --------------------------------------------------------------------------------------------

LABEL_NAMES: tuple[str, ...] = (
    "background", "hat", "hair", "glove", "sunglasses", "upper_clothes", "dress", "coat",
    "socks", "pants", "torso_skin", "scarf", "skirt", "face", "left_arm", "right_arm",
    "left_leg", "right_leg", "left_shoe", "right_shoe", "left_hand", "right_hand",
)
NUM_LABELS = len(LABEL_NAMES)  # 22
LABEL: Mapping[str, int] = {name: i for i, name in enumerate(LABEL_NAMES)}

# The extra face labels B2F is conditioned on (drawn from the driver's face landmarks).
FACE_LABEL_NAMES: tuple[str, ...] = ("eyebrows", "eyes", "nose", "lips", "inner_mouth")
NUM_B2F_CHANNELS = NUM_LABELS + len(FACE_LABEL_NAMES)  # 27

# Colour palette: the LIP/CIHP palette used by SCHP for 0..19, two distinct colours for hands.
LABEL_COLORS: np.ndarray = np.array(
    [
        [0, 0, 0], [128, 0, 0], [0, 128, 0], [128, 128, 0], [0, 0, 128], [128, 0, 128],
        [0, 128, 128], [128, 128, 128], [64, 0, 0], [192, 0, 0], [64, 128, 0], [192, 128, 0],
        [64, 0, 128], [192, 0, 128], [64, 128, 128], [192, 128, 128], [0, 64, 0], [128, 64, 0],
        [0, 192, 0], [128, 192, 0], [255, 200, 150], [150, 200, 255],
    ],
    dtype=np.uint8,
)
FACE_LABEL_COLORS: np.ndarray = np.array(
    [[90, 60, 30], [255, 255, 255], [255, 140, 0], [220, 20, 60], [60, 0, 20]], dtype=np.uint8
)

# Groups of labels a user can ask a MASK for, and the five PartCropper groups (paper §3.2).
LABEL_GROUPS: Mapping[str, tuple[int, ...]] = {
    "person": tuple(range(1, NUM_LABELS)),
    "face_hair": (LABEL["hat"], LABEL["hair"], LABEL["sunglasses"], LABEL["face"]),
    "face": (LABEL["face"],),
    "hair": (LABEL["hair"],),
    "upper_clothes": (LABEL["upper_clothes"], LABEL["dress"], LABEL["coat"], LABEL["scarf"]),
    "lower_clothes": (LABEL["pants"], LABEL["skirt"]),
    "clothes": (LABEL["upper_clothes"], LABEL["dress"], LABEL["coat"], LABEL["scarf"],
                LABEL["pants"], LABEL["skirt"], LABEL["glove"], LABEL["socks"]),
    "shoes_socks": (LABEL["socks"], LABEL["left_shoe"], LABEL["right_shoe"]),
    "skin": (LABEL["torso_skin"], LABEL["face"], LABEL["left_arm"], LABEL["right_arm"],
             LABEL["left_leg"], LABEL["right_leg"], LABEL["left_hand"], LABEL["right_hand"]),
    "arms": (LABEL["left_arm"], LABEL["right_arm"]),
    "legs": (LABEL["left_leg"], LABEL["right_leg"]),
    "hands": (LABEL["left_hand"], LABEL["right_hand"]),
}
PART_CROP_GROUPS: tuple[tuple[str, tuple[int, ...]], ...] = (
    ("face_hair", LABEL_GROUPS["face_hair"]),
    ("upper_clothes", LABEL_GROUPS["upper_clothes"]),
    ("lower_clothes", LABEL_GROUPS["lower_clothes"]),
    ("shoes_socks", LABEL_GROUPS["shoes_socks"]),
    ("skin", (LABEL["torso_skin"], LABEL["left_arm"], LABEL["right_arm"], LABEL["left_leg"],
              LABEL["right_leg"], LABEL["left_hand"], LABEL["right_hand"])),
)

# SCHP-LIP's 20 labels onto ours: identical except LIP 10 "jumpsuits", which we call a dress
# (it covers the torso and legs like one); LIP has no torso-skin label.
LIP_TO_SCHEMA: np.ndarray = np.array(
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 6, 11, 12, 13, 14, 15, 16, 17, 18, 19], dtype=np.uint8
)


@dataclass(frozen=True)
class LabelSchema:
    """Names and colours of a label set; PARSING payloads carry one."""

    names: tuple[str, ...] = LABEL_NAMES
    colors: np.ndarray = field(default_factory=lambda: LABEL_COLORS, compare=False)

    @property
    def num_labels(self) -> int:
        return len(self.names)


DEFAULT_SCHEMA = LabelSchema()


def colorize_labels(labels: np.ndarray, colors: np.ndarray = LABEL_COLORS) -> np.ndarray:
    """Colour a label map with the palette.

    Args:
        labels: integer labels, shape (..., H, W), values in [0, len(colors)).
    Returns:
        uint8 RGB, shape (..., H, W, 3).
    """
    labels = np.asarray(labels)
    if labels.size and int(labels.max()) >= len(colors):
        raise ValueError(
            f"label {int(labels.max())} is outside the schema of {len(colors)} labels"
        )
    return colors[labels]


def group_mask(labels: np.ndarray, group: str | Iterable[int]) -> np.ndarray:
    """Boolean mask of the pixels whose label is in ``group`` (a LABEL_GROUPS name or ids)."""
    if isinstance(group, str):
        if group not in LABEL_GROUPS:
            raise ValueError(
                f"unknown label group {group!r}; choose one of {', '.join(LABEL_GROUPS)}"
            )
        ids = LABEL_GROUPS[group]
    else:
        ids = tuple(int(i) for i in group)
    lut = np.zeros(256, dtype=bool)
    lut[list(ids)] = True
    return lut[np.asarray(labels, dtype=np.uint8)]


# --------------------------------------------------------------------------------------------
# Keypoint layouts (OpenPose / comfyui_controlnet_aux)
# --------------------------------------------------------------------------------------------

BODY_NAMES: tuple[str, ...] = (
    "nose", "neck", "right_shoulder", "right_elbow", "right_wrist", "left_shoulder",
    "left_elbow", "left_wrist", "right_hip", "right_knee", "right_ankle", "left_hip",
    "left_knee", "left_ankle", "right_eye", "left_eye", "right_ear", "left_ear",
)
NUM_BODY = len(BODY_NAMES)  # 18
BODY: Mapping[str, int] = {name: i for i, name in enumerate(BODY_NAMES)}
NUM_HAND = 21
NUM_FACE = 70
NUM_ALL_KEYPOINTS = NUM_BODY + NUM_FACE + 2 * NUM_HAND  # 130, the order of Person.all_points

# OpenPose's limb sequence (0-based) in drawing order with its colours; the last two
# (shoulder-ear) exist in OpenPose's list but are not drawn by it, nor by us.
BODY_LIMBS: tuple[tuple[int, int], ...] = (
    (1, 2), (1, 5), (2, 3), (3, 4), (5, 6), (6, 7), (1, 8), (8, 9), (9, 10), (1, 11),
    (11, 12), (12, 13), (1, 0), (0, 14), (14, 16), (0, 15), (15, 17),
)
BODY_COLORS: np.ndarray = np.array(
    [
        [255, 0, 0], [255, 85, 0], [255, 170, 0], [255, 255, 0], [170, 255, 0], [85, 255, 0],
        [0, 255, 0], [0, 255, 85], [0, 255, 170], [0, 255, 255], [0, 170, 255], [0, 85, 255],
        [0, 0, 255], [85, 0, 255], [170, 0, 255], [255, 0, 255], [255, 0, 170], [255, 0, 85],
    ],
    dtype=np.uint8,
)
HAND_EDGES: tuple[tuple[int, int], ...] = (
    (0, 1), (1, 2), (2, 3), (3, 4), (0, 5), (5, 6), (6, 7), (7, 8), (0, 9), (9, 10),
    (10, 11), (11, 12), (0, 13), (13, 14), (14, 15), (15, 16), (0, 17), (17, 18), (18, 19),
    (19, 20),
)
# Face 70: iBUG 68 + right pupil (68) + left pupil (69). "Right" is the subject's right.
FACE_REGIONS: Mapping[str, tuple[int, ...]] = {
    "jaw": tuple(range(0, 17)),
    "right_eyebrow": tuple(range(17, 22)),
    "left_eyebrow": tuple(range(22, 27)),
    "nose_bridge": tuple(range(27, 31)),
    "nose_lower": tuple(range(31, 36)),
    "right_eye": tuple(range(36, 42)),
    "left_eye": tuple(range(42, 48)),
    "outer_lips": tuple(range(48, 60)),
    "inner_lips": tuple(range(60, 68)),
    "pupils": (68, 69),
}

# The body as a kinematic tree rooted at the neck: parent of each of the 18 joints (-1 = root).
# Shoulders, hips and the nose hang off the neck; eyes off the nose; ears off the eyes.
BODY_PARENT: tuple[int, ...] = (1, -1, 1, 2, 3, 1, 5, 6, 1, 8, 9, 1, 11, 12, 0, 0, 14, 15)
# Left/right counterparts (subject's sides) of each joint; the neck and nose map to themselves.
BODY_MIRROR: tuple[int, ...] = (0, 1, 5, 6, 7, 2, 3, 4, 11, 12, 13, 8, 9, 10, 15, 14, 17, 16)

# Limbs as segments of the body skeleton, used by the warp backends and synthetic people:
# name -> (parent joint, child joint, parsing label drawn along it).
LIMB_SEGMENTS: Mapping[str, tuple[int, int, int]] = {
    "right_upper_arm": (BODY["right_shoulder"], BODY["right_elbow"], LABEL["right_arm"]),
    "right_forearm": (BODY["right_elbow"], BODY["right_wrist"], LABEL["right_arm"]),
    "left_upper_arm": (BODY["left_shoulder"], BODY["left_elbow"], LABEL["left_arm"]),
    "left_forearm": (BODY["left_elbow"], BODY["left_wrist"], LABEL["left_arm"]),
    "right_thigh": (BODY["right_hip"], BODY["right_knee"], LABEL["right_leg"]),
    "right_shin": (BODY["right_knee"], BODY["right_ankle"], LABEL["right_leg"]),
    "left_thigh": (BODY["left_hip"], BODY["left_knee"], LABEL["left_leg"]),
    "left_shin": (BODY["left_knee"], BODY["left_ankle"], LABEL["left_leg"]),
}


def hand_edge_colors() -> np.ndarray:
    """OpenPose's hand edge colours: hue stepped around the wheel, full saturation/value.

    Returns: uint8 (20, 3) RGB.
    """
    out = np.zeros((len(HAND_EDGES), 3), dtype=np.uint8)
    for i in range(len(HAND_EDGES)):
        h = i / len(HAND_EDGES)
        k = int(h * 6) % 6
        f = h * 6 - math.floor(h * 6)
        q, t = 1 - f, f
        r, g, b = [(1, t, 0), (q, 1, 0), (0, 1, t), (0, q, 1), (t, 0, 1), (1, 0, q)][k]
        out[i] = (round(r * 255), round(g * 255), round(b * 255))
    return out


HAND_COLORS = hand_edge_colors()


# --------------------------------------------------------------------------------------------
# People and POSE_KEYPOINT conversion
# --------------------------------------------------------------------------------------------


def _empty(n: int) -> np.ndarray:
    return np.zeros((n, 3), dtype=np.float32)


@dataclass
class Person:
    """One person's keypoints in PIXELS of the frame: each array (N, 3) = x, y, confidence.

    A keypoint with confidence 0 is missing (its x, y mean nothing).
    """

    body: np.ndarray = field(default_factory=lambda: _empty(NUM_BODY))
    face: np.ndarray = field(default_factory=lambda: _empty(NUM_FACE))
    left_hand: np.ndarray = field(default_factory=lambda: _empty(NUM_HAND))
    right_hand: np.ndarray = field(default_factory=lambda: _empty(NUM_HAND))

    def __post_init__(self) -> None:
        for name, n in (("body", NUM_BODY), ("face", NUM_FACE), ("left_hand", NUM_HAND),
                        ("right_hand", NUM_HAND)):
            arr = np.asarray(getattr(self, name), dtype=np.float32)
            if arr.shape != (n, 3):
                raise ValueError(f"Person.{name} must have shape ({n}, 3), got {arr.shape}")
            setattr(self, name, drop_nonfinite(arr))

    def all_points(self) -> np.ndarray:
        """(18+70+21+21, 3) concatenation of every keypoint."""
        return np.concatenate([self.body, self.face, self.left_hand, self.right_hand], axis=0)

    @classmethod
    def from_points(cls, points: np.ndarray) -> Person:
        """Inverse of :meth:`all_points`: (130, 3) -> Person."""
        points = np.asarray(points, dtype=np.float32)
        if points.shape != (NUM_ALL_KEYPOINTS, 3):
            raise ValueError(f"expected ({NUM_ALL_KEYPOINTS}, 3) keypoints, got {points.shape}")
        a, b, c = NUM_BODY, NUM_BODY + NUM_FACE, NUM_BODY + NUM_FACE + NUM_HAND
        return cls(points[:a], points[a:b], points[b:c], points[c:])

    def num_confident(self, threshold: float = 0.05) -> int:
        return int((self.body[:, 2] > threshold).sum())

    def bbox(self, threshold: float = 0.05) -> tuple[float, float, float, float] | None:
        """(x0, y0, x1, y1) over confident keypoints, or None when there are none."""
        pts = self.all_points()
        pts = pts[pts[:, 2] > threshold]
        if len(pts) == 0:
            return None
        return (float(pts[:, 0].min()), float(pts[:, 1].min()),
                float(pts[:, 0].max()), float(pts[:, 1].max()))

    def scaled(self, sx: float, sy: float, dx: float = 0.0, dy: float = 0.0) -> Person:
        """A copy with x' = x*sx + dx, y' = y*sy + dy on confident points."""
        def f(a: np.ndarray) -> np.ndarray:
            out = a.copy()
            ok = out[:, 2] > 0
            out[ok, 0] = out[ok, 0] * sx + dx
            out[ok, 1] = out[ok, 1] * sy + dy
            return out
        return Person(f(self.body), f(self.face), f(self.left_hand), f(self.right_hand))


def _flat_to_array(values: Any, n: int, what: str) -> np.ndarray:
    if values is None:
        return _empty(n)
    arr = np.asarray(values, dtype=np.float32).reshape(-1)
    if arr.size == 0:
        return _empty(n)
    if arr.size % 3 != 0:
        raise ValueError(f"{what}: flat [x, y, c, ...] list has {arr.size} values, "
                         "not a multiple of 3")
    arr = arr.reshape(-1, 3)
    if len(arr) < n:  # shorter layouts (e.g. face 68 without pupils): pad as missing
        arr = np.concatenate([arr, _empty(n - len(arr))], axis=0)
    elif len(arr) > n:
        raise ValueError(f"{what}: expected {n} keypoints, got {len(arr)}")
    return drop_nonfinite(arr)


def drop_nonfinite(arr: np.ndarray) -> np.ndarray:
    """(N, 3) keypoints with any NaN/inf value in x, y or c -> that keypoint set to missing
    (0, 0, 0). (Zeroing only the bad value would turn a NaN position into a confident (0, 0).)"""
    arr = np.array(arr, dtype=np.float32, copy=True)
    bad = ~np.isfinite(arr).all(axis=-1)
    arr[bad] = 0.0
    return arr


# POSE_KEYPOINT frames our nodes write name their convention under this key
# ("normalized" or "pixels"); frames from other packs are told apart by their values.
COORDINATES_KEY = "coordinates"
# Normalised payloads may hold keypoints a little outside 0..1 (a hand or foot leaving the
# frame): every confident coordinate within this band still means "normalised". A pixel
# payload has almost all its coordinates far above 1.25 on any real canvas.
NORMALIZED_BAND: tuple[float, float] = (-0.25, 1.25)
# A person whose keypoints span fewer pixels than this has collapsed (typically normalised
# coordinates read as pixels): reported, since nothing downstream can draw it.
COLLAPSED_PX = 4.0


def _confident_coords(frame: Mapping[str, Any]) -> np.ndarray:
    coords = [np.zeros((0, 2), np.float32)]
    for person in frame.get("people") or []:
        if not isinstance(person, Mapping):
            continue
        for key in ("pose_keypoints_2d", "face_keypoints_2d", "hand_left_keypoints_2d",
                    "hand_right_keypoints_2d"):
            vals = person.get(key)
            if vals is None:
                continue
            try:
                arr = np.asarray(vals, dtype=np.float32).reshape(-1)
            except (TypeError, ValueError):  # malformed lists are reported by the parser
                continue
            if arr.size and arr.size % 3 == 0:
                arr = drop_nonfinite(arr.reshape(-1, 3))
                coords.append(arr[arr[:, 2] > 0, :2])
    return np.concatenate(coords, axis=0)


def _declared(frame: Mapping[str, Any]) -> bool | None:
    value = frame.get(COORDINATES_KEY)
    if value in ("normalized", "normalised"):
        return True
    if value == "pixels":
        return False
    return None


def sequence_is_normalized(frames: Iterable[Mapping[str, Any]]) -> bool:
    """Whether a POSE_KEYPOINT sequence's coordinates are normalised to 0..1, decided ONCE for
    all its frames.

    A frame that declares its convention (``"coordinates": "normalized" | "pixels"``, written
    by this pack) decides; otherwise the sequence is normalised when every confident finite
    coordinate of every frame lies within :data:`NORMALIZED_BAND` and the canvases are larger
    than 2 pixels. (comfyui_controlnet_aux's OpenPose emits normalised coordinates, its DWPose
    pixels.) Deciding per frame would let one keypoint at x = 1.03 turn that frame into
    "pixels" and shrink its person to a few pixels.
    """
    frames = [f for f in frames if isinstance(f, Mapping)]
    for frame in frames:
        declared = _declared(frame)
        if declared is not None:
            return declared
    pts = [_confident_coords(f) for f in frames]
    pts = np.concatenate(pts, axis=0) if pts else np.zeros((0, 2), np.float32)
    if pts.size == 0:
        return False
    for frame in frames:
        try:
            width = float(frame.get("canvas_width") or 0)
            height = float(frame.get("canvas_height") or 0)
        except (TypeError, ValueError):
            return False
        if max(width, height) <= 2:
            return False
    lo, hi = NORMALIZED_BAND
    return bool(pts.min() >= lo and pts.max() <= hi)


def is_normalized(frame: Mapping[str, Any]) -> bool:
    """Whether ONE POSE_KEYPOINT frame's coordinates are normalised (see
    :func:`sequence_is_normalized`; prefer that for the frames of a video)."""
    return sequence_is_normalized([frame])


def frame_to_people(frame: Mapping[str, Any], *, what: str = "POSE_KEYPOINT",
                    normalized: bool | None = None) -> list[Person]:
    """Parse one POSE_KEYPOINT frame into people with PIXEL coordinates.

    Args:
        frame: ``{"people": [...], "canvas_width": W, "canvas_height": H}`` with flat
            ``[x, y, c, ...]`` lists, normalised (0..1) or in pixels.
        normalized: the convention, decided once for the whole sequence
            (:func:`sequence_is_normalized`); None decides from this frame alone.
    Returns:
        list of :class:`Person` in pixels of the canvas.
    """
    if not isinstance(frame, Mapping):
        raise ValueError(f"{what}: each frame must be a dict with 'people', 'canvas_width', "
                         f"'canvas_height'; got {type(frame).__name__}")
    width = frame.get("canvas_width")
    height = frame.get("canvas_height")
    if not width or not height or int(width) <= 0 or int(height) <= 0:
        raise ValueError(f"{what}: frame needs positive canvas_width and canvas_height, "
                         f"got {width!r} x {height!r}")
    if normalized is None:
        normalized = is_normalized(frame)
    sx, sy = (float(width), float(height)) if normalized else (1.0, 1.0)
    people = []
    for i, p in enumerate(frame.get("people") or []):
        person = Person(
            body=_flat_to_array(p.get("pose_keypoints_2d"), NUM_BODY, f"{what} person {i} body"),
            face=_flat_to_array(p.get("face_keypoints_2d"), NUM_FACE, f"{what} person {i} face"),
            left_hand=_flat_to_array(p.get("hand_left_keypoints_2d"), NUM_HAND,
                                     f"{what} person {i} left hand"),
            right_hand=_flat_to_array(p.get("hand_right_keypoints_2d"), NUM_HAND,
                                      f"{what} person {i} right hand"),
        )
        people.append(person.scaled(sx, sy) if normalized else person)
    return people


def people_to_frame(people: Sequence[Person], width: int, height: int, *,
                    normalized: bool = False) -> dict[str, Any]:
    """Build one POSE_KEYPOINT frame (comfyui_controlnet_aux layout) from pixel-space people.

    Missing keypoints are written as [0, 0, 0]; a part with no confident keypoint as None,
    as comfyui_controlnet_aux does.
    """
    sx, sy = (1.0 / width, 1.0 / height) if normalized else (1.0, 1.0)

    def flat(a: np.ndarray) -> list[float] | None:
        if not (a[:, 2] > 0).any():
            return None
        out = a.astype(np.float64).copy()
        ok = out[:, 2] > 0
        out[ok, 0] *= sx
        out[ok, 1] *= sy
        out[~ok] = 0.0
        return [float(v) for v in out.reshape(-1)]

    return {
        "people": [
            {
                "pose_keypoints_2d": flat(p.body) or [0.0] * (NUM_BODY * 3),
                "face_keypoints_2d": flat(p.face),
                "hand_left_keypoints_2d": flat(p.left_hand),
                "hand_right_keypoints_2d": flat(p.right_hand),
            }
            for p in people
        ],
        "canvas_width": int(width),
        "canvas_height": int(height),
        COORDINATES_KEY: "normalized" if normalized else "pixels",
    }


def frames_to_people(frames: Sequence[Mapping[str, Any]], *, what: str = "POSE_KEYPOINT",
                     ) -> list[list[Person]]:
    """Parse the frames of one sequence into pixel-space people, with the coordinate
    convention decided once for all of them (:func:`sequence_is_normalized`)."""
    normalized = sequence_is_normalized(frames)
    return [frame_to_people(f, what=f"{what} frame {t}" if len(frames) > 1 else what,
                            normalized=normalized) for t, f in enumerate(frames)]


def collapsed_frames(people: Sequence[Sequence[Person] | Person | None],
                     min_size: float = COLLAPSED_PX) -> list[int]:
    """Indices of the frames where a person with two or more confident keypoints spans less
    than ``min_size`` pixels (a collapsed person: e.g. normalised coordinates read as pixels).
    """
    out = []
    for t, found in enumerate(people):
        if found is None:
            continue
        group = [found] if isinstance(found, Person) else list(found)
        for p in group:
            pts = p.all_points()
            pts = pts[pts[:, 2] > 0, :2]
            if len(pts) >= 2 and float((pts.max(0) - pts.min(0)).max()) < min_size:
                out.append(t)
                break
    return out


def select_person(people: Sequence[Person], mode: str = "largest", index: int = 0) -> Person | None:
    """Pick one person: ``largest`` (bounding-box area of confident keypoints) or ``index``."""
    if not people:
        return None
    if mode == "index":
        if not 0 <= index < len(people):
            raise ValueError(f"person index {index} is out of range: {len(people)} people found")
        return people[index]
    if mode != "largest":
        raise ValueError(f"unknown person selection {mode!r}; use 'largest' or 'index'")

    def area(p: Person) -> float:
        box = p.bbox()
        return -1.0 if box is None else (box[2] - box[0] + 1) * (box[3] - box[1] + 1)

    return max(people, key=area)


# --------------------------------------------------------------------------------------------
# DensePose (I in 0..24; 0 = background)
# --------------------------------------------------------------------------------------------

# The 24 DensePose-COCO body parts in their index order (1..24). "Right"/"left" are the
# subject's; "front"/"back" the side of the body surface.
DENSEPOSE_PART_NAMES: tuple[str, ...] = (
    "torso_back", "torso_front", "right_hand", "left_hand", "left_foot", "right_foot",
    "upper_leg_right_back", "upper_leg_left_back", "upper_leg_right_front",
    "upper_leg_left_front", "lower_leg_right_back", "lower_leg_left_back",
    "lower_leg_right_front", "lower_leg_left_front", "upper_arm_left_front",
    "upper_arm_right_front", "upper_arm_left_back", "upper_arm_right_back",
    "lower_arm_left_front", "lower_arm_right_front", "lower_arm_left_back",
    "lower_arm_right_back", "head_right", "head_left",
)
NUM_DENSEPOSE_PARTS = len(DENSEPOSE_PART_NAMES)  # 24
DENSEPOSE_PART: Mapping[str, int] = {n: i + 1 for i, n in enumerate(DENSEPOSE_PART_NAMES)}


def _viridis_table() -> np.ndarray:
    import cv2

    ramp = np.round(np.arange(NUM_DENSEPOSE_PARTS + 1) * (255.0 / NUM_DENSEPOSE_PARTS))
    bgr = cv2.applyColorMap(ramp.astype(np.uint8).reshape(-1, 1), cv2.COLORMAP_VIRIDIS)
    return np.ascontiguousarray(bgr[:, 0, ::-1])


# Colour of each part index 0..24: viridis of I * 255/24, the DensePose hint comfyui_controlnet_aux
# draws for ControlNet (background = viridis(0) = (68, 1, 84)), so our preview can condition the
# same ControlNet models.
DENSEPOSE_COLORS: np.ndarray = _viridis_table()


def colorize_densepose(index: np.ndarray) -> np.ndarray:
    """Colour a DensePose part-index map (..., H, W) uint8 0..24 -> uint8 RGB (..., H, W, 3)."""
    return colorize_labels(index, DENSEPOSE_COLORS)
