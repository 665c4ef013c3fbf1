"""Weightless renderer v2: one continuous skinned mesh of the target's body (SPEC §4).

The P2B ``warp`` backend (the target's parsing in the driver's pose) and the B2F ``warp``
backend (the target's pixels and mask in that pose) both render THIS deformation, so labels,
pixels and mask always agree. Per target photo (once, :meth:`BodyRig.build`):

1. every person pixel gets a body part from its parsing label and the nearest bone
   (:func:`.warp.assign_parts`); parts are grouped into five layers: torso+head, each arm,
   each leg. A limb layer also carries a band of torso pixels around its root joint
   (shoulder / hip), skinned to the torso, so the limb stays attached;
2. each layer gets a triangle mesh: contour points of its (slightly grown) mask plus an
   interior grid, Delaunay-triangulated (scipy) and clipped to the mask;
3. every vertex is skinned to the bones its layer may follow (an arm vertex only to the torso
   root, upper arm, forearm and hand), with inverse-distance weights that blend smoothly
   across each joint;
4. each layer's texture is the photo with the parsing edge pulled inwards (the 2 px fringe
   where background colours leak into the person is replaced by inner colours); the torso
   layer's texture is completed under the arms that covered it in the photo, from torso
   labels only.
5. a leg the photo cuts off at the hip (no ankle, and the photo ends less than half a torso
   below the hip: a waist-up or seated close-up) is left out (:func:`_legs_cut_off`): the
   few pixels below its hip are a thigh stub or whatever lies in the lap, and posed as a leg
   they hang from the body as loose pieces.

Per driver frame (:meth:`BodyRig.render`): the driver's skeleton with the target's limb
lengths at ONE clip-level scale (:func:`clip_scales`, robust to crouches and bends) gives a
similarity per bone; linear blend skinning poses the vertices; triangles are rasterised into
an id map in a per-frame depth order (arms behind the torso in a back view); every output pixel
maps back to the photo through its triangle's affine map (backward mapping, barycentric), and
the layers' textures, masks (bilinear) and labels (nearest) are sampled with
``torch.nn.functional.grid_sample`` on the chosen device. Hands the photo does not show are
drawn from the driver's hand keypoints as a shaped hand (palm + finger capsules) in the target's
skin tone.

Coordinates are pixels: target keypoints in the photo, driver keypoints and outputs in the
driver frame.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from scipy.spatial import Delaunay

from ..core.schema import LABEL, NUM_LABELS, Person
from .b2f_warp import WarpFrame, fill_from_same_label, nearest_fill
from .warp import (
    _HEAD_POINTS,
    PART_ID,
    _head_point,
    _segment_distance,
    _similarity,
    assign_parts,
    joints,
    retarget_skeleton,
)

logger = logging.getLogger(__name__)

__all__ = [
    "complete_limbs",
    "warp_parsing_mesh",
    "warp_frame_mesh",
    "LAYERS",
    "BONES",
    "Layer",
    "BodyRig",
    "MeshRender",
    "bone_lengths",
    "frame_scale",
    "clip_scales",
    "build_layer_mesh",
    "skinning_weights",
    "rasterize_triangles",
    "layer_order",
    "draw_hand",
    "describe_legs_left_out",
]

# Layers, back to front in a front view; each names the parts it carries.
LAYERS: dict[str, tuple[str, ...]] = {
    "right_leg": ("right_thigh", "right_shin", "right_foot"),
    "left_leg": ("left_thigh", "left_shin", "left_foot"),
    "torso": ("torso", "head"),
    "right_arm": ("right_upper_arm", "right_forearm", "right_hand"),
    "left_arm": ("left_upper_arm", "left_forearm", "left_hand"),
}
LAYER_NAMES: tuple[str, ...] = tuple(LAYERS)

# Bones: name -> (joint a, joint b) in the skeleton of :func:`_rig_joints`. "*_root" bones are
# short stubs inside the torso at a limb's root; they follow the torso's transform.
BONES: dict[str, tuple[str, str]] = {
    "torso": ("neck", "mid_hip"),
    "head": ("head_base", "head"),
    "right_arm_root": ("right_shoulder", "right_shoulder_in"),
    "right_upper_arm": ("right_shoulder", "right_elbow"),
    "right_forearm": ("right_elbow", "right_wrist"),
    "right_hand": ("right_wrist", "right_hand_tip"),
    "left_arm_root": ("left_shoulder", "left_shoulder_in"),
    "left_upper_arm": ("left_shoulder", "left_elbow"),
    "left_forearm": ("left_elbow", "left_wrist"),
    "left_hand": ("left_wrist", "left_hand_tip"),
    "right_leg_root": ("right_hip", "right_hip_in"),
    "right_thigh": ("right_hip", "right_knee"),
    "right_shin": ("right_knee", "right_ankle"),
    "left_leg_root": ("left_hip", "left_hip_in"),
    "left_thigh": ("left_hip", "left_knee"),
    "left_shin": ("left_knee", "left_ankle"),
}
BONE_NAMES: tuple[str, ...] = tuple(BONES)
BONE_INDEX: dict[str, int] = {b: i for i, b in enumerate(BONE_NAMES)}

LAYER_BONES: dict[str, tuple[str, ...]] = {
    "torso": ("torso", "head"),
    "right_arm": ("right_arm_root", "right_upper_arm", "right_forearm", "right_hand"),
    "left_arm": ("left_arm_root", "left_upper_arm", "left_forearm", "left_hand"),
    "right_leg": ("right_leg_root", "right_thigh", "right_shin"),
    "left_leg": ("left_leg_root", "left_thigh", "left_shin"),
}

# When the driver (or the target) lacks a bone, it follows this parent.
BONE_PARENT: dict[str, str] = {
    "head": "torso",
    "right_arm_root": "torso", "right_upper_arm": "right_arm_root",
    "right_forearm": "right_upper_arm", "right_hand": "right_forearm",
    "left_arm_root": "torso", "left_upper_arm": "left_arm_root",
    "left_forearm": "left_upper_arm", "left_hand": "left_forearm",
    "right_leg_root": "torso", "right_thigh": "right_leg_root", "right_shin": "right_thigh",
    "left_leg_root": "torso", "left_thigh": "left_leg_root", "left_shin": "left_thigh",
}

# Links whose driver/target length ratio estimates the body scale (:func:`frame_scale`).
SCALE_LINKS: tuple[tuple[str, str], ...] = (
    ("neck", "mid_hip"), ("right_shoulder", "left_shoulder"), ("right_hip", "left_hip"),
    ("right_shoulder", "right_elbow"), ("right_elbow", "right_wrist"),
    ("left_shoulder", "left_elbow"), ("left_elbow", "left_wrist"),
    ("right_hip", "right_knee"), ("right_knee", "right_ankle"),
    ("left_hip", "left_knee"), ("left_knee", "left_ankle"), ("neck", "head"),
)

_HAND_LABELS = {"right": LABEL["right_hand"], "left": LABEL["left_hand"]}
_LOOSE_LABELS = (LABEL["dress"], LABEL["skirt"], LABEL["coat"])
_SKIRT_BONES = ("torso", "right_thigh", "left_thigh")
_SKIN_LABELS = (LABEL["face"], LABEL["left_arm"], LABEL["right_arm"], LABEL["torso_skin"])


# --------------------------------------------------------------------------------------------
# Scale
# --------------------------------------------------------------------------------------------


def _with_head(person: Person) -> dict[str, np.ndarray]:
    j = joints(person)
    hp = _head_point(j, _HEAD_POINTS)
    if hp is not None:
        j["head"] = hp
    return j


def bone_lengths(person: Person) -> dict[tuple[str, str], float]:
    """Lengths (px) of the :data:`SCALE_LINKS` a person's keypoints show."""
    j = _with_head(person)
    out = {}
    for a, b in SCALE_LINKS:
        if a in j and b in j:
            n = float(np.hypot(*(j[b] - j[a])))
            if n > 1e-3:
                out[(a, b)] = n
    return out


def frame_scale(target: Person, driver: Person) -> float | None:
    """One frame's driver/target size ratio, robust to foreshortening.

    A bone seen end-on (a crouch foreshortens the torso and thighs, a turn the shoulder span)
    only ever looks SHORTER, and such bones are a minority of the twelve links in any pose: the
    ratio is the median of the per-link length ratios, not the torso's alone (with fewer than
    three links, the largest). None when no link is shown by both.
    """
    lt, ld = bone_lengths(target), bone_lengths(driver)
    ratios = [ld[k] / lt[k] for k in lt if k in ld]
    if not ratios:
        return None
    if len(ratios) < 3:
        return float(max(ratios))
    return float(np.median(ratios))


def clip_scales(target: Person, drivers: Sequence[Person | None], *, window: int = 49,
                smooth: float = 8.0) -> np.ndarray:
    """One body scale per driver frame that changes only slowly.

    Args:
        target: the target's keypoints; drivers: one person (or None) per driver frame.
        window: frames of the running median over the per-frame ratios (about 2 s at 24 fps):
            a crouch or bend shorter than that does not shrink the person.
        smooth: Gaussian sigma (frames) applied after the median, for slow real changes
            (the driver walking towards the camera).
    Returns:
        float64 (N,) scales (target px -> driver px). Frames without a usable driver take the
        nearest estimate; a clip with none gives ones.
    """
    n = len(drivers)
    raw = np.full(n, np.nan)
    for i, d in enumerate(drivers):
        if d is not None:
            s = frame_scale(target, d)
            if s is not None and math.isfinite(s) and s > 0:
                raw[i] = s
    ok = np.isfinite(raw)
    if not ok.any():
        return np.ones(n)
    idx = np.arange(n)
    raw = np.interp(idx, idx[ok], raw[ok])
    half = max(0, int(window) // 2)
    med = np.array([np.median(raw[max(0, i - half):i + half + 1]) for i in range(n)])
    if smooth > 0 and n > 1:
        r = int(3 * smooth)
        k = np.exp(-0.5 * (np.arange(-r, r + 1) / smooth) ** 2)
        padded = np.pad(med, r, mode="edge")
        med = np.convolve(padded, k / k.sum(), mode="valid")
    return med


# --------------------------------------------------------------------------------------------
# Skeletons and bone transforms
# --------------------------------------------------------------------------------------------


_MIDDLE_JOINTS = (("right_shoulder", "right_elbow", "right_wrist"),
                  ("left_shoulder", "left_elbow", "left_wrist"),
                  ("right_hip", "right_knee", "right_ankle"),
                  ("left_hip", "left_knee", "left_ankle"))


def complete_limbs(person: Person, threshold: float = 0.05) -> Person:
    """A copy with a missing elbow or knee placed midway between its limb's two ends when
    both are shown (a detector often drops a joint hidden in a fold or behind the body; without
    it the whole limb could not follow the driver)."""
    from ..core.schema import BODY

    body = person.body.copy()
    for a, m, b in _MIDDLE_JOINTS:
        ia, im, ib = BODY[a], BODY[m], BODY[b]
        if body[im, 2] <= threshold and body[ia, 2] > threshold and body[ib, 2] > threshold:
            body[im, :2] = (body[ia, :2] + body[ib, :2]) / 2
            body[im, 2] = 2 * threshold
    return Person(body=body, face=person.face, left_hand=person.left_hand,
                  right_hand=person.right_hand)


def _rig_joints(j: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Add the rig's virtual joints: a virtual mid-hip for a waist-up body, the head base,
    the limb-root stubs (towards the body's centre) and the hand tips."""
    j = dict(j)
    if "mid_hip" not in j and "right_shoulder" in j and "left_shoulder" in j and "neck" in j:
        span = j["left_shoulder"] - j["right_shoulder"]
        # perpendicular to the shoulders, pointing away from the head
        down = np.array([-span[1], span[0]])
        if "head" in j and float(down @ (j["head"] - j["neck"])) > 0:
            down = -down
        j["mid_hip"] = j["neck"] + down * 1.4
    if "neck" in j and "head" in j:
        j["head_base"] = j["neck"] + 0.45 * (j["head"] - j["neck"])
    for side in ("right", "left"):
        if f"{side}_shoulder" in j and "neck" in j:
            j[f"{side}_shoulder_in"] = j[f"{side}_shoulder"] + 0.6 * (j["neck"]
                                                                     - j[f"{side}_shoulder"])
        if f"{side}_hip" in j and "mid_hip" in j:
            j[f"{side}_hip_in"] = j[f"{side}_hip"] + 0.6 * (j["mid_hip"] - j[f"{side}_hip"])
        tip = f"{side}_hand_tip"
        if tip not in j and f"{side}_wrist" in j and f"{side}_elbow" in j:
            j[tip] = j[f"{side}_wrist"] + 0.45 * (j[f"{side}_wrist"] - j[f"{side}_elbow"])
    return j


def _lsq_similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares 2x3 similarity (no reflection) taking points src (N, 2) to dst (N, 2)."""
    if len(src) == 2:
        return _similarity(src[0], src[1], dst[0], dst[1])
    ms, md = src.mean(0), dst.mean(0)
    s, d = src - ms, dst - md
    var = float((s ** 2).sum())
    if var < 1e-9:
        return np.array([[1.0, 0, md[0] - ms[0]], [0, 1.0, md[1] - ms[1]]])
    a = float((s * d).sum()) / var
    b = float((s[:, 0] * d[:, 1] - s[:, 1] * d[:, 0]).sum()) / var
    m = np.array([[a, -b], [b, a]])
    return np.concatenate([m, (md - m @ ms)[:, None]], axis=1)


_TORSO_FIT = ("neck", "mid_hip", "right_shoulder", "left_shoulder", "right_hip", "left_hip")


def bone_transforms(rest: Mapping[str, np.ndarray], posed: Mapping[str, np.ndarray]
                    ) -> np.ndarray:
    """(len(BONES), 2, 3) similarities, rest (target photo) -> posed (driver frame) pixels.

    The torso is a least-squares fit over its joints both skeletons show; every other bone maps
    its two joints. A bone either skeleton lacks follows its parent (:data:`BONE_PARENT`), so
    a limb the driver does not show stays attached, bent as in the photo.
    """
    out = np.zeros((len(BONE_NAMES), 2, 3))
    have = np.zeros(len(BONE_NAMES), bool)
    common = [k for k in _TORSO_FIT if k in rest and k in posed]
    if len(common) >= 2:
        out[0] = _lsq_similarity(np.array([rest[k] for k in common]),
                                 np.array([posed[k] for k in common]))
    else:
        out[0] = np.array([[1.0, 0, 0], [0, 1.0, 0]])
    have[0] = True
    for i, name in enumerate(BONE_NAMES[1:], start=1):
        if name.endswith("_root"):
            out[i] = out[0]
            have[i] = True
            continue
        a, b = BONES[name]
        if all(k in rest and k in posed for k in (a, b)):
            out[i] = _similarity(rest[a], rest[b], posed[a], posed[b])
            have[i] = True
    for i, name in enumerate(BONE_NAMES):
        if not have[i]:
            p = BONE_PARENT[name]
            while not have[BONE_INDEX[p]]:
                p = BONE_PARENT[p]
            out[i] = out[BONE_INDEX[p]]
            have[i] = True
    return out


def posed_skeleton(target: Person, driver: Person, scale: float
                   ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """(rest joints of the target, retargeted joints in the driver frame), both with the
    rig's virtual joints (:func:`_rig_joints`)."""
    target, driver = complete_limbs(target), complete_limbs(driver)
    jt, jr, _ = retarget_skeleton(target, driver, float(scale))
    jt = _rig_joints(jt)
    jd = _rig_joints(_with_head(driver))
    if "mid_hip" not in jr and "neck" in jr and "mid_hip" in jt and "neck" in jt:
        # a waist-up target (virtual hips) on any driver: the torso axis from the driver
        d = jd["mid_hip"] - jd["neck"] if "mid_hip" in jd else None
        if d is not None and float(np.hypot(*d)) > 1e-6:
            length = float(np.hypot(*(jt["mid_hip"] - jt["neck"]))) * scale
            jr["mid_hip"] = jr["neck"] + d / float(np.hypot(*d)) * length
    if "head" not in jr and "neck" in jr and "head" in jt and "head" in jd and "neck" in jd:
        d = jd["head"] - jd["neck"]
        if float(np.hypot(*d)) > 1e-6:
            length = float(np.hypot(*(jt["head"] - jt["neck"]))) * scale
            jr["head"] = jr["neck"] + d / float(np.hypot(*d)) * length
    jr = _rig_joints(jr)
    return jt, jr


# --------------------------------------------------------------------------------------------
# Mesh
# --------------------------------------------------------------------------------------------


def build_layer_mesh(mask: np.ndarray, *, contour_step: float, interior_step: float,
                     extra_points: np.ndarray | None = None, grow: int = 2
                     ) -> tuple[np.ndarray, np.ndarray]:
    """A triangle mesh covering a binary mask.

    Args:
        mask: bool (H, W).
        contour_step: spacing (px) of points along the contour of the mask grown by ``grow``.
        interior_step: spacing (px) of the interior grid.
        extra_points: optional (K, 2) points to include (joints), kept only inside the mask.
    Returns:
        (vertices float32 (V, 2) as x, y; triangles int32 (T, 3)). Triangles whose centroid or
        any edge midpoint falls outside the grown mask are dropped (no bridges across the
        gap between two limbs). Empty arrays when the mask is empty.
    """
    m = mask.astype(np.uint8)
    if grow > 0:
        k = 2 * grow + 1
        m = cv2.dilate(m, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
    if not m.any():
        return np.zeros((0, 2), np.float32), np.zeros((0, 3), np.int32)
    h, w = m.shape
    contours, _ = cv2.findContours(m, cv2.RETR_LIST, cv2.CHAIN_APPROX_NONE)
    pts: list[np.ndarray] = []
    for c in contours:
        c = c.reshape(-1, 2).astype(np.float32)
        if len(c) < 3:
            continue
        seg = np.hypot(*np.diff(np.vstack([c, c[:1]]), axis=0).T)
        arc = np.concatenate([[0.0], np.cumsum(seg)])
        n = max(3, int(arc[-1] / max(1.0, contour_step)))
        at = np.linspace(0, arc[-1], n, endpoint=False)
        idx = np.clip(np.searchsorted(arc, at, side="right") - 1, 0, len(c) - 1)
        pts.append(c[idx])
    ys, xs = np.nonzero(m)
    y0, y1, x0, x1 = ys.min(), ys.max(), xs.min(), xs.max()
    gy, gx = np.mgrid[y0:y1 + 1:interior_step, x0:x1 + 1:interior_step]
    gx = np.round(gx.ravel() + interior_step / 2).astype(int)
    gy = np.round(gy.ravel() + interior_step / 2).astype(int)
    inner = cv2.erode(m, np.ones((3, 3), np.uint8), iterations=max(1, int(contour_step // 2)))
    ok = (gx < w) & (gy < h)
    gx, gy = gx[ok], gy[ok]
    ok = inner[gy, gx] > 0
    pts.append(np.stack([gx[ok], gy[ok]], 1).astype(np.float32))
    if extra_points is not None and len(extra_points):
        e = np.asarray(extra_points, np.float32).reshape(-1, 2)
        ex, ey = np.round(e[:, 0]).astype(int), np.round(e[:, 1]).astype(int)
        ok = (ex >= 0) & (ex < w) & (ey >= 0) & (ey < h)
        ok[ok] = m[ey[ok], ex[ok]] > 0
        pts.append(e[ok])
    v = np.concatenate(pts, 0)
    v = np.unique(np.round(v * 4) / 4, axis=0).astype(np.float32)
    if len(v) < 3:
        return v, np.zeros((0, 3), np.int32)
    try:
        tri = Delaunay(v.astype(np.float64)).simplices.astype(np.int32)
    except Exception:  # noqa: BLE001 - collinear points (a one-pixel-wide mask): no mesh
        return v, np.zeros((0, 3), np.int32)
    p = v[tri]  # (T, 3, 2)
    probes = [p.mean(1)] + [(p[:, i] + p[:, (i + 1) % 3]) / 2 for i in range(3)]
    keep = np.ones(len(tri), bool)
    for q in probes:
        qx = np.clip(np.round(q[:, 0]).astype(int), 0, w - 1)
        qy = np.clip(np.round(q[:, 1]).astype(int), 0, h - 1)
        keep &= m[qy, qx] > 0
    tri = tri[keep]
    used = np.unique(tri)
    remap = np.full(len(v), -1, np.int64)
    remap[used] = np.arange(len(used))
    return v[used], remap[tri].astype(np.int32)


def skinning_weights(vertices: np.ndarray, rest: Mapping[str, np.ndarray],
                     bones: Sequence[str], *, power: float = 4.0, eps: float = 1.0
                     ) -> np.ndarray:
    """Linear-blend-skinning weights of vertices to the bones they may follow.

    Args:
        vertices: (V, 2) rest positions; rest: rest joints; bones: the bones allowed for
            this layer (others get weight 0).
        power: inverse-distance exponent: a vertex well inside one bone's reach follows it
            alone; near a joint both bones' distances are alike and the weights blend smoothly.
    Returns:
        float32 (V, len(BONES)), rows summing to 1. A layer whose bones are all missing in the
        rest skeleton binds to the torso.
    """
    wts = np.zeros((len(vertices), len(BONE_NAMES)), np.float64)
    cols = []
    for b in bones:
        a_, b_ = BONES[b]
        if a_ in rest and b_ in rest:
            d = _segment_distance(vertices.astype(np.float64), rest[a_], rest[b_])
            wts[:, BONE_INDEX[b]] = 1.0 / (d + eps) ** power
            cols.append(BONE_INDEX[b])
    if not cols:
        wts[:, 0] = 1.0
    wts /= wts.sum(1, keepdims=True)
    return wts.astype(np.float32)


# --------------------------------------------------------------------------------------------
# Rasterisation
# --------------------------------------------------------------------------------------------


def rasterize_triangles(tri_xy: np.ndarray, out_hw: tuple[int, int],
                        order: np.ndarray | None = None) -> np.ndarray:
    """Triangle ids per output pixel.

    Args:
        tri_xy: (T, 3, 2) posed triangle corners (pixels).
        out_hw: (H, W).
        order: drawing order (indices into tri_xy); later triangles cover earlier ones.
    Returns:
        int32 (H, W): the id of the triangle drawn last at each pixel, -1 where none.
    """
    h, w = int(out_hw[0]), int(out_hw[1])
    ids = np.full((h, w), -1, np.int32)
    if len(tri_xy) == 0:
        return ids
    fixed = np.round(tri_xy * 16).astype(np.int32)
    x, y = tri_xy[..., 0], tri_xy[..., 1]
    vis = (x.max(1) >= 0) & (x.min(1) < w) & (y.max(1) >= 0) & (y.min(1) < h)
    seq = np.arange(len(tri_xy)) if order is None else np.asarray(order)
    for t in seq[vis[seq]]:
        cv2.fillConvexPoly(ids, fixed[t], int(t), lineType=cv2.LINE_8, shift=4)
    return ids


def _inverse_affines(posed: np.ndarray, rest: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per triangle the 2x3 affine map posed pixel -> rest pixel (T, 2, 3), and which
    triangles are not degenerate (T,). Closed form: the edge matrices' 2x2 inverses."""
    e1, e2 = posed[:, 1] - posed[:, 0], posed[:, 2] - posed[:, 0]
    det = e1[:, 0] * e2[:, 1] - e1[:, 1] * e2[:, 0]
    ok = np.abs(det) > 1e-6
    d = np.where(ok, det, 1.0)
    inv = np.stack([np.stack([e2[:, 1], -e2[:, 0]], 1), np.stack([-e1[:, 1], e1[:, 0]], 1)],
                   1) / d[:, None, None]  # rows of inv([e1 e2])
    f = np.stack([rest[:, 1] - rest[:, 0], rest[:, 2] - rest[:, 0]], 2)  # (T, 2, 2) columns
    lin = f @ inv
    t = rest[:, 0] - np.einsum("tij,tj->ti", lin, posed[:, 0])
    return np.concatenate([lin, t[..., None]], 2), ok


# --------------------------------------------------------------------------------------------
# Hands
# --------------------------------------------------------------------------------------------

_FINGERS = ((1, 2, 3, 4), (5, 6, 7, 8), (9, 10, 11, 12), (13, 14, 15, 16), (17, 18, 19, 20))


def draw_hand(rgb: np.ndarray, labels: np.ndarray, alpha: np.ndarray, hand: np.ndarray,
              label: int, skin: np.ndarray, width: float, threshold: float = 0.05) -> bool:
    """Draw a shaped hand in place: a palm polygon and one capsule per finger.

    Args:
        rgb: uint8 (H, W, 3); labels: uint8 (H, W); alpha: float32 (H, W) (all in place).
        hand: (21, 3) hand keypoints in output pixels (OpenPose hand layout).
        label: the hand label to write; skin: (3,) RGB skin tone.
        width: finger thickness (px).
    Returns:
        True when a hand was drawn (the wrist and at least one finger are known).
    """
    ok = hand[:, 2] > threshold
    if not ok[0]:
        return False
    palm_ids = [i for i in (0, 1, 5, 9, 13, 17) if ok[i]]
    fingers = [[0] + [k for k in f if ok[k]] for f in _FINGERS]
    if sum(len(f) > 1 for f in fingers) == 0:
        return False
    mask = np.zeros(labels.shape, np.uint8)
    wd = max(1, int(round(width)))
    if len(palm_ids) >= 3:
        hull = cv2.convexHull(hand[palm_ids, :2].astype(np.float32))
        cv2.fillConvexPoly(mask, np.round(hull * 16).astype(np.int32), 255, cv2.LINE_AA, 4)
    for f in fingers:
        if len(f) < 2:
            continue
        start = 1 if len(palm_ids) >= 3 else 0
        pts = np.round(hand[f[start:], :2] * 16).astype(np.int32) if len(f[start:]) > 1 else \
            np.round(hand[f, :2] * 16).astype(np.int32)
        cv2.polylines(mask, [pts], False, 255, wd, cv2.LINE_AA, 4)
        for p in pts:
            cv2.circle(mask, tuple(int(c) for c in p), max(1, wd // 2) * 16, 255, -1,
                       cv2.LINE_AA, 4)
    cv2.circle(mask, tuple(int(c) for c in np.round(hand[0, :2] * 16)), max(1, wd) * 16, 255,
               -1, cv2.LINE_AA, 4)
    a = mask.astype(np.float32) / 255.0
    if not (a > 0).any():
        return False
    # shading: darker towards the outline so fingers read as shapes, not a flat blob
    inside = cv2.distanceTransform((mask > 127).astype(np.uint8), cv2.DIST_L2, 3)
    shade = 0.78 + 0.22 * np.clip(inside / max(1.0, width * 0.5), 0, 1)
    col = np.clip(skin[None, None, :] * shade[..., None], 0, 255)
    sel = a > 0
    rgb[sel] = np.round(rgb[sel] * (1 - a[sel, None]) + col[sel] * a[sel, None]).astype(np.uint8)
    labels[a >= 0.5] = label
    alpha[sel] = np.maximum(alpha[sel], a[sel])
    return True


def _hand_in_output(driver: Person, side: str, posed: Mapping[str, np.ndarray],
                    threshold: float = 0.05) -> np.ndarray | None:
    """The driver's hand keypoints moved to the retargeted wrist and scaled like the forearm;
    a driver without hand keypoints gets a hand continuing its forearm."""
    from ..perception.base import derive_hand

    wrist, elbow = posed.get(f"{side}_wrist"), posed.get(f"{side}_elbow")
    if wrist is None or elbow is None:
        return None
    hand = (driver.right_hand if side == "right" else driver.left_hand).astype(np.float64)
    jd = joints(driver)
    dw, de = jd.get(f"{side}_wrist"), jd.get(f"{side}_elbow")
    ok = hand[:, 2] > threshold
    if ok[0] and ok.sum() >= 5 and dw is not None and de is not None:
        k = float(np.hypot(*(wrist - elbow))) / max(1e-6, float(np.hypot(*(dw - de))))
        k = float(np.clip(k, 0.2, 5.0))
        out = hand.copy()
        out[ok, :2] = wrist + (hand[ok, :2] - hand[0, :2]) * k
        return out
    return derive_hand(elbow, wrist).astype(np.float64)


# --------------------------------------------------------------------------------------------
# The rig
# --------------------------------------------------------------------------------------------


@dataclass
class Layer:
    """One layer's mesh: rest vertices (V, 2) in the photo, triangles (T, 3), skinning
    weights (V, len(BONES))."""

    name: str
    vertices: np.ndarray
    triangles: np.ndarray
    weights: np.ndarray


@dataclass
class MeshRender:
    """One rendered frame: image uint8 (H, W, 3) (zeros outside the person), labels uint8
    (H, W) in the 22-label schema, alpha float32 (H, W) in 0..1 (the person's coverage),
    drawn_hands: sides whose hand was drawn from keypoints."""

    image: np.ndarray
    labels: np.ndarray
    alpha: np.ndarray
    drawn_hands: tuple[str, ...] = ()


def _fill_from_inside(img: np.ndarray, inside: np.ndarray, region: np.ndarray) -> None:
    """In place: ``region`` pixels take the colour of the nearest ``inside`` pixel."""
    nearest_fill(img, inside, region & ~inside)


def layer_order(driver: Person) -> tuple[str, ...]:
    """Back-to-front layer order for one driver frame.

    Front view (the subject's right shoulder on the image's left): legs, torso, arms, so arms
    pass in front of the body. Back view (shoulders clearly swapped, or swapped with no face
    keypoint): arms behind the torso. A near-profile, where the shoulder order is ambiguous,
    keeps the front-view order.
    """
    j = joints(driver)
    rs, ls = j.get("right_shoulder"), j.get("left_shoulder")
    back = False
    if rs is not None and ls is not None:
        span = float(ls[0] - rs[0])
        torso = float(np.hypot(*(j["mid_hip"] - j["neck"]))) if "mid_hip" in j and "neck" in j \
            else abs(span) * 1.5
        face_seen = any(driver.body[k, 2] > 0.05 for k in (0, 14, 15))
        back = span < -0.15 * max(torso, 1.0) or (span < 0 and not face_seen)
    if back:
        return ("right_arm", "left_arm", "right_leg", "left_leg", "torso")
    return LAYER_NAMES


@dataclass
class BodyRig:
    """A target photo prepared once for every driver frame (see the module docstring)."""

    layers: list[Layer]
    atlas: torch.Tensor          # float32 (1, 5, L*hc, wc): RGB 0..1, alpha, label
    height: int                  # hc: rows of one layer in the atlas (the person's box)
    width: int                   # wc
    origin: tuple[int, int]      # (x, y) of the box's corner in the photo
    rest: dict[str, np.ndarray]  # rest joints with virtual ones
    person: Person
    labels_shown: np.ndarray     # bool (NUM_LABELS,)
    hands_shown: dict[str, bool]
    legs_left_out: tuple[str, ...]  # leg layers the photo cuts off (:func:`_legs_cut_off`)
    skin: np.ndarray             # (3,) RGB
    finger_width: float
    label_colors: np.ndarray     # float64 (NUM_LABELS, 3): mean RGB of each label in the photo

    @classmethod
    def build(cls, image: np.ndarray | None, labels: np.ndarray, person: Person, *,
              fringe: int = 2, device: torch.device | str | None = None) -> BodyRig:
        """Prepare a target: parts, layers, meshes, skinning, textures.

        Args:
            image: uint8 (h, w, 3) photo, or None to render labels only; labels: uint8 (h, w)
                its parsing; person: its keypoints (pixels of the photo).
            fringe: pixels of the parsing edge replaced by inner colours.
        Raises:
            ValueError: the labels show no person, or the keypoints no body.
        """
        labels = np.asarray(labels, np.uint8)
        labels_only = image is None
        if labels_only:  # the P2B warp: a flat texture, no colour work
            image = np.zeros(labels.shape + (3,), np.uint8)
        if labels.ndim != 2 or image.shape[:2] != labels.shape:
            raise ValueError(f"image {image.shape} and labels {labels.shape} differ in size")
        if not labels.any():
            raise ValueError("the target parsing shows no person")
        person = complete_limbs(person)
        part_map = assign_parts(labels, person)
        rest = _rig_joints(_with_head(person))
        ys, xs = np.nonzero(labels)
        height = float(max(ys.max() - ys.min(), xs.max() - xs.min(), 16))
        person_mask = labels > 0
        counts = np.bincount(labels.ravel(), minlength=NUM_LABELS)
        shown = counts > 0
        shown[0] = False

        layer_masks, loose = _layer_masks(labels, part_map)
        cut = _legs_cut_off(person, rest, labels.shape[0])
        for name in cut:
            layer_masks[name][:] = False
            # its skin and shoe are not shown: a learned P2B's leg is left out of B2F's mask
            # as the warp P2B draws none (a few such pixels at the hip stay on the torso)
            shown[[LABEL[name], LABEL[name.replace("_leg", "_shoe")]]] = False
        if cut:
            logger.info("%s", describe_legs_left_out(cut))
        torso_px = layer_masks["torso"]
        thick, own = _root_bands(layer_masks, part_map, rest)
        hidden = _hidden_torso(layer_masks, person_mask)

        # textures and meshes, per layer (the torso completed where arms covered it)
        rgb = np.ascontiguousarray(image[..., :3]).copy()
        bg_centres = None if labels_only else _colour_centres(rgb[~person_mask])
        mesh = _MeshSettings(contour_step=max(3.0, height / 90.0),
                             interior_step=max(5.0, height / 28.0), rest=rest, loose=loose)
        textures: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        layers: list[Layer] = []
        for name in LAYER_NAMES:
            m = layer_masks[name]
            textures.append(_layer_texture(name, m, rgb, labels, fringe, bg_centres,
                                           hidden, torso_px, labels_only))
            layers.append(_layer_mesh(name, m, mesh, _layer_bones(name, counts, thick),
                                      own.get(name)))
        dev = torch.device(device) if device is not None else torch.device("cpu")
        atlas, (cx0, cy0, cx1, cy1) = _atlas(textures, person_mask)
        hands_shown, fw = _hands_shown(part_map, counts, thick, height)
        return cls(layers=layers, atlas=atlas[None].contiguous().to(dev), height=cy1 - cy0,
                   width=cx1 - cx0, origin=(int(cx0), int(cy0)),
                   rest=rest, person=person, labels_shown=shown, hands_shown=hands_shown,
                   legs_left_out=cut,
                   skin=_skin_tone(rgb, labels), finger_width=fw,
                   label_colors=_label_colors(rgb, labels))

    @property
    def device(self) -> torch.device:
        return self.atlas.device

    def pose(self, driver: Person, scale: float) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """(retargeted joints, per-bone transforms (len(BONES), 2, 3)) for one frame."""
        jt, jr = posed_skeleton(self.person, driver, scale)
        return jr, bone_transforms(jt, jr)

    def posed_vertices(self, transforms: np.ndarray) -> list[np.ndarray]:
        """Linear blend skinning: each layer's vertices (V, 2) in the driver frame."""
        out = []
        for layer in self.layers:
            if len(layer.vertices) == 0:
                out.append(layer.vertices)
                continue
            vh = np.concatenate([layer.vertices, np.ones((len(layer.vertices), 1),
                                                         np.float32)], 1)  # (V, 3)
            per_bone = np.einsum("bij,vj->vbi", transforms, vh)  # (V, B, 2)
            out.append(np.einsum("vb,vbi->vi", layer.weights, per_bone).astype(np.float32))
        return out

    def render(self, driver: Person, scale: float, out_hw: tuple[int, int], *,
               with_image: bool = True, draw_hands: bool = True) -> MeshRender:
        """Render the target in one driver pose.

        Args:
            driver: the driver's keypoints (pixels of the output frame).
            scale: the clip-level body scale of this frame (:func:`clip_scales`).
            out_hw: (H, W) of the output frame.
            with_image: also sample the pixels (P2B needs labels only).
        Returns:
            :class:`MeshRender` at (H, W).
        """
        h, w = int(out_hw[0]), int(out_hw[1])
        jr, tf = self.pose(driver, scale)
        posed = self.posed_vertices(tf)
        labels = np.zeros((h, w), np.uint8)
        alpha = np.zeros((h, w), np.float32)
        acc = np.zeros((h, w, 3), np.float32) if with_image else None
        index = {layer.name: li for li, layer in enumerate(self.layers)}
        for name in layer_order(driver):
            li = index[name]
            layer = self.layers[li]
            if not len(layer.triangles):
                continue
            tp = posed[li][layer.triangles].astype(np.float64)
            tr = layer.vertices[layer.triangles].astype(np.float64)
            tr[..., 0] -= self.origin[0]
            tr[..., 1] += li * self.height - self.origin[1]
            aff, ok = _inverse_affines(tp, tr)
            ids = rasterize_triangles(tp, (h, w), np.nonzero(ok)[0])
            if (ids >= 0).any():
                self._composite(ids, aff, acc, labels, alpha)
        if acc is None:
            image = np.zeros((h, w, 3), np.uint8)
        else:  # un-premultiply: colours are the layers' own, alpha says how much shows
            acc /= np.maximum(alpha, 1e-6)[..., None]
            image = np.clip(acc * 255.0 + 0.5, 0, 255).astype(np.uint8)
            image[alpha <= 0] = 0
        drawn: list[str] = []
        if draw_hands:
            for side in ("right", "left"):
                if self.hands_shown[side]:
                    continue
                hand = _hand_in_output(driver, side, jr)  # None without the posed forearm
                if hand is not None and draw_hand(image, labels, alpha, hand,
                                                  _HAND_LABELS[side], self.skin,
                                                  self.finger_width * scale):
                    drawn.append(side)
        return MeshRender(image=image, labels=labels, alpha=alpha, drawn_hands=tuple(drawn))

    def _composite(self, ids: np.ndarray, aff: np.ndarray, acc: np.ndarray | None,
                   labels: np.ndarray, alpha: np.ndarray) -> None:
        """Sample one layer through its triangle-id map and draw it OVER what is there
        (colours premultiplied in ``acc``, labels where the layer's alpha >= 0.5)."""
        ys, xs = np.nonzero(ids >= 0)
        y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
        dev = self.device
        sub = torch.from_numpy(ids[y0:y1, x0:x1]).to(dev).long()
        a6 = torch.from_numpy(aff.reshape(-1, 6)).to(dev, torch.float32)  # (T, 6)
        cov = sub >= 0
        m = a6[sub.clamp(min=0)]  # (h', w', 6)
        gx = torch.arange(x0, x1, device=dev, dtype=torch.float32)[None, :]
        gy = torch.arange(y0, y1, device=dev, dtype=torch.float32)[:, None]
        sx = m[..., 0] * gx + m[..., 1] * gy + m[..., 2]
        sy = m[..., 3] * gx + m[..., 4] * gy + m[..., 5]
        ah, aw = self.atlas.shape[2], self.atlas.shape[3]
        grid = torch.stack([(sx + 0.5) * (2.0 / aw) - 1, (sy + 0.5) * (2.0 / ah) - 1], -1)[None]
        chans = self.atlas[:, :4] if acc is not None else self.atlas[:, 3:4]
        soft = F.grid_sample(chans, grid, mode="bilinear", padding_mode="zeros",
                             align_corners=False)[0]
        a_l = soft[-1] * cov
        lab = F.grid_sample(self.atlas[:, 4:5], grid, mode="nearest", padding_mode="zeros",
                            align_corners=False)[0, 0]
        a_np = a_l.cpu().numpy()
        lab_np = lab.round().to(torch.uint8).cpu().numpy()
        top = a_np >= 0.5
        lv = labels[y0:y1, x0:x1]
        lv[top] = lab_np[top]
        av = alpha[y0:y1, x0:x1]
        if acc is not None:
            rgb = (soft[:3] * a_l).permute(1, 2, 0).cpu().numpy()  # premultiplied
            cv = acc[y0:y1, x0:x1]
            cv *= (1.0 - a_np)[..., None]
            cv += rgb
        av *= 1.0 - a_np
        av += a_np


# --------------------------------------------------------------------------------------------
# BodyRig.build's phases
# --------------------------------------------------------------------------------------------

_GROW = 4  # px each layer's texture and labels reach past its mask (edge sampling)


def _layer_masks(labels: np.ndarray, part_map: np.ndarray
                 ) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """(each layer's pixels by its parts, the loose garment pixels below the hips).

    A skirt, dress or coat below the hips hangs from the torso and stretches between the
    thighs when the legs spread (split between the two leg layers, it would open like
    trousers): those pixels move from the leg layers to the torso layer.
    """
    layer_masks: dict[str, np.ndarray] = {}
    for name, parts in LAYERS.items():
        layer_masks[name] = np.isin(part_map, [PART_ID[p] for p in parts])
    loose = np.isin(labels, _LOOSE_LABELS) & (layer_masks["right_leg"]
                                              | layer_masks["left_leg"])
    if loose.any():
        layer_masks["torso"] |= loose
        layer_masks["right_leg"] &= ~loose
        layer_masks["left_leg"] &= ~loose
    return layer_masks, loose


def _legs_cut_off(person: Person, rest: Mapping[str, np.ndarray], photo_h: int,
                  *, stub: float = 0.5, threshold: float = 0.05) -> tuple[str, ...]:
    """The leg layers a photo cuts off at the hip: the leg's ankle is not detected and the
    photo's bottom edge lies less than ``stub`` torso lengths (neck to mid-hip) below its hip.

    At most a stub of thigh shows there, often hidden behind what the person holds in the lap
    (a guitar, a table); a detector's knee for it is a guess. Posed as a leg, those pixels
    would hang from the body as loose pieces, so the leg is left out and the body ends at the
    hips as in the photo. A photo that shows the thighs, or an ankle, keeps its legs.
    """
    from ..core.schema import BODY

    if "neck" not in rest or "mid_hip" not in rest:
        return ()
    torso = float(np.hypot(*(rest["mid_hip"] - rest["neck"])))
    out = []
    for side in ("right", "left"):
        hip = rest.get(f"{side}_hip")
        if hip is None or person.body[BODY[f"{side}_ankle"], 2] > threshold:
            continue
        if photo_h - float(hip[1]) < stub * torso:
            out.append(f"{side}_leg")
    return tuple(out)


def describe_legs_left_out(names: Sequence[str]) -> str:
    """What to tell the artist about :attr:`BodyRig.legs_left_out` (of one or more rigs),
    e.g. "the target photo ends at the hips: right leg and left leg left out"."""
    legs = " and ".join(dict.fromkeys(n.replace("_", " ") for n in names))
    return f"the target photo ends at the hips: {legs} left out"


def _root_bands(layer_masks: dict[str, np.ndarray], part_map: np.ndarray,
                rest: Mapping[str, np.ndarray]
                ) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """(each limb's thickness: how far its pixels lie from its bones; each limb layer's own
    pixels before its band).

    In place: a limb layer also takes the torso-part pixels within 1.6 thicknesses of its root
    joint (skinned to the torso), so the limb never separates from the body; the head (a
    bent-over or profile head lies next to the shoulder) never rides along to show twice.
    """
    torso_px = layer_masks["torso"]
    thick: dict[str, float] = {}
    own: dict[str, np.ndarray] = {}
    for name in LAYER_NAMES:
        if name == "torso" or not layer_masks[name].any():
            continue
        root = "shoulder" if name.endswith("arm") else "hip"
        side = name.split("_")[0]
        jr = rest.get(f"{side}_{root}")
        yy, xx = np.nonzero(layer_masks[name])
        px = np.stack([xx, yy], 1).astype(np.float64)
        ds = [_segment_distance(px, rest[BONES[b][0]], rest[BONES[b][1]])
              for b in LAYER_BONES[name][1:3]
              if BONES[b][0] in rest and BONES[b][1] in rest]
        if jr is None or not ds or not len(px):
            continue
        t = float(np.percentile(np.min(ds, axis=0), 80))
        thick[name] = max(3.0, t)
        r = 1.6 * thick[name]
        ty, tx = np.nonzero(torso_px & (part_map == PART_ID["torso"]))
        near = np.hypot(tx - jr[0], ty - jr[1]) < r
        band = np.zeros_like(torso_px)
        band[ty[near], tx[near]] = True
        own[name] = layer_masks[name]
        layer_masks[name] = _main_pieces(layer_masks[name] | band)
    return thick, own


def _hidden_torso(layer_masks: dict[str, np.ndarray], person_mask: np.ndarray) -> np.ndarray:
    """The person's pixels inside the torso's convex hull that an arm covers in the photo; in
    place, the torso layer grows by them (its texture is completed there)."""
    torso_px = layer_masks["torso"]
    hidden = np.zeros_like(torso_px)
    if torso_px.any():
        hull_pts = cv2.convexHull(np.stack(np.nonzero(torso_px)[::-1], 1).astype(np.int32))
        hull = np.zeros(torso_px.shape, np.uint8)
        cv2.fillConvexPoly(hull, hull_pts, 1)
        arms = layer_masks["right_arm"] | layer_masks["left_arm"]
        hidden = (hull > 0) & arms & ~torso_px & person_mask
        layer_masks["torso"] = torso_px | hidden
    return hidden


def _layer_texture(name: str, m: np.ndarray, rgb: np.ndarray, labels: np.ndarray,
                   fringe: int, bg_centres: np.ndarray | None, hidden: np.ndarray,
                   torso_px: np.ndarray, labels_only: bool
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(RGB, labels, alpha) of one layer over the whole photo: the trusted core's colours and
    the nearest labels reach ``_GROW`` px past the mask; the torso's hidden part takes the
    nearest torso label and texture copied from the torso's own pixels only (never from the
    arm over it)."""
    tex = rgb.copy()
    lab = np.where(m, labels, 0).astype(np.uint8)
    if name == "torso" and hidden.any():
        _fill_labels_from(lab, torso_px, hidden)
        if not labels_only:
            tex = _complete_hidden(tex, hidden, torso_px & ~hidden)
    core = _texture_core(rgb, m, fringe, bg_centres)
    around = cv2.dilate(m.astype(np.uint8), np.ones((2 * _GROW + 1, 2 * _GROW + 1),
                                                    np.uint8)) > 0
    _fill_from_inside(tex, core, around)
    # labels outside the mask: nearest label (nearest sampling at the edge)
    lab_full = lab.copy()
    _fill_labels_from(lab_full, m, around & ~m)
    return tex, np.where(around, lab_full, 0), m.astype(np.float32)


@dataclass(frozen=True)
class _MeshSettings:
    """What every layer's mesh is built from: vertex spacing on the contour and inside, the
    rest joints (also extra vertices), and the loose garment pixels (skirt skinning)."""

    contour_step: float
    interior_step: float
    rest: dict[str, np.ndarray]
    loose: np.ndarray


def _vertex_mask(v: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Per vertex (V, 2): ``mask`` dilated by 2 px at its rounded, clipped position."""
    h, w = mask.shape
    vx = np.clip(np.round(v[:, 0]).astype(int), 0, w - 1)
    vy = np.clip(np.round(v[:, 1]).astype(int), 0, h - 1)
    return (cv2.dilate(mask.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0)[vy, vx]


def _layer_bones(name: str, counts: np.ndarray, thick: Mapping[str, float]) -> tuple[str, ...]:
    """The bones that skin a layer. An arm whose photo shows no clear hand (fewer than
    ``0.6 * thickness**2`` hand pixels) leaves its hand bone out: those few pixels follow the
    forearm."""
    bones = LAYER_BONES[name]
    if name.endswith("_arm"):
        side = name.split("_")[0]
        hand_px = int(counts[_HAND_LABELS[side]])
        th = thick.get(name, 4.0)
        if hand_px < 0.6 * th * th:
            bones = tuple(b for b in bones if not b.endswith("_hand"))
    return bones


def _layer_mesh(name: str, m: np.ndarray, mesh: _MeshSettings, bones: tuple[str, ...],
                own: np.ndarray | None) -> Layer:
    """One layer's triangle mesh skinned to ``bones`` (an empty layer without pixels).

    Skirt vertices follow the torso near the hips and the thighs further down; root-band
    vertices (outside the limb's ``own`` pixels) follow the layer's first bone alone.
    """
    if not m.any():
        return Layer(name, np.zeros((0, 2), np.float32), np.zeros((0, 3), np.int32),
                     np.zeros((0, len(BONE_NAMES)), np.float32))
    rest = mesh.rest
    extra = np.array([rest[k] for k in rest], np.float32) if rest else None
    v, t = build_layer_mesh(m, contour_step=mesh.contour_step,
                            interior_step=mesh.interior_step, extra_points=extra, grow=2)
    wts = skinning_weights(v, rest, bones)
    if name == "torso" and mesh.loose.any() and len(v):
        sel = _vertex_mask(v, mesh.loose)
        if sel.any():
            wts[sel] = skinning_weights(v[sel], rest, _SKIRT_BONES)
    if own is not None and len(v):
        in_band = ~_vertex_mask(v, own)
        wts[in_band] = 0.0
        wts[in_band, BONE_INDEX[bones[0]]] = 1.0
    return Layer(name, v, t, wts)


def _atlas(textures: Sequence[tuple[np.ndarray, np.ndarray, np.ndarray]],
           person_mask: np.ndarray) -> tuple[torch.Tensor, tuple[int, int, int, int]]:
    """The layers' (RGB, labels, alpha) cropped to the person's box (plus the grown edge) and
    stacked vertically: float32 (5, L*hc, wc) RGB 0..1, alpha, label; and the box
    (x0, y0, x1, y1)."""
    h, w = person_mask.shape
    by, bx = np.nonzero(person_mask)
    pad = _GROW + 3
    cy0, cy1 = max(0, by.min() - pad), min(h, by.max() + 1 + pad)
    cx0, cx1 = max(0, bx.min() - pad), min(w, bx.max() + 1 + pad)

    def crop(i: int) -> np.ndarray:
        return np.concatenate([t[i][cy0:cy1, cx0:cx1] for t in textures], 0)

    rgb_t = torch.from_numpy(crop(0)).float().div_(255.0)
    atlas = torch.cat([rgb_t.permute(2, 0, 1), torch.from_numpy(crop(2))[None],
                       torch.from_numpy(crop(1)).float()[None]], 0)
    return atlas, (cx0, cy0, cx1, cy1)


def _hands_shown(part_map: np.ndarray, counts: np.ndarray, thick: Mapping[str, float],
                 height: float) -> tuple[dict[str, bool], float]:
    """(per side whether the photo shows the hand, the finger width for drawn hands).

    A hand is drawn from keypoints only at the end of a forearm the photo shows, when the
    photo shows fewer than ``0.6 * (2 * finger width)**2`` of its pixels.
    """
    forearm_shown = {side: bool((part_map == PART_ID[f"{side}_forearm"]).any())
                     for side in ("right", "left")}
    hands_shown = {}
    arm_thick = [thick[k] for k in ("right_arm", "left_arm") if k in thick]
    fw = float(np.mean(arm_thick)) * 0.45 if arm_thick else max(2.0, height / 120.0)
    for side in ("right", "left"):
        hands_shown[side] = bool(counts[_HAND_LABELS[side]] >= 0.6 * (2 * fw) ** 2) or \
            not forearm_shown[side]
    return hands_shown, fw


def _main_pieces(mask: np.ndarray, keep: float = 0.25) -> np.ndarray:
    """The mask's largest connected piece and any piece at least ``keep`` times its size: a
    limb layer's small islands (a trouser leg seen in a gap of the coat) would float away
    from the body once posed."""
    n, lab, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    if n <= 2:
        return mask
    areas = stats[1:, cv2.CC_STAT_AREA]
    ok = np.concatenate([[False], areas >= keep * areas.max()])
    return ok[lab]


def _complete_hidden(tex: np.ndarray, hidden: np.ndarray, source: np.ndarray) -> np.ndarray:
    """Texture for torso pixels an arm covered in the photo: PatchMatch from ``source`` pixels
    only (nearest colour when PatchMatch has nothing to copy from)."""
    from ..compositing.inpaint import inpaint_patchmatch

    try:
        return inpaint_patchmatch(tex, hidden, source_mask=source)
    except ValueError:
        out = tex.copy()
        _fill_from_inside(out, source, hidden)
        return out


def _fill_labels_from(lab: np.ndarray, src: np.ndarray, dst: np.ndarray) -> None:
    tmp = lab[..., None].copy()
    nearest_fill(tmp, src, dst)
    lab[dst] = tmp[dst, 0]


def _skin_tone(rgb: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Median colour of the face, arms or torso skin (in that order of preference)."""
    for lab in _SKIN_LABELS:
        sel = labels == lab
        if sel.sum() >= 20:
            # the inner part of the region (edges carry background and hair)
            inner = cv2.erode(sel.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
            use = inner if inner.sum() >= 10 else sel
            return np.median(rgb[use].reshape(-1, 3), axis=0).astype(np.float64)
    return np.array([224.0, 172.0, 140.0])


def _colour_centres(pixels: np.ndarray, k: int = 6, limit: int = 4000) -> np.ndarray | None:
    """k-means colour centres (k, 3) of a set of RGB pixels (None when there are too few)."""
    px = pixels.reshape(-1, 3).astype(np.float32)
    if len(px) < 2 * k:
        return None
    if len(px) > limit:
        px = px[np.random.default_rng(0).choice(len(px), limit, replace=False)]
    crit = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 20, 1.0)
    cv2.setRNGSeed(0)
    _, _, centres = cv2.kmeans(px, k, None, crit, 1, cv2.KMEANS_PP_CENTERS)
    return centres


def _texture_core(rgb: np.ndarray, mask: np.ndarray, fringe: int,
                  bg_centres: np.ndarray | None) -> np.ndarray:
    """The pixels of a layer whose colours are trusted: the mask eroded by ``fringe`` px, and
    in a band of ``fringe + 2`` px along its edge, minus the pixels whose colour is nearer the
    photo's background colours than the layer's own colours nearby (sky, trees, studio wall
    let in by the parsing edge)."""
    if fringe <= 0 or not mask.any():
        return mask
    m8 = mask.astype(np.uint8)

    def erode(px: int) -> np.ndarray:
        k = 2 * px + 1
        return cv2.erode(m8, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))) > 0

    core = erode(fringe)
    if not core.any():
        return mask
    if bg_centres is None:
        return core
    wide = fringe + 3
    inner = erode(wide)
    band = core & ~inner
    if not band.any() or not inner.any():
        return core
    f = rgb.astype(np.float32)
    w = cv2.GaussianBlur(inner.astype(np.float32), (0, 0), 2.0 * wide)
    local = cv2.GaussianBlur(f * inner[..., None], (0, 0), 2.0 * wide) / np.maximum(w, 1e-4)[
        ..., None]
    px = f[band]
    d_fg = np.linalg.norm(px - local[band], axis=1)
    d_bg = np.min(np.linalg.norm(px[:, None] - bg_centres[None], axis=2), axis=1)
    out = core.copy()
    out[band] = d_fg <= d_bg
    return out


def _label_colors(rgb: np.ndarray, labels: np.ndarray) -> np.ndarray:
    n = np.bincount(labels.ravel(), minlength=NUM_LABELS)[:NUM_LABELS].astype(np.float64)
    out = np.zeros((NUM_LABELS, 3))
    for c in range(3):
        out[:, c] = np.bincount(labels.ravel(), weights=rgb[..., c].ravel().astype(np.float64),
                                minlength=NUM_LABELS)[:NUM_LABELS]
    return out / np.maximum(n, 1)[:, None]


# --------------------------------------------------------------------------------------------
# The two warp backends
# --------------------------------------------------------------------------------------------


def warp_parsing_mesh(rig: BodyRig, driver: Person, scale: float, out_hw: tuple[int, int]
                      ) -> np.ndarray:
    """The P2B warp backend: the target's parsing in one driver pose (uint8 (H, W))."""
    return rig.render(driver, scale, out_hw, with_image=False).labels


def warp_frame_mesh(rig: BodyRig, parsing: np.ndarray, driver: Person, scale: float, *,
                    feather: float = 1.0, rendered: MeshRender | None = None) -> WarpFrame:
    """The B2F warp backend: the target's pixels and mask for one driver frame.

    Args:
        rig: the prepared target (:meth:`BodyRig.build` with the photo).
        parsing: uint8 (H, W) the frame's parsing (P2B output). From the warp P2B it equals
            the mesh's own labels and the mesh's soft alpha is the mask; from a learned P2B,
            pixels whose label the mesh does not carry are filled from the nearest rendered
            pixel of the SAME label (or the label's mean colour in the photo).
        driver, scale: the driver's keypoints and the clip scale of this frame.
        feather: Gaussian sigma (px) of the mask edge (added to the mesh's own soft edge).
        rendered: the mesh render of this frame when already made.
    Returns:
        ``b2f_warp.WarpFrame``: image uint8 (H, W, 3), mask float32 (H, W), absent_pixels
        (person pixels of labels the photo does not show, left out of the mask).
    """
    h, w = parsing.shape
    r = rendered if rendered is not None else rig.render(driver, scale, (h, w))
    shown = rig.labels_shown.copy()
    for side in r.drawn_hands:
        shown[_HAND_LABELS[side]] = True
    person = parsing > 0
    absent = person & ~shown[parsing]
    want = person & ~absent
    if np.array_equal(parsing, r.labels):
        img, mask = r.image.copy(), r.alpha.copy()
    else:
        fallback = {int(k): rig.label_colors[int(k)] for k in np.unique(parsing[want])}
        img = fill_from_same_label(r.image, r.alpha >= 0.5, want, r.labels, parsing, fallback)
        img[~want] = 0
        mask = want.astype(np.float32)
    if feather > 0 and mask.any():
        mask = cv2.GaussianBlur(mask, (0, 0), float(feather))
        mask[mask < 1e-3] = 0.0
        # the soft edge reaches a little outside: extend the colours under it
        nearest_fill(img, r.alpha >= 0.5 if np.array_equal(parsing, r.labels) else want,
                     (mask > 0) & ~(img.any(axis=2)))
    return WarpFrame(image=img, mask=np.clip(mask, 0, 1).astype(np.float32),
                     absent_pixels=int(absent.sum()))
