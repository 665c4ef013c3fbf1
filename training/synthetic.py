"""Procedural synthetic people: exact parsing, RGB, OpenPose keypoints and DensePose-like maps.

A :class:`SyntheticBody` is a 2D articulated body (the OpenPose 18-joint skeleton) with its own
limb lengths, widths, head size, clothes (shirt / dress / coat with sleeves, pants / shorts /
skirt, shoes, optional hat and sunglasses), hair and colours/textures. :func:`random_pose` draws
a dance-like pose (joint angles plus framing); :func:`render` rasterises body + pose into

* ``labels``: uint8 parsing in the 22-label schema of :mod:`.schema` (hands 20/21 from the hand
  polygons, face 13, hair 2, torso skin 10 at the neck and neckline);
* ``image``: uint8 RGB with per-garment procedural textures (plain, stripes, checks, noise)
  over a background;
* ``person``: the OpenPose keypoints (body 18, face 70 on the head ellipse, hands 21+21) in
  pixels; keypoints outside the frame have confidence 0;
* ``densepose_i/u/v``: DensePose-like maps of the body (not the clothes) with the DensePose
  24-part indices (front view), U along a limb, V across it;
* ``mask``: the person mask (labels > 0).

Everything is deterministic given the ``numpy.random.Generator`` passed in, and vectorised
(cv2 polygons + numpy), about a millisecond per 256x160 sample.

Body coordinates are in "body units": the standing height from the top of the head to the
ankles is about 1. A pose places the neck at a fraction of the frame and gives the scale in
frame heights per body unit. Image x grows to the right, y downwards; the subject faces the
camera, so their RIGHT side is on the image's LEFT.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import cv2
import numpy as np

from ..models.core.schema import BODY, DENSEPOSE_PART, LABEL, NUM_FACE, NUM_HAND, Person

__all__ = [
    "DP_PART",
    "SyntheticBody",
    "SyntheticPose",
    "SyntheticSample",
    "random_body",
    "random_pose",
    "render",
    "random_pair",
    "skeleton",
    "with_width",
]

# Our body parts -> DensePose-COCO part indices (schema.DENSEPOSE_PART; front views, since the
# synthetic people face the camera).
DP_PART: dict[str, int] = {
    name: DENSEPOSE_PART[dp] for name, dp in {
        "torso": "torso_front", "right_hand": "right_hand", "left_hand": "left_hand",
        "left_foot": "left_foot", "right_foot": "right_foot",
        "right_thigh": "upper_leg_right_front", "left_thigh": "upper_leg_left_front",
        "right_shin": "lower_leg_right_front", "left_shin": "lower_leg_left_front",
        "left_upper_arm": "upper_arm_left_front", "right_upper_arm": "upper_arm_right_front",
        "left_forearm": "lower_arm_left_front", "right_forearm": "lower_arm_right_front",
        "head_right": "head_right", "head_left": "head_left",
    }.items()
}

TOPS = ("shirt", "dress", "coat")
BOTTOMS = ("pants", "shorts", "skirt")
TEXTURES = ("plain", "stripes", "checks", "noise")
HAIR_STYLES = ("short", "long", "bald")

_SHIFT = 4  # cv2 sub-pixel bits
_ONE = 1 << _SHIFT


@dataclass(frozen=True)
class Garment:
    """Colour (RGB 0..255), texture kind, texture scale (body units) and angle (radians)."""

    color: tuple[int, int, int]
    color2: tuple[int, int, int]
    texture: str = "plain"
    period: float = 0.05
    angle: float = 0.0


@dataclass(frozen=True)
class SyntheticBody:
    """Shape, clothes and colours of one synthetic person. Lengths in body units (height ~1)."""

    head_rx: float = 0.062
    head_ry: float = 0.08
    neck_len: float = 0.035
    torso_len: float = 0.30
    shoulder_half: float = 0.11
    hip_half: float = 0.075
    torso_width: float = 1.0  # multiplies the torso outline's half widths (belly, hips)
    upper_arm: float = 0.17
    forearm: float = 0.15
    hand_len: float = 0.08
    arm_width: float = 0.032  # half width at the shoulder
    thigh: float = 0.245
    shin: float = 0.235
    leg_width: float = 0.05  # half width at the hip
    foot_len: float = 0.06
    skin: tuple[int, int, int] = (224, 172, 140)
    hair_color: tuple[int, int, int] = (60, 40, 20)
    hair_style: str = "short"
    top: str = "shirt"
    sleeve: float = 0.5  # 0 none, 0.5 short, 1 long (fraction of the arm covered)
    neckline: float = 0.04  # depth of the visible torso-skin neckline (0 = none)
    bottom: str = "pants"
    top_garment: Garment = field(default_factory=lambda: Garment((40, 80, 160), (200, 200, 220)))
    inner_garment: Garment = field(default_factory=lambda: Garment((220, 220, 220), (180, 40, 40)))
    bottom_garment: Garment = field(default_factory=lambda: Garment((30, 30, 60), (90, 90, 120)))
    shoe_color: tuple[int, int, int] = (20, 20, 20)
    hat: bool = False
    hat_color: tuple[int, int, int] = (150, 30, 30)
    sunglasses: bool = False

    @property
    def height(self) -> float:
        """Head top to ankles in body units."""
        return 2 * self.head_ry + self.neck_len + self.torso_len + self.thigh + self.shin


@dataclass(frozen=True)
class SyntheticPose:
    """Joint angles (radians, 0 = pointing straight down, positive = towards image right) and
    framing: neck at (cx, cy) in frame fractions, ``scale`` frame heights per body unit."""

    torso: float = 0.0
    head: float = 0.0
    right_upper_arm: float = -0.25
    right_forearm: float = -0.15
    left_upper_arm: float = 0.25
    left_forearm: float = 0.15
    right_hand: float = -0.1
    left_hand: float = 0.1
    right_thigh: float = -0.06
    right_shin: float = -0.03
    left_thigh: float = 0.06
    left_shin: float = 0.03
    cx: float = 0.5
    cy: float = 0.22
    scale: float = 0.85
    finger_spread: float = 0.35


@dataclass
class SyntheticSample:
    """One rendered frame. Shapes: image (H, W, 3) uint8, labels (H, W) uint8 in 0..21,
    densepose_i (H, W) uint8 in 0..24, densepose_u/v (H, W) float32 in 0..1, mask (H, W) bool."""

    image: np.ndarray
    labels: np.ndarray
    person: Person
    densepose_i: np.ndarray
    densepose_u: np.ndarray
    densepose_v: np.ndarray
    mask: np.ndarray

    @property
    def iuv(self) -> np.ndarray:
        """(H, W, 3) float32: I/24, U, V (P2B's DensePose input)."""
        return np.stack([self.densepose_i.astype(np.float32) / 24.0, self.densepose_u,
                         self.densepose_v], axis=-1)


# --------------------------------------------------------------------------------------------
# Random bodies and poses
# --------------------------------------------------------------------------------------------


def _rand_color(rng: np.random.Generator, lo: int = 20, hi: int = 235) -> tuple[int, int, int]:
    return tuple(int(v) for v in rng.integers(lo, hi, size=3))  # type: ignore[return-value]


def _rand_garment(rng: np.random.Generator) -> Garment:
    return Garment(
        color=_rand_color(rng), color2=_rand_color(rng),
        texture=str(rng.choice(TEXTURES, p=[0.4, 0.25, 0.15, 0.2])),
        period=float(rng.uniform(0.025, 0.08)), angle=float(rng.uniform(0, math.pi)),
    )


_SKINS = np.array([[255, 219, 172], [241, 194, 125], [224, 172, 105], [198, 134, 66],
                   [141, 85, 36], [92, 58, 30], [232, 190, 172]], dtype=np.float32)


def random_body(rng: np.random.Generator) -> SyntheticBody:
    """A random body: proportions, widths, clothes and colours, all from ``rng``."""
    u = rng.uniform
    skin = _SKINS[rng.integers(len(_SKINS))] * u(0.9, 1.05, size=3)
    top = str(rng.choice(TOPS, p=[0.55, 0.2, 0.25]))
    bottom = "none" if top == "dress" else str(rng.choice(BOTTOMS, p=[0.55, 0.2, 0.25]))
    width = float(u(0.75, 1.45))
    return SyntheticBody(
        head_rx=float(u(0.052, 0.07)), head_ry=float(u(0.07, 0.088)),
        neck_len=float(u(0.025, 0.045)), torso_len=float(u(0.27, 0.33)),
        shoulder_half=float(u(0.085, 0.13)) * (0.85 + 0.15 * width),
        hip_half=float(u(0.06, 0.09)) * (0.8 + 0.2 * width),
        torso_width=width,
        upper_arm=float(u(0.15, 0.19)), forearm=float(u(0.13, 0.17)),
        hand_len=float(u(0.065, 0.09)),
        arm_width=float(u(0.024, 0.036)) * (0.8 + 0.2 * width),
        thigh=float(u(0.22, 0.27)), shin=float(u(0.21, 0.26)),
        leg_width=float(u(0.038, 0.056)) * (0.8 + 0.2 * width),
        foot_len=float(u(0.05, 0.07)),
        skin=tuple(int(v) for v in np.clip(skin, 0, 255)),  # type: ignore[arg-type]
        hair_color=_rand_color(rng, 10, 200),
        hair_style=str(rng.choice(HAIR_STYLES, p=[0.5, 0.4, 0.1])),
        top=top,
        sleeve=float(rng.choice([0.0, 0.45, 1.0], p=[0.25, 0.4, 0.35])) if top != "coat" else 1.0,
        neckline=float(rng.choice([0.0, u(0.02, 0.07)], p=[0.4, 0.6])),
        bottom=bottom,
        top_garment=_rand_garment(rng), inner_garment=_rand_garment(rng),
        bottom_garment=_rand_garment(rng),
        shoe_color=_rand_color(rng, 0, 120),
        hat=bool(rng.random() < 0.12), hat_color=_rand_color(rng),
        sunglasses=bool(rng.random() < 0.1),
    )


def random_pose(rng: np.random.Generator, body: SyntheticBody | None = None,
                kind: str = "full") -> SyntheticPose:
    """A random dance-like pose with framing.

    Args:
        kind: ``"full"`` (the whole body in the frame) or ``"upper"`` (waist-up framing: the
            legs leave the frame, as in a portrait photo).
    """
    if kind not in ("full", "upper"):
        raise ValueError(f"pose kind must be 'full' or 'upper', got {kind!r}")
    body = body or SyntheticBody()
    u = rng.uniform
    r_up = float(u(-2.6, 0.35))
    l_up = float(u(-0.35, 2.6))
    r_th = float(u(-0.55, 0.12))
    l_th = float(u(-0.12, 0.55))
    if kind == "full":
        scale = float(u(0.72, 0.86)) / body.height
        cy = 2 * body.head_ry * scale + body.neck_len * scale + float(u(0.04, 0.08))
    else:
        scale = float(u(1.35, 1.7)) / body.height
        cy = float(u(0.3, 0.4))
    return SyntheticPose(
        torso=float(u(-0.15, 0.15)), head=float(u(-0.25, 0.25)),
        right_upper_arm=r_up, right_forearm=r_up + float(u(-1.8, 0.6)),
        left_upper_arm=l_up, left_forearm=l_up + float(u(-0.6, 1.8)),
        right_hand=float(u(-0.5, 0.5)), left_hand=float(u(-0.5, 0.5)),
        right_thigh=r_th, right_shin=r_th + float(u(-0.1, 0.7)),
        left_thigh=l_th, left_shin=l_th - float(u(-0.1, 0.7)),
        cx=float(u(0.4, 0.6)), cy=cy, scale=scale,
        finger_spread=float(u(0.15, 0.5)),
    )


# --------------------------------------------------------------------------------------------
# Geometry
# --------------------------------------------------------------------------------------------


def _dir(a: float) -> np.ndarray:
    return np.array([math.sin(a), math.cos(a)])


def _perp(d: np.ndarray) -> np.ndarray:
    """Rotate a 'down' direction to its image-right perpendicular: (0,1) -> (1,0)."""
    return np.array([d[1], -d[0]])


def skeleton(body: SyntheticBody, pose: SyntheticPose, height: int, width: int
             ) -> dict[str, np.ndarray]:
    """Joint positions in pixels (float (2,) arrays) keyed by OpenPose body names, plus
    ``head_center``, ``mid_hip``, the head axes ``head_down``/``head_right`` and the limb
    widths in pixels (``w_arm``, ``w_leg``) as 0-d arrays."""
    s = pose.scale * height
    neck = np.array([pose.cx * width, pose.cy * height])
    d_t = _dir(pose.torso)
    p_t = _perp(d_t)
    j: dict[str, np.ndarray] = {"neck": neck}
    j["right_shoulder"] = neck - p_t * body.shoulder_half * s + d_t * 0.012 * s
    j["left_shoulder"] = neck + p_t * body.shoulder_half * s + d_t * 0.012 * s
    mid = neck + d_t * body.torso_len * s
    j["mid_hip"] = mid
    j["right_hip"] = mid - p_t * body.hip_half * s
    j["left_hip"] = mid + p_t * body.hip_half * s
    for side in ("right", "left"):
        j[f"{side}_elbow"] = j[f"{side}_shoulder"] + _dir(getattr(pose, f"{side}_upper_arm")) \
            * body.upper_arm * s
        j[f"{side}_wrist"] = j[f"{side}_elbow"] + _dir(getattr(pose, f"{side}_forearm")) \
            * body.forearm * s
        j[f"{side}_knee"] = j[f"{side}_hip"] + _dir(getattr(pose, f"{side}_thigh")) \
            * body.thigh * s
        j[f"{side}_ankle"] = j[f"{side}_knee"] + _dir(getattr(pose, f"{side}_shin")) \
            * body.shin * s
    d_h = _dir(pose.torso + pose.head)
    p_h = _perp(d_h)
    hc = neck - d_h * (body.neck_len + body.head_ry) * s
    j["head_center"] = hc
    j["head_down"] = d_h
    j["head_right"] = p_h
    rx, ry = body.head_rx * s, body.head_ry * s
    j["nose"] = hc + d_h * 0.25 * ry
    j["right_eye"] = hc - p_h * 0.38 * rx - d_h * 0.05 * ry
    j["left_eye"] = hc + p_h * 0.38 * rx - d_h * 0.05 * ry
    j["right_ear"] = hc - p_h * 0.98 * rx
    j["left_ear"] = hc + p_h * 0.98 * rx
    return j


def _face_points(hc: np.ndarray, down: np.ndarray, right: np.ndarray, rx: float,
                 ry: float) -> np.ndarray:
    """The 70 OpenPose face landmarks on the head ellipse. (70, 2) pixels."""
    loc = np.zeros((NUM_FACE, 2))  # (across in rx units, down in ry units); subject's right = -x
    t = np.linspace(math.pi, 0, 17)  # jaw from the subject's right ear round the chin
    loc[0:17] = np.stack([0.95 * np.cos(t), -0.05 + 0.95 * np.sin(t)], axis=1)
    xb = np.linspace(-0.75, -0.15, 5)
    loc[17:22] = np.stack([xb, -0.3 - 0.06 * np.sin(np.linspace(0, math.pi, 5))], axis=1)
    loc[22:27] = np.stack([-xb[::-1], loc[17:22, 1][::-1]], axis=1)
    loc[27:31] = np.stack([np.zeros(4), np.linspace(-0.12, 0.22, 4)], axis=1)
    loc[31:36] = np.stack([np.linspace(-0.18, 0.18, 5), np.full(5, 0.3)], axis=1)
    ang = np.linspace(0, 2 * math.pi, 6, endpoint=False) + math.pi
    for sl, cx in ((slice(36, 42), -0.38), (slice(42, 48), 0.38)):
        loc[sl] = np.stack([cx + 0.16 * np.cos(ang), -0.06 + 0.07 * np.sin(ang)], axis=1)
    ang = np.linspace(0, 2 * math.pi, 12, endpoint=False) + math.pi
    loc[48:60] = np.stack([0.33 * np.cos(ang), 0.55 + 0.1 * np.sin(ang)], axis=1)
    ang = np.linspace(0, 2 * math.pi, 8, endpoint=False) + math.pi
    loc[60:68] = np.stack([0.22 * np.cos(ang), 0.55 + 0.04 * np.sin(ang)], axis=1)
    loc[68] = (-0.38, -0.06)
    loc[69] = (0.38, -0.06)
    return hc + np.outer(loc[:, 0] * rx, right) + np.outer(loc[:, 1] * ry, down)


def _hand_points(wrist: np.ndarray, angle: float, length: float, spread: float,
                 thumb_side: float) -> np.ndarray:
    """21 OpenPose hand keypoints: wrist, then thumb, index, middle, ring, little (4 each)."""
    pts = np.zeros((NUM_HAND, 2))
    pts[0] = wrist
    d = _dir(angle)
    p = _perp(d)
    offsets = np.array([1.5, 0.5, 0.0, -0.5, -1.0]) * thumb_side  # thumb, index..little
    lengths = np.array([0.55, 0.95, 1.0, 0.93, 0.8])
    for f in range(5):
        a = angle + offsets[f] * spread * 0.5 * (1 if f else 1.4)
        fd = _dir(a)
        base = wrist + d * (0.25 if f == 0 else 0.45) * length + p * offsets[f] * 0.12 * length
        seg = (lengths[f] - (0.25 if f == 0 else 0.45)) * length / 3.0 + 1e-6
        for k in range(4):
            pts[1 + 4 * f + k] = base + fd * seg * k * (1.0 if f else 1.2)
    return pts


# --------------------------------------------------------------------------------------------
# Rasterisation helpers
# --------------------------------------------------------------------------------------------


def _fx(points: np.ndarray) -> np.ndarray:
    return np.round(np.asarray(points, dtype=np.float64) * _ONE).astype(np.int32).reshape(-1, 2)


def _poly(img: np.ndarray, points: np.ndarray, value: int) -> None:
    cv2.fillPoly(img, [_fx(points)], int(value), lineType=cv2.LINE_8, shift=_SHIFT)


def _disc(img: np.ndarray, c: np.ndarray, r: float, value: int) -> None:
    cv2.circle(img, tuple(int(v) for v in _fx(c)[0]), max(1, int(round(r * _ONE))), int(value),
               -1, lineType=cv2.LINE_8, shift=_SHIFT)


def _capsule_pts(a: np.ndarray, b: np.ndarray, wa: float, wb: float) -> np.ndarray:
    d = b - a
    n = float(np.hypot(*d)) or 1.0
    p = np.array([-d[1], d[0]]) / n
    return np.array([a + p * wa, b + p * wb, b - p * wb, a - p * wa])


def _capsule(img: np.ndarray, a: np.ndarray, b: np.ndarray, wa: float, wb: float,
             value: int) -> None:
    _poly(img, _capsule_pts(a, b, wa, wb), value)
    _disc(img, a, wa, value)
    _disc(img, b, wb, value)


def _ellipse_pts(c: np.ndarray, down: np.ndarray, right: np.ndarray, rx: float, ry: float,
                 v_min: float = -2.0, n: int = 48) -> np.ndarray:
    """Points of an ellipse (axes along right/down), clipped to local y >= v_min (ry units)."""
    t = np.linspace(0, 2 * math.pi, n, endpoint=False)
    x, y = np.cos(t), np.sin(t)
    y = np.maximum(y, v_min)
    return c + np.outer(x * rx, right) + np.outer(y * ry, down)


def _hull(points: np.ndarray, pad: float) -> np.ndarray:
    """Convex hull of points grown by ``pad`` pixels (as a polygon)."""
    hull = cv2.convexHull(points.astype(np.float32)).reshape(-1, 2).astype(np.float64)
    c = hull.mean(axis=0)
    d = hull - c
    n = np.maximum(np.hypot(d[:, 0], d[:, 1]), 1e-6)[:, None]
    return hull + d / n * pad


def _texture(g: Garment, h: int, w: int, px_per_unit: float, seed: int) -> np.ndarray:
    """(H, W, 3) float32 texture in image space."""
    c1 = np.array(g.color, np.float32)
    c2 = np.array(g.color2, np.float32)
    if g.texture == "plain":
        return np.broadcast_to(c1, (h, w, 3))
    period = max(g.period * px_per_unit, 3.0)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    ca, sa = math.cos(g.angle), math.sin(g.angle)
    if g.texture == "stripes":
        t = (np.sin((xx * ca + yy * sa) * (2 * math.pi / period)) > 0).astype(np.float32)
    elif g.texture == "checks":
        a = np.floor((xx * ca + yy * sa) / period) + np.floor((-xx * sa + yy * ca) / period)
        t = (a % 2).astype(np.float32)
    else:  # noise: smooth random blobs
        rng = np.random.default_rng(seed)
        gh, gw = max(2, int(h / period) + 2), max(2, int(w / period) + 2)
        t = cv2.resize(rng.random((gh, gw), dtype=np.float32), (w, h),
                       interpolation=cv2.INTER_CUBIC).clip(0, 1)
    return c1 + (c2 - c1) * t[..., None]


# --------------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------------


def _segment_uv(h: int, w: int, a: np.ndarray, b: np.ndarray, wa: float, wb: float
                ) -> tuple[np.ndarray, np.ndarray]:
    """U along the segment a->b (0..1), V across it (0..1, 0.5 on the axis), per pixel."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    d = (b - a).astype(np.float32)
    n2 = float(d @ d) or 1.0
    u = ((xx - a[0]) * d[0] + (yy - a[1]) * d[1]) / n2
    uc = np.clip(u, 0, 1)
    half = wa + (wb - wa) * uc + 1e-6
    cross = ((xx - a[0]) * -d[1] + (yy - a[1]) * d[0]) / math.sqrt(n2)
    v = np.clip(0.5 + 0.5 * cross / half, 0, 1)
    return uc.astype(np.float32), v.astype(np.float32)


def _torso_axes(j: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(unit vector neck -> mid-hip, its image-right perpendicular)."""
    d_t = (j["mid_hip"] - j["neck"]) / (np.hypot(*(j["mid_hip"] - j["neck"])) + 1e-6)
    return d_t, _perp(d_t)


def _draw_long_hair(lab: np.ndarray, body: SyntheticBody, j: dict[str, np.ndarray],
                    s: float) -> None:
    """Long hair, behind everything: from the head down past the neck."""
    hc, down, right = j["head_center"], j["head_down"], j["head_right"]
    rx, ry = body.head_rx * s, body.head_ry * s
    _poly(lab, np.array([hc - right * rx * 1.15 - down * ry * 0.3,
                         hc + right * rx * 1.15 - down * ry * 0.3,
                         j["neck"] + right * rx * 1.25 + down * ry * 1.2,
                         j["neck"] - right * rx * 1.25 + down * ry * 1.2]), LABEL["hair"])


def _draw_legs(lab: np.ndarray, dp: np.ndarray, body: SyntheticBody,
               j: dict[str, np.ndarray], s: float) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Legs (skin) and shoes into the labels, thighs, shins and feet into DensePose; returns
    each foot's (heel, toe)."""
    L = LABEL
    wl = body.leg_width * s
    feet: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for side, sign in (("right", -1.0), ("left", 1.0)):
        hip, knee, ank = j[f"{side}_hip"], j[f"{side}_knee"], j[f"{side}_ankle"]
        leg = L[f"{side}_leg"]
        _capsule(lab, hip, knee, wl, wl * 0.75, leg)
        _capsule(lab, knee, ank, wl * 0.75, wl * 0.5, leg)
        d_sh = (ank - knee) / (np.hypot(*(ank - knee)) + 1e-6)
        toe = ank + d_sh * 0.02 * s + np.array([sign, 0.0]) * body.foot_len * s
        feet[side] = (ank + d_sh * 0.01 * s, toe)
        _capsule(lab, feet[side][0], toe, wl * 0.55, wl * 0.45, L[f"{side}_shoe"])
        _capsule(dp, hip, knee, wl, wl * 0.75, DP_PART[f"{side}_thigh"])
        _capsule(dp, knee, ank, wl * 0.75, wl * 0.5, DP_PART[f"{side}_shin"])
        _capsule(dp, feet[side][0], toe, wl * 0.5, wl * 0.4, DP_PART[f"{side}_foot"])
    return feet


def _draw_trousers(lab: np.ndarray, body: SyntheticBody, j: dict[str, np.ndarray],
                   s: float) -> None:
    """Pants (to the ankles) or shorts (part of the thighs), and the crotch between them."""
    L = LABEL
    wl = body.leg_width * s
    frac = 1.0 if body.bottom == "pants" else 0.45
    for side in ("right", "left"):
        hip, knee, ank = j[f"{side}_hip"], j[f"{side}_knee"], j[f"{side}_ankle"]
        _capsule(lab, hip, knee if frac >= 0.99 else hip + (knee - hip) * frac * 2,
                 wl * 1.12, wl * (0.9 if frac >= 0.99 else 1.0), L["pants"])
        if frac >= 0.99:
            end = knee + (ank - knee) * 0.88
            _capsule(lab, knee, end, wl * 0.9, wl * 0.68, L["pants"])
    _poly(lab, np.array([j["right_hip"] - (j["mid_hip"] - j["right_hip"]) * 0.25,
                         j["left_hip"] + (j["left_hip"] - j["mid_hip"]) * 0.25,
                         (j["left_hip"] + j["left_knee"]) / 2,
                         (j["right_hip"] + j["right_knee"]) / 2]), L["pants"])


def _draw_skirt(lab: np.ndarray, body: SyntheticBody, j: dict[str, np.ndarray],
                s: float) -> None:
    """A skirt, or a dress's lower part: a flared quad from the hips towards the knees."""
    L = LABEL
    wl = body.leg_width * s
    tw = body.torso_width
    label = L["skirt"] if body.bottom == "skirt" else L["dress"]
    d_t, p_t = _torso_axes(j)
    hem = 0.55 if body.bottom == "skirt" else 0.7
    kr = j["right_hip"] + (j["right_knee"] - j["right_hip"]) * hem * 1.4
    kl = j["left_hip"] + (j["left_knee"] - j["left_hip"]) * hem * 1.4
    flare = 1.15 * tw
    _poly(lab, np.array([j["right_hip"] - p_t * wl * 0.9 * tw - d_t * 0.02 * s,
                         j["left_hip"] + p_t * wl * 0.9 * tw - d_t * 0.02 * s,
                         kl + p_t * wl * flare, kr - p_t * wl * flare]), label)


def _draw_torso(lab: np.ndarray, dp: np.ndarray, body: SyntheticBody,
                j: dict[str, np.ndarray], s: float) -> int:
    """Neck skin, the top (shirt, dress or open coat over a shirt) and the neckline into the
    labels, the torso into DensePose; returns the top's label (for the sleeves)."""
    L = LABEL
    rx = body.head_rx * s
    wa, wl = body.arm_width * s, body.leg_width * s
    tw = body.torso_width
    d_t, p_t = _torso_axes(j)
    waist = j["neck"] + (j["mid_hip"] - j["neck"]) * 0.62
    half_sh = np.hypot(*(j["left_shoulder"] - j["neck"]))
    half_hip = np.hypot(*(j["left_hip"] - j["mid_hip"]))
    torso_poly = np.array([
        j["right_shoulder"] - p_t * wa * 0.6 - d_t * wa * 0.3,
        j["neck"] - d_t * wa * 0.2,
        j["left_shoulder"] + p_t * wa * 0.6 - d_t * wa * 0.3,
        j["left_shoulder"] + p_t * wa * 0.5 + d_t * wa * 2.0,
        waist + p_t * (half_sh * 0.78 * tw),
        j["mid_hip"] + p_t * (half_hip + wl * 0.8) + d_t * 0.02 * s,
        j["mid_hip"] - p_t * (half_hip + wl * 0.8) + d_t * 0.02 * s,
        waist - p_t * (half_sh * 0.78 * tw),
        j["right_shoulder"] - p_t * wa * 0.5 + d_t * wa * 2.0,
    ])
    top_label = {"shirt": L["upper_clothes"], "dress": L["dress"], "coat": L["coat"]}[body.top]
    # neck skin
    _capsule(lab, j["neck"] + d_t * 0.01 * s, j["head_center"], rx * 0.42, rx * 0.42,
             L["torso_skin"])
    _poly(dp, torso_poly, DP_PART["torso"])
    _poly(lab, torso_poly, top_label)
    if body.top == "coat":  # the open front shows the shirt underneath
        _poly(lab, np.array([j["neck"] - p_t * rx * 0.5, j["neck"] + p_t * rx * 0.5,
                             j["mid_hip"] + p_t * rx * 0.25, j["mid_hip"] - p_t * rx * 0.25]),
              L["upper_clothes"])
        # the coat goes below the hips
        _poly(lab, np.array([j["mid_hip"] - p_t * (half_hip + wl),
                             j["mid_hip"] + p_t * (half_hip + wl),
                             j["mid_hip"] + p_t * (half_hip + wl * 1.1) + d_t * 0.1 * s,
                             j["mid_hip"] - p_t * (half_hip + wl * 1.1) + d_t * 0.1 * s]),
              L["coat"])
    if body.neckline > 0:
        _poly(lab, np.array([j["neck"] - p_t * rx * 0.6, j["neck"] + p_t * rx * 0.6,
                             j["neck"] + d_t * body.neckline * s]), L["torso_skin"])
    return top_label


def _draw_head(lab: np.ndarray, dp: np.ndarray, body: SyntheticBody,
               j: dict[str, np.ndarray], s: float) -> None:
    """Hair, face, hat and sunglasses into the labels; the head into DensePose (split into
    its halves later)."""
    L = LABEL
    hc, down, right = j["head_center"], j["head_down"], j["head_right"]
    rx, ry = body.head_rx * s, body.head_ry * s
    _poly(dp, _ellipse_pts(hc, down, right, rx, ry), DP_PART["head_right"])
    if body.hair_style != "bald":
        _poly(lab, _ellipse_pts(hc - down * ry * 0.06, down, right, rx * 1.1, ry * 1.06),
              L["hair"])
    hairline = -0.42 if body.hair_style != "bald" else -2.0
    _poly(lab, _ellipse_pts(hc, down, right, rx, ry, v_min=hairline), L["face"])
    if body.hat:
        _poly(lab, np.array([hc - right * rx * 1.25 - down * ry * 0.5,
                             hc + right * rx * 1.25 - down * ry * 0.5,
                             hc + right * rx * 0.9 - down * ry * 1.35,
                             hc - right * rx * 0.9 - down * ry * 1.35]), L["hat"])
    if body.sunglasses:
        for cx in (-0.38, 0.38):
            _poly(lab, _ellipse_pts(hc + right * rx * cx - down * ry * 0.06, down, right,
                                    rx * 0.24, ry * 0.13, n=16), L["sunglasses"])


def _draw_arms(lab: np.ndarray, dp: np.ndarray, body: SyntheticBody,
               j: dict[str, np.ndarray], s: float, hands: dict[str, np.ndarray],
               top_label: int) -> None:
    """Arms (in front of the torso), sleeves of the top and hands, into labels and
    DensePose."""
    L = LABEL
    wa = body.arm_width * s
    for side in ("right", "left"):
        sh, el, wr = j[f"{side}_shoulder"], j[f"{side}_elbow"], j[f"{side}_wrist"]
        arm = L[f"{side}_arm"]
        _capsule(lab, sh, el, wa, wa * 0.8, arm)
        _capsule(lab, el, wr, wa * 0.8, wa * 0.6, arm)
        _capsule(dp, sh, el, wa, wa * 0.8, DP_PART[f"{side}_upper_arm"])
        _capsule(dp, el, wr, wa * 0.8, wa * 0.6, DP_PART[f"{side}_forearm"])
        if body.sleeve > 0:
            sl = top_label if body.top != "dress" else L["dress"]
            if body.sleeve >= 0.99:
                _capsule(lab, sh, el, wa * 1.15, wa * 0.95, sl)
                _capsule(lab, el, el + (wr - el) * 0.9, wa * 0.95, wa * 0.75, sl)
            else:
                _capsule(lab, sh, sh + (el - sh) * body.sleeve * 2 * 0.55, wa * 1.2, wa * 1.05,
                         sl)
        hp = hands[side]
        hand_poly = _hull(hp, wa * 0.35)
        _poly(lab, hand_poly, L[f"{side}_hand"])
        _poly(dp, hand_poly, DP_PART[f"{side}_hand"])


def _keypoints(j: dict[str, np.ndarray], face: np.ndarray, hands: dict[str, np.ndarray],
               w: int, h: int) -> Person:
    """The drawn person's keypoints (confidence 1), those outside the frame dropped."""
    kp_body = np.zeros((18, 3), np.float32)
    for name, idx in BODY.items():
        x, y = j[name]
        kp_body[idx] = (x, y, 1.0)
    person = Person(body=kp_body, face=_with_conf(face), left_hand=_with_conf(hands["left"]),
                    right_hand=_with_conf(hands["right"]))
    return _clip_to_frame(person, w, h)


def render(body: SyntheticBody, pose: SyntheticPose, height: int, width: int,
           background: np.ndarray | None = None, *, seed: int = 0) -> SyntheticSample:
    """Rasterise ``body`` in ``pose`` into a (height, width) frame.

    Args:
        background: uint8 RGB (height, width, 3); None draws a soft two-colour gradient.
        seed: seeds the noise textures and the default background (same seed, same image).
    Returns:
        a :class:`SyntheticSample`.
    """
    if height < 8 or width < 8:
        raise ValueError(f"synthetic frames must be at least 8x8, got {width}x{height}")
    h, w = int(height), int(width)
    j = skeleton(body, pose, h, w)
    s = pose.scale * h
    lab = np.zeros((h, w), np.uint8)
    dp = np.zeros((h, w), np.uint8)

    # Hands and face keypoints (needed for drawing the hand labels).
    hands: dict[str, np.ndarray] = {}
    for side, sign in (("right", -1.0), ("left", 1.0)):
        fore = getattr(pose, f"{side}_forearm")
        hands[side] = _hand_points(j[f"{side}_wrist"], fore + getattr(pose, f"{side}_hand"),
                                   body.hand_len * s, pose.finger_spread, -sign)
    face = _face_points(j["head_center"], j["head_down"], j["head_right"], body.head_rx * s,
                        body.head_ry * s)

    # Back to front: each layer paints over the ones before it.
    if body.hair_style == "long":
        _draw_long_hair(lab, body, j, s)
    feet = _draw_legs(lab, dp, body, j, s)
    if body.bottom in ("pants", "shorts"):
        _draw_trousers(lab, body, j, s)
    if body.bottom == "skirt" or body.top == "dress":
        _draw_skirt(lab, body, j, s)
    top_label = _draw_torso(lab, dp, body, j, s)
    _draw_head(lab, dp, body, j, s)
    _draw_arms(lab, dp, body, j, s, hands, top_label)

    # DensePose: split the head into right/left halves, U/V per part
    dpi, dpu, dpv = _densepose_uv(dp, j, body, pose, h, w, feet, hands)
    person = _keypoints(j, face, hands, w, h)
    image = _paint(lab, body, pose, h, w, s, background, seed, person)
    return SyntheticSample(image=image, labels=lab, person=person, densepose_i=dpi,
                           densepose_u=dpu, densepose_v=dpv, mask=lab > 0)


def _with_conf(pts: np.ndarray) -> np.ndarray:
    return np.concatenate([pts, np.ones((len(pts), 1))], axis=1).astype(np.float32)


def _clip_to_frame(p: Person, w: int, h: int) -> Person:
    def f(a: np.ndarray) -> np.ndarray:
        out = a.copy()
        bad = (out[:, 0] < 0) | (out[:, 0] > w - 1) | (out[:, 1] < 0) | (out[:, 1] > h - 1)
        out[bad] = 0.0
        return out
    return Person(f(p.body), f(p.face), f(p.left_hand), f(p.right_hand))


def _densepose_uv(dp: np.ndarray, j: dict[str, np.ndarray], body: SyntheticBody,
                  pose: SyntheticPose, h: int, w: int,
                  feet: dict[str, tuple[np.ndarray, np.ndarray]],
                  hands: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    s = pose.scale * h
    wa, wl = body.arm_width * s, body.leg_width * s
    u = np.zeros((h, w), np.float32)
    v = np.zeros((h, w), np.float32)
    segs = {
        "right_upper_arm": (j["right_shoulder"], j["right_elbow"], wa, wa * 0.8),
        "left_upper_arm": (j["left_shoulder"], j["left_elbow"], wa, wa * 0.8),
        "right_forearm": (j["right_elbow"], j["right_wrist"], wa * 0.8, wa * 0.6),
        "left_forearm": (j["left_elbow"], j["left_wrist"], wa * 0.8, wa * 0.6),
        "right_thigh": (j["right_hip"], j["right_knee"], wl, wl * 0.75),
        "left_thigh": (j["left_hip"], j["left_knee"], wl, wl * 0.75),
        "right_shin": (j["right_knee"], j["right_ankle"], wl * 0.75, wl * 0.5),
        "left_shin": (j["left_knee"], j["left_ankle"], wl * 0.75, wl * 0.5),
        "right_foot": (*feet["right"], wl * 0.5, wl * 0.4),
        "left_foot": (*feet["left"], wl * 0.5, wl * 0.4),
        "right_hand": (hands["right"][0], hands["right"][12], wa, wa),
        "left_hand": (hands["left"][0], hands["left"][12], wa, wa),
        "torso": (j["neck"], j["mid_hip"], body.shoulder_half * s * body.torso_width,
                  body.hip_half * s * 1.6),
    }
    for name, (a, b, w0, w1) in segs.items():
        m = dp == DP_PART[name]
        if not m.any():
            continue
        ys, xs = np.nonzero(m)
        y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
        off = np.array([x0, y0], np.float64)
        uu, vv = _segment_uv(y1 - y0, x1 - x0, a - off, b - off, w0, w1)
        sub = m[y0:y1, x0:x1]
        u[y0:y1, x0:x1][sub] = uu[sub]
        v[y0:y1, x0:x1][sub] = vv[sub]
    # head: U down the head axis, V across; left half of the subject (image right) is 24
    m = dp == DP_PART["head_right"]
    if m.any():
        ys, xs = np.nonzero(m)
        rel = np.stack([xs, ys], axis=1) - j["head_center"]
        rx, ry = body.head_rx * s, body.head_ry * s
        across = rel @ j["head_right"] / rx
        along = rel @ j["head_down"] / ry
        u[ys, xs] = np.clip(0.5 + 0.5 * along, 0, 1)
        v[ys, xs] = np.clip(0.5 + 0.5 * across, 0, 1)
        dp[ys[across > 0], xs[across > 0]] = DP_PART["head_left"]
    return dp, u, v


def _paint(lab: np.ndarray, body: SyntheticBody, pose: SyntheticPose, h: int, w: int, s: float,
           background: np.ndarray | None, seed: int, person: Person) -> np.ndarray:
    if background is not None:
        bg = np.asarray(background)
        if bg.shape[:2] != (h, w) or bg.ndim != 3 or bg.shape[2] != 3:
            raise ValueError(f"background must be uint8 ({h}, {w}, 3), got {bg.shape}")
        img = bg.astype(np.float32).copy()
    else:
        rng = np.random.default_rng(seed + 7919)
        c1, c2 = rng.integers(40, 230, size=(2, 3)).astype(np.float32)
        t = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]
        img = np.broadcast_to(c1 + (c2 - c1) * t, (h, w, 3)).copy()
    L = LABEL
    skin = np.array(body.skin, np.float32)
    flat = {
        L["hair"]: body.hair_color, L["hat"]: body.hat_color, L["sunglasses"]: (15, 15, 20),
        L["left_shoe"]: body.shoe_color, L["right_shoe"]: body.shoe_color,
        L["socks"]: (230, 230, 230),
    }
    for k in ("face", "torso_skin", "left_arm", "right_arm", "left_leg", "right_leg",
              "left_hand", "right_hand"):
        flat[L[k]] = tuple(skin)
    for lid, col in flat.items():
        m = lab == lid
        if m.any():
            img[m] = col
    garments = {L["upper_clothes"]: body.inner_garment if body.top == "coat" else body.top_garment,
                L["dress"]: body.top_garment, L["coat"]: body.top_garment,
                L["pants"]: body.bottom_garment, L["skirt"]: body.bottom_garment}
    for lid, g in garments.items():
        m = lab == lid
        if not m.any():
            continue
        ys, xs = np.nonzero(m)
        y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
        tex = _texture(g, y1 - y0, x1 - x0, s, seed + lid)
        img[ys, xs] = tex[ys - y0, xs - x0]
    # a few facial features so the face is a face
    f = person.face
    for idx in (68, 69):
        if f[idx, 2] > 0:
            cv2.circle(img, (int(f[idx, 0]), int(f[idx, 1])), max(1, int(0.012 * s)),
                       (30, 30, 30), -1)
    lips = f[48:60]
    if (lips[:, 2] > 0).all():
        cv2.fillPoly(img, [np.round(lips[:, :2]).astype(np.int32)], (170, 60, 60))
    # soft shading: darker towards the silhouette edge
    person_mask = (lab > 0).astype(np.uint8)
    if person_mask.any():
        dist = cv2.distanceTransform(person_mask, cv2.DIST_L2, 3)
        shade = 0.75 + 0.25 * np.clip(dist / max(2.0, 0.02 * s), 0, 1)
        img = np.where(person_mask[..., None] > 0, img * shade[..., None], img)
    return np.clip(img, 0, 255).astype(np.uint8)


def random_pair(rng: np.random.Generator, height: int, width: int, *, kind: str = "full",
                body: SyntheticBody | None = None) -> tuple[SyntheticBody, SyntheticSample,
                                                               SyntheticSample]:
    """One body in two random poses: (body, source sample, driver sample).

    This is P2B's training pair: the source gives p*, the driver gives the pose inputs and the
    parsing to predict.
    """
    body = body or random_body(rng)
    seed = int(rng.integers(1 << 30))
    a = render(body, random_pose(rng, body, kind), height, width, seed=seed)
    b = render(body, random_pose(rng, body, kind), height, width, seed=seed)
    return body, a, b


def with_width(body: SyntheticBody, factor: float) -> SyntheticBody:
    """The same body made ``factor`` times wider (waist, hip joints, limbs; the shoulder
    joints and every limb length stay)."""
    return replace(body, torso_width=body.torso_width * factor, hip_half=body.hip_half * factor,
                   arm_width=body.arm_width * factor, leg_width=body.leg_width * factor)
