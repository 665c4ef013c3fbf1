"""The weightless warp geometry (SPEC §4): the target's body moved part by part into a new pose.

Shared by the P2B ``warp`` backend (warps the target's PARSING) and the B2F ``warp`` backend
(warps the target's pixels). The steps:

1. :func:`retarget_skeleton`: the driver's skeleton with the TARGET's limb lengths. Starting at
   the driver's neck, each link takes the driver's direction and the target's length (times one
   global ``scale`` that only matches the two frames' sizes), chained outwards from the
   neck: torso, shoulders and hips, arms, legs, head. So a wide or short target stays wide or
   short in every driver pose (paper Fig. 6).
2. :func:`part_transforms`: one 2x3 similarity per body part (:data:`PART_NAMES`) mapping the
   target's pixels onto the retargeted skeleton.
3. :func:`assign_parts`: which part each target pixel belongs to, from its parsing label
   (a left-arm pixel can only be a left upper arm or forearm) and the nearest limb segment.
4. :func:`warp_by_parts`: any per-pixel array (labels, RGB, masks) warped part by part and
   drawn in depth order (torso, legs, arms, head, hands), each part with round "caps" around
   its joints so bent limbs leave no crack.
5. :func:`warp_parsing`: the P2B backend: 1-4 on a label map, with the hands redrawn from the
   driver's hand keypoints on top.

Coordinates are pixels; target keypoints live in the target frame, driver keypoints and all
outputs in the driver frame.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import cv2
import numpy as np

from ..core.schema import BODY, LABEL, NUM_LABELS, Person

__all__ = [
    "PART_NAMES",
    "PART_ID",
    "DEPTH_ORDER",
    "retarget_skeleton",
    "part_transforms",
    "assign_parts",
    "part_masks",
    "warp_by_parts",
    "warp_parsing",
    "paint_hands",
]

PART_NAMES: tuple[str, ...] = (
    "torso", "head", "right_upper_arm", "right_forearm", "left_upper_arm", "left_forearm",
    "right_thigh", "right_shin", "left_thigh", "left_shin", "right_hand", "left_hand",
    "right_foot", "left_foot",
)
PART_ID: dict[str, int] = {name: i + 1 for i, name in enumerate(PART_NAMES)}  # 0 = none

# Back to front. Arms after the torso and legs (dancers' arms are mostly in front), the head
# after the arms (the face is never hidden by an upper arm in the front view), hands on top.
DEPTH_ORDER: tuple[str, ...] = (
    "torso", "right_thigh", "left_thigh", "right_shin", "left_shin", "right_foot", "left_foot",
    "right_upper_arm", "left_upper_arm", "right_forearm", "left_forearm", "head",
    "right_hand", "left_hand",
)

# Part -> (joint at the parent end, joint at the child end) in the retargeted skeleton.
PART_SEGMENTS: dict[str, tuple[str, str]] = {
    "torso": ("neck", "mid_hip"),
    "head": ("neck", "head"),
    "right_upper_arm": ("right_shoulder", "right_elbow"),
    "right_forearm": ("right_elbow", "right_wrist"),
    "left_upper_arm": ("left_shoulder", "left_elbow"),
    "left_forearm": ("left_elbow", "left_wrist"),
    "right_thigh": ("right_hip", "right_knee"),
    "right_shin": ("right_knee", "right_ankle"),
    "left_thigh": ("left_hip", "left_knee"),
    "left_shin": ("left_knee", "left_ankle"),
    "right_hand": ("right_wrist", "right_hand_tip"),
    "left_hand": ("left_wrist", "left_hand_tip"),
    "right_foot": ("right_knee", "right_ankle"),
    "left_foot": ("left_knee", "left_ankle"),
}

# Which parts may own a pixel of each label (the nearest one wins).
_HEAD = ("head",)
_R_ARM = ("right_upper_arm", "right_forearm")
_L_ARM = ("left_upper_arm", "left_forearm")
_R_LEG = ("right_thigh", "right_shin")
_L_LEG = ("left_thigh", "left_shin")
_ARMS = _R_ARM + _L_ARM
_LEGS = _R_LEG + _L_LEG
LABEL_PARTS: dict[int, tuple[str, ...]] = {
    LABEL["hat"]: _HEAD, LABEL["hair"]: _HEAD, LABEL["sunglasses"]: _HEAD, LABEL["face"]: _HEAD,
    LABEL["glove"]: ("right_hand", "left_hand", "right_forearm", "left_forearm"),
    LABEL["upper_clothes"]: ("torso",) + _ARMS,
    LABEL["coat"]: ("torso",) + _ARMS + ("right_thigh", "left_thigh"),
    LABEL["dress"]: ("torso",) + _ARMS + _LEGS,
    LABEL["scarf"]: ("torso", "head"),
    LABEL["torso_skin"]: ("torso",),
    LABEL["pants"]: ("torso",) + _LEGS,
    LABEL["skirt"]: ("torso",) + _LEGS,
    LABEL["socks"]: _LEGS + ("right_foot", "left_foot"),
    LABEL["left_arm"]: _L_ARM, LABEL["right_arm"]: _R_ARM,
    LABEL["left_leg"]: _L_LEG, LABEL["right_leg"]: _R_LEG,
    LABEL["left_shoe"]: ("left_foot",), LABEL["right_shoe"]: ("right_foot",),
    LABEL["left_hand"]: ("left_hand", "left_forearm"),
    LABEL["right_hand"]: ("right_hand", "right_forearm"),
}

_THRESHOLD = 0.05


# --------------------------------------------------------------------------------------------
# Skeletons
# --------------------------------------------------------------------------------------------


def joints(person: Person, threshold: float = _THRESHOLD) -> dict[str, np.ndarray]:
    """Confident joints of a person as ``name -> (2,) float`` in pixels, plus the virtual
    joints ``mid_hip`` (between the hips), ``head`` (mean of nose, eyes and ears present),
    and ``<side>_hand_tip`` (mean of the hand's finger tips) where they can be formed."""
    out: dict[str, np.ndarray] = {}
    for name, i in BODY.items():
        if person.body[i, 2] > threshold:
            out[name] = person.body[i, :2].astype(np.float64)
    if "right_hip" in out and "left_hip" in out:
        out["mid_hip"] = (out["right_hip"] + out["left_hip"]) / 2
    if "neck" not in out and "right_shoulder" in out and "left_shoulder" in out:
        out["neck"] = (out["right_shoulder"] + out["left_shoulder"]) / 2
    for side, hand in (("right", person.right_hand), ("left", person.left_hand)):
        ok = hand[:, 2] > threshold
        tips = [k for k in (8, 12, 16, 20) if ok[k]]
        if ok[0] and tips:
            out[f"{side}_hand_root"] = hand[0, :2].astype(np.float64)
            out[f"{side}_hand_tip"] = hand[tips, :2].astype(np.float64).mean(axis=0)
    return out


def _head_point(j: Mapping[str, np.ndarray], names: Sequence[str]) -> np.ndarray | None:
    pts = [j[n] for n in names if n in j]
    return np.mean(pts, axis=0) if pts else None


_HEAD_POINTS = ("nose", "right_eye", "left_eye", "right_ear", "left_ear")

# Links of the retargeting chain, parents before children.
_CHAIN: tuple[tuple[str, str], ...] = (
    ("neck", "mid_hip"), ("neck", "right_shoulder"), ("neck", "left_shoulder"),
    ("mid_hip", "right_hip"), ("mid_hip", "left_hip"),
    ("right_shoulder", "right_elbow"), ("right_elbow", "right_wrist"),
    ("left_shoulder", "left_elbow"), ("left_elbow", "left_wrist"),
    ("right_hip", "right_knee"), ("right_knee", "right_ankle"),
    ("left_hip", "left_knee"), ("left_knee", "left_ankle"),
    ("neck", "head"),
)


def skeleton_scale(target: Person, driver: Person) -> float:
    """Driver/target size ratio used to bring the target's lengths into the driver frame.

    Measured on the torso (neck to mid-hip) when both show it, else the shoulder span, else
    the neck-to-head distance, else 1. Only one number, so the target's proportions and
    widths are kept.
    """
    jt, jd = joints(target), joints(driver)
    jt["head"] = _head_point(jt, [n for n in _HEAD_POINTS if n in jd])  # type: ignore[assignment]
    jd["head"] = _head_point(jd, [n for n in _HEAD_POINTS if n in jt])  # type: ignore[assignment]
    for a, b in (("neck", "mid_hip"), ("right_shoulder", "left_shoulder"), ("neck", "head")):
        if all(jt.get(k) is not None and jd.get(k) is not None for k in (a, b)):
            lt = float(np.hypot(*(jt[b] - jt[a])))
            ld = float(np.hypot(*(jd[b] - jd[a])))
            if lt > 1e-3 and ld > 1e-3:
                return ld / lt
    return 1.0


def retarget_skeleton(target: Person, driver: Person, scale: float | str = "auto"
                      ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], float]:
    """The driver's pose with the target's limb lengths.

    Args:
        target, driver: keypoints in pixels of their own frames.
        scale: ``"auto"`` (:func:`skeleton_scale`) or a number multiplying the target's
            lengths.
    Returns:
        (target joints, retargeted joints in the driver frame, scale). A joint is absent from
        the retargeted skeleton when the target or the driver does not show its link.
    """
    s = skeleton_scale(target, driver) if scale == "auto" else float(scale)
    jt, jd = joints(target), joints(driver)
    common_head = [n for n in _HEAD_POINTS if n in jt and n in jd]
    for j in (jt, jd):
        hp = _head_point(j, common_head)
        if hp is not None:
            j["head"] = hp
    out: dict[str, np.ndarray] = {}
    if "neck" in jd:
        out["neck"] = jd["neck"].copy()
    if "mid_hip" not in jt or "mid_hip" not in jd:
        # hips unseen (a waist-up photo): the torso axis runs perpendicular to the shoulders
        for j in (jt, jd):
            if "right_shoulder" in j and "left_shoulder" in j and "neck" in j:
                span = j["left_shoulder"] - j["right_shoulder"]
                j["mid_hip_virtual"] = j["neck"] + np.array([-span[1], span[0]]) * 1.4
    for parent, child in _CHAIN:
        if parent not in out:
            continue
        tc = jt.get(child)
        tp = jt.get(parent)
        dc, dp_ = jd.get(child), jd.get(parent)
        if tc is None or tp is None or dc is None or dp_ is None:
            continue
        d = dc - dp_
        n = float(np.hypot(*d))
        if n < 1e-6:
            continue
        out[child] = out[parent] + d / n * float(np.hypot(*(tc - tp))) * s
    for side in ("right", "left"):
        root, tip = f"{side}_hand_root", f"{side}_hand_tip"
        wrist = f"{side}_wrist"
        if all(k in jt for k in (root, tip)) and all(k in jd for k in (root, tip)):
            start = out.get(wrist, jd[root])
            d = jd[tip] - jd[root]
            n = float(np.hypot(*d))
            if n > 1e-6:
                out[f"{side}_wrist"] = start
                out[tip] = start + d / n * float(np.hypot(*(jt[tip] - jt[root]))) * s
                jt[f"{side}_wrist"] = jt[root] if wrist not in jt else jt[wrist]
    return jt, out, s


def _similarity(src_a: np.ndarray, src_b: np.ndarray, dst_a: np.ndarray, dst_b: np.ndarray
                ) -> np.ndarray:
    """2x3 rotation + uniform scale + translation taking src_a->dst_a, src_b->dst_b."""
    vs, vd = src_b - src_a, dst_b - dst_a
    ns = float(vs @ vs)
    if ns < 1e-9:
        m = np.eye(2)
    else:
        a = float(vs @ vd) / ns
        b = float(vs[0] * vd[1] - vs[1] * vd[0]) / ns
        m = np.array([[a, -b], [b, a]])
    t = dst_a - m @ src_a
    return np.concatenate([m, t[:, None]], axis=1)


def part_transforms(target: Person, driver: Person, scale: float | str = "auto"
                    ) -> dict[str, np.ndarray]:
    """Per-part 2x3 affine (similarity) transforms, TARGET pixels -> DRIVER-frame pixels.

    Args:
        target: the target's keypoints (pixels of the target frame).
        driver: the driver's keypoints for one frame (pixels of the driver frame).
        scale: see :func:`retarget_skeleton`.
    Returns:
        ``{part name: (2, 3) float64}`` for every part of :data:`PART_NAMES` that both the
        target and the driver show (use with ``cv2.warpAffine(src, M, (W, H))``). A hand
        without hand keypoints follows its forearm; a foot follows its shin.
    """
    jt, jr, _ = retarget_skeleton(target, driver, scale)
    out: dict[str, np.ndarray] = {}
    for part, (a, b) in PART_SEGMENTS.items():
        if all(k in jt for k in (a, b)) and all(k in jr for k in (a, b)):
            out[part] = _similarity(jt[a], jt[b], jr[a], jr[b])
    if "torso" not in out:  # no hips in one of them: the shoulder line carries the torso
        a, b = "right_shoulder", "left_shoulder"
        if all(k in jt for k in (a, b)) and all(k in jr for k in (a, b)):
            out["torso"] = _similarity(jt[a], jt[b], jr[a], jr[b])
    for side in ("right", "left"):
        if f"{side}_hand" not in out and f"{side}_forearm" in out:
            out[f"{side}_hand"] = out[f"{side}_forearm"]
    return out


# --------------------------------------------------------------------------------------------
# Part assignment
# --------------------------------------------------------------------------------------------


def _segment_distance(px: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    d = b - a
    n2 = float(d @ d)
    if n2 < 1e-9:
        return np.hypot(px[:, 0] - a[0], px[:, 1] - a[1])
    t = np.clip(((px - a) @ d) / n2, 0.0, 1.0)
    proj = a + t[:, None] * d
    return np.hypot(px[:, 0] - proj[:, 0], px[:, 1] - proj[:, 1])


def _part_geometry(person: Person) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Each part's axis segment in the person's frame (for parts its keypoints show)."""
    j = joints(person)
    hp = _head_point(j, _HEAD_POINTS)
    if hp is not None:
        j["head"] = hp
    if "mid_hip" not in j and "right_shoulder" in j and "left_shoulder" in j and "neck" in j:
        span = j["left_shoulder"] - j["right_shoulder"]
        j["mid_hip"] = j["neck"] + np.array([-span[1], span[0]]) * 1.4
    for side in ("right", "left"):
        if f"{side}_hand_tip" not in j and f"{side}_wrist" in j and f"{side}_elbow" in j:
            j[f"{side}_hand_tip"] = j[f"{side}_wrist"] + 0.45 * (j[f"{side}_wrist"]
                                                                  - j[f"{side}_elbow"])
        if f"{side}_wrist" not in j and f"{side}_hand_root" in j:
            j[f"{side}_wrist"] = j[f"{side}_hand_root"]
    geo: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for part, (a, b) in PART_SEGMENTS.items():
        if part.endswith("_foot"):
            side = part.split("_")[0]
            a, b = f"{side}_ankle", f"{side}_ankle"
        if a in j and b in j:
            geo[part] = (j[a], j[b])
    if "head" not in geo and "head" in j:
        geo["head"] = (j["head"], j["head"])
    return geo


def assign_parts(labels: np.ndarray, person: Person) -> np.ndarray:
    """Which body part each person pixel belongs to.

    Args:
        labels: uint8 (H, W) parsing in the 22-label schema.
        person: that image's keypoints in pixels.
    Returns:
        uint8 (H, W): 0 for background, else ``PART_ID[name]``. A pixel goes to the nearest
        (point-to-segment distance) of the parts its label allows (:data:`LABEL_PARTS`); the
        torso counts as distance 0 inside its shoulder-hip quadrilateral, so shirt pixels on
        the chest stay with the torso and sleeve pixels go with the arm. Labels whose parts
        the keypoints do not show fall back to the nearest part shown.
    Raises:
        ValueError: labels outside the schema, or no body keypoints.
    """
    labels = np.asarray(labels)
    if labels.ndim != 2:
        raise ValueError(f"labels must be (H, W), got shape {labels.shape}")
    if labels.size and int(labels.max()) >= NUM_LABELS:
        raise ValueError(f"label {int(labels.max())} is outside the {NUM_LABELS}-label schema")
    geo = _part_geometry(person)
    if not geo:
        raise ValueError("the person has no usable body keypoints to assign parts from")
    h, w = labels.shape
    out = np.zeros((h, w), np.uint8)
    ys, xs = np.nonzero(labels)
    if len(ys) == 0:
        return out
    px = np.stack([xs, ys], axis=1).astype(np.float64)
    lab = labels[ys, xs]
    names = [p for p in PART_NAMES if p in geo]
    dist = np.empty((len(names), len(px)), np.float64)
    j = joints(person)
    quad = None
    if all(k in j for k in ("right_shoulder", "left_shoulder")):
        rh = j.get("right_hip")
        lh = j.get("left_hip")
        if rh is None or lh is None:
            a, b = geo["torso"] if "torso" in geo else (j["neck"], j["neck"])
            rh = j["right_shoulder"] + (b - a)
            lh = j["left_shoulder"] + (b - a)
        quad = np.array([j["right_shoulder"], j["left_shoulder"], lh, rh], np.float32)
    for k, name in enumerate(names):
        a, b = geo[name]
        if name == "torso" and quad is not None:
            # distance to the shoulder-hip quadrilateral, 0 inside it
            q = quad.astype(np.float64)
            dist[k] = np.min([_segment_distance(px, q[i], q[(i + 1) % 4]) for i in range(4)],
                             axis=0)
            dist[k][_inside_convex(px, quad)] = 0.0
        else:
            dist[k] = _segment_distance(px, a, b)
    allowed = np.zeros((NUM_LABELS, len(names)), bool)
    for lid in range(1, NUM_LABELS):
        allowed[lid] = [n in LABEL_PARTS.get(lid, ()) for n in names]
        if not allowed[lid].any():
            allowed[lid] = True  # the label's own parts are not shown: nearest part shown
    big = np.where(allowed[lab].T, 0.0, 1e12)
    best = np.argmin(dist + big, axis=0)
    ids = np.array([PART_ID[n] for n in names], np.uint8)
    out[ys, xs] = ids[best]
    return out


SOURCE_MIN_SIDE = 512  # never reduce a target below this larger side


def limit_source(labels: np.ndarray, person: Person, out_hw: tuple[int, int],
                 image: np.ndarray | None = None, min_side: int = SOURCE_MIN_SIDE,
                 ) -> tuple[np.ndarray, Person, np.ndarray | None]:
    """Reduce a target much larger than the output frames before warping it.

    The warp backends move the target's own pixels into (H, W) driver frames; a source whose
    larger side exceeds the frame's larger side (or ``min_side``) adds no detail, but the
    per-target part assignment and every per-frame warp cost grow with its pixel count (a
    3000x4000 photo: ~20 s per assignment). The parsing is resized nearest, the image with
    area averaging, the keypoints scaled alike; smaller targets come back unchanged.

    Args:
        labels: uint8 (h, w) target parsing; person: its keypoints in pixels.
        out_hw: the output frame size (H, W); image: optional uint8 (h, w, 3) target photo.
    Returns:
        (labels, person, image), reduced together when needed.
    """
    h, w = labels.shape[:2]
    limit = max(int(min_side), int(max(out_hw)))
    if max(h, w) <= limit:
        return labels, person, image
    s = limit / float(max(h, w))
    nw, nh = max(1, round(w * s)), max(1, round(h * s))
    small = cv2.resize(labels, (nw, nh), interpolation=cv2.INTER_NEAREST)
    if image is not None:
        image = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA)
    return small, person.scaled(nw / w, nh / h), image


def _inside_convex(px: np.ndarray, poly: np.ndarray) -> np.ndarray:
    """Points inside a convex polygon (either winding)."""
    signs = []
    for i in range(len(poly)):
        a, b = poly[i].astype(np.float64), poly[(i + 1) % len(poly)].astype(np.float64)
        signs.append((b[0] - a[0]) * (px[:, 1] - a[1]) - (b[1] - a[1]) * (px[:, 0] - a[0]))
    s = np.stack(signs)
    return (s >= 0).all(axis=0) | (s <= 0).all(axis=0)


# --------------------------------------------------------------------------------------------
# Warping
# --------------------------------------------------------------------------------------------


def _cap_radius(part_mask: np.ndarray, a: np.ndarray, b: np.ndarray) -> float:
    ys, xs = np.nonzero(part_mask)
    if len(ys) < 4:
        return 0.0
    d = _segment_distance(np.stack([xs, ys], axis=1).astype(np.float64), a, b)
    # the limb's half thickness, but never more than half its length (a short, wide sleeve
    # must not drag a disc of the torso along with it)
    return float(min(np.percentile(d, 80), 0.5 * float(np.hypot(*(b - a)))))


def part_masks(part_map: np.ndarray, person: Person | None = None
               ) -> dict[str, np.ndarray]:
    """The source pixels each part carries: its own pixels plus, when ``person`` is given, the
    person pixels within its cap radius of its two joints (so a bent elbow or knee leaves no
    crack). Computed once per target and reused for every driver frame.

    Returns:
        ``{part name: bool (H, W)}`` for the parts present in ``part_map``.
    """
    geo = _part_geometry(person) if person is not None else {}
    fg = part_map > 0
    yy, xx = np.nonzero(fg)
    pts = np.stack([xx, yy], axis=1).astype(np.float64)
    out: dict[str, np.ndarray] = {}
    for name in PART_NAMES:
        mask = part_map == PART_ID[name]
        if not mask.any():
            continue
        if name in geo and name not in ("torso", "head"):
            a, b = geo[name]
            r = _cap_radius(mask, a, b)
            if r > 0:
                near = (np.hypot(pts[:, 0] - a[0], pts[:, 1] - a[1]) < r) | \
                       (np.hypot(pts[:, 0] - b[0], pts[:, 1] - b[1]) < r)
                mask = mask.copy()
                mask[yy[near], xx[near]] = True
        out[name] = mask
    return out


def warp_by_parts(array: np.ndarray, part_map: np.ndarray, transforms: Mapping[str, np.ndarray],
                  out_hw: tuple[int, int], *, person: Person | None = None,
                  masks: Mapping[str, np.ndarray] | None = None,
                  order: Sequence[str] = DEPTH_ORDER, nearest: bool = True
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Warp any per-pixel array part by part and composite the parts in depth order.

    Args:
        array: (H, W) or (H, W, C) array of the TARGET frame (labels, RGB, mask ...).
        part_map: uint8 (H, W) from :func:`assign_parts`.
        transforms: from :func:`part_transforms` (parts missing there are not drawn).
        out_hw: (height, width) of the output (driver) frame.
        person: the target's keypoints: limbs then also carry the pixels around their joints
            (see :func:`part_masks`).
        masks: precomputed :func:`part_masks` (a video: compute once, pass every frame).
        nearest: nearest-neighbour sampling (labels) or bilinear (images).
    Returns:
        (warped array (out_h, out_w[, C]) of array's dtype, zeros where nothing lands;
        uint8 (out_h, out_w) map of the part id drawn at each pixel, 0 = none).
    """
    array = np.asarray(array)
    if array.shape[:2] != part_map.shape:
        raise ValueError(f"array {array.shape[:2]} and part map {part_map.shape} differ in size")
    if masks is None:
        masks = part_masks(part_map, person)
    oh, ow = int(out_hw[0]), int(out_hw[1])
    out = np.zeros((oh, ow) + array.shape[2:], array.dtype)
    drawn = np.zeros((oh, ow), np.uint8)
    interp = cv2.INTER_NEAREST if nearest else cv2.INTER_LINEAR
    work = array if array.dtype != np.bool_ else array.astype(np.uint8)
    if work.dtype == np.float64:
        work = work.astype(np.float32)
    channels = work.shape[2] if work.ndim == 3 else 1
    for name in order:
        m_aff = transforms.get(name)
        mask = masks.get(name)
        if m_aff is None or mask is None:
            continue
        wm = cv2.warpAffine(mask.astype(np.uint8), m_aff, (ow, oh), flags=cv2.INTER_NEAREST,
                            borderMode=cv2.BORDER_CONSTANT, borderValue=0) > 0
        if not wm.any():
            continue
        if channels <= 4:
            wa = cv2.warpAffine(work, m_aff, (ow, oh), flags=interp,
                                borderMode=cv2.BORDER_REPLICATE)
        else:
            wa = np.stack([cv2.warpAffine(np.ascontiguousarray(work[..., c]), m_aff, (ow, oh),
                                          flags=interp, borderMode=cv2.BORDER_REPLICATE)
                           for c in range(channels)], axis=-1)
        if wa.ndim == 2 and out.ndim == 3:
            wa = wa[..., None]
        out[wm] = wa[wm].astype(out.dtype)
        drawn[wm] = PART_ID[name]
    return out, drawn


def paint_hands(labels: np.ndarray, person: Person, *, pad: float | None = None,
                sides: Sequence[str] = ("left", "right"), threshold: float = _THRESHOLD
                ) -> np.ndarray:
    """Draw hand labels (20 left, 21 right) from hand keypoints, in place and returned.

    Each hand is the convex hull of its confident keypoints grown by ``pad`` pixels (default:
    12% of the wrist-to-fingertip length). Hands with fewer than 5 keypoints are skipped.
    """
    for side in sides:
        hand = person.left_hand if side == "left" else person.right_hand
        ok = hand[:, 2] > threshold
        if ok.sum() < 5:
            continue
        pts = hand[ok, :2].astype(np.float32)
        span = float(np.hypot(*(pts.max(axis=0) - pts.min(axis=0))))
        p = pad if pad is not None else max(1.0, 0.12 * span)
        hull = cv2.convexHull(pts).reshape(-1, 2).astype(np.float64)
        c = hull.mean(axis=0)
        d = hull - c
        n = np.maximum(np.hypot(d[:, 0], d[:, 1]), 1e-6)[:, None]
        grown = hull + d / n * p
        cv2.fillPoly(labels, [np.round(grown * 16).astype(np.int32)],
                     int(LABEL[f"{side}_hand"]), lineType=cv2.LINE_8, shift=4)
    return labels


def warp_parsing(labels: np.ndarray, target_person: Person, driver_person: Person,
                 out_hw: tuple[int, int], *, scale: float | str = "auto",
                 hands_from_keypoints: bool = True, part_map: np.ndarray | None = None,
                 masks: Mapping[str, np.ndarray] | None = None) -> np.ndarray:
    """The P2B warp backend: the target's parsing in the driver's pose, body shape kept.

    Args:
        labels: uint8 (H, W) target parsing (22-label schema).
        target_person: the target's keypoints (pixels of ``labels``).
        driver_person: one driver frame's keypoints (pixels of the output frame).
        out_hw: (height, width) of the driver frame.
        scale: ``"auto"`` matches the frames' sizes on the torso length (see
            :func:`skeleton_scale`), or a number.
        hands_from_keypoints: redraw labels 20/21 from the driver's hand keypoints, for hands
            the target shows.
        part_map, masks: :func:`assign_parts` / :func:`part_masks` of the target, computed
            once for a whole driver video (computed here when None).
    Returns:
        uint8 (out_h, out_w) labels. Parts the target does not show (the legs of a waist-up
        photo) or the driver does not show stay absent.
    """
    if part_map is None:
        part_map = assign_parts(labels, target_person)
    tf = part_transforms(target_person, driver_person, scale)
    out, _ = warp_by_parts(labels.astype(np.uint8), part_map, tf, out_hw, person=target_person,
                           masks=masks, nearest=True)
    if hands_from_keypoints:
        shown = [side for side in ("left", "right")
                 if (labels == LABEL[f"{side}_hand"]).any() and f"{side}_forearm" in tf]
        if shown:
            s = skeleton_scale(target_person, driver_person) if scale == "auto" else float(scale)
            pad = _hand_pad(labels, target_person, s)
            paint_hands(out, driver_person, pad=pad, sides=shown)
    return out


def _hand_pad(labels: np.ndarray, person: Person, scale: float) -> float | None:
    """The target's hand thickness beyond its keypoints (pixels, times ``scale``)."""
    pads = []
    for side, hand in (("left", person.left_hand), ("right", person.right_hand)):
        ok = hand[:, 2] > _THRESHOLD
        m = labels == LABEL[f"{side}_hand"]
        if ok.sum() < 5 or not m.any():
            continue
        pts = hand[ok, :2]
        ys, xs = np.nonzero(m)
        # how far hand pixels reach beyond the keypoints: the distance of hand pixels to the
        # nearest keypoint (per-pixel min over at most 21 points)
        d = np.min(np.hypot(xs[:, None] - pts[None, :, 0], ys[:, None] - pts[None, :, 1]),
                   axis=1)
        pads.append(float(np.percentile(d, 90)))
    if not pads:
        return None
    return max(1.0, float(np.mean(pads)) * scale * 0.8)


def torso_width(mask: np.ndarray, person: Person) -> float:
    """Median width (pixels) of ``mask`` across the middle third of the torso, measured
    perpendicular to the neck-to-mid-hip axis of ``person`` (extent of the mask along each
    perpendicular line). Used to check that warping keeps a body's width (paper Fig. 6).

    Args:
        mask: bool (H, W), e.g. the torso part of :func:`assign_parts` or :func:`warp_by_parts`.
    """
    j = joints(person)
    if "neck" not in j or "mid_hip" not in j:
        raise ValueError("torso_width needs the neck and both hips")
    a, b = j["neck"], j["mid_hip"]
    axis = (b - a) / (np.hypot(*(b - a)) + 1e-9)
    perp = np.array([axis[1], -axis[0]])
    h, w = mask.shape
    ts = np.arange(-float(max(h, w)), float(max(h, w)), 0.5)
    widths = []
    for t in np.linspace(0.35, 0.65, 7):
        pts = a + (b - a) * t + ts[:, None] * perp
        xi, yi = np.round(pts[:, 0]).astype(int), np.round(pts[:, 1]).astype(int)
        ok = (xi >= 0) & (xi < w) & (yi >= 0) & (yi < h)
        hit = np.zeros(len(ts), bool)
        hit[ok] = mask[yi[ok], xi[ok]]
        if hit.any():
            idx = np.nonzero(hit)[0]
            widths.append(ts[idx[-1]] - ts[idx[0]])
    return float(np.median(widths)) if widths else 0.0


def person_from_joints(j: Mapping[str, np.ndarray]) -> Person:
    """A :class:`Person` whose body keypoints are the named joints of ``j`` (others missing)."""
    body = np.zeros((len(BODY), 3), np.float32)
    for name, i in BODY.items():
        if name in j:
            body[i] = (float(j[name][0]), float(j[name][1]), 1.0)
    return Person(body=body)


def angle_between(a: np.ndarray, b: np.ndarray) -> float:
    """Unsigned angle (radians) between two 2D vectors."""
    na, nb = float(np.hypot(*a)), float(np.hypot(*b))
    if na < 1e-9 or nb < 1e-9:
        return 0.0
    return math.acos(max(-1.0, min(1.0, float(a @ b) / (na * nb))))
