"""Weightless human parsing: person mask + keypoints + colour -> the 22-label schema (SPEC §4).

No network. Each person pixel is given to the nearest body part (head, torso, upper arm,
forearm, thigh, shin, foot, hand), measured as the distance to the part's geometry divided by
the part's width, so thin limbs do not steal pixels from the torso:

- head: an ellipse from the face landmarks (iBUG jaw + eyebrows, extended up to the hairline),
  or from nose/eyes/ears when there is no face;
- torso: the shoulder-hip polygon (hips extrapolated down the body when the photo is cut at the
  waist);
- limbs: capsules along shoulder-elbow-wrist and hip-knee-ankle; feet below the ankles;
- hands: the hand keypoints (or a hand derived from the forearm, SPEC §6).

Colour then separates skin from clothes: skin is modelled from the face (the cheeks and nose
between the eyes and the mouth) as a Gaussian in CIE Lab, clothes from the torso. Inside each
part: skin -> face / torso-skin / arm / leg, otherwise -> hair (head, above the jaw), upper
clothes (torso, sleeves), pants (legs) or shoes (feet). Everything stays inside the person mask.

A grayscale photo (R = G = B, e.g. a black-and-white portrait given as RGB) has no chroma to
tell skin from clothes: the colour models then use luminance only (the skin model's L from the
face; without a face nothing is called skin rather than every mid-grey garment), on purpose
rather than by the accident of a flat a/b plane far from the generic skin prior.

Large images are parsed at a working resolution (long side ``work_side``) and the labels are
resized back with nearest neighbour.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import cv2
import numpy as np

from ..core.schema import BODY, LABEL, Person
from .base import fill_missing_hands, mask_from_keypoints
from .hands import hand_regions, hand_size

logger = logging.getLogger(__name__)

WORK_SIDE = 768
SKIN_DISTANCE = 3.0  # Mahalanobis radius of the skin model (Lab)
HAIR_REACH = 1.35  # hair lies within this many head radii of the head centre (not the collar)
# Part widths as fractions of the body scale (shoulder width).
RADIUS = {"upper_arm": 0.22, "forearm": 0.18, "thigh": 0.3, "shin": 0.22, "foot": 0.26,
          "torso": 0.25, "hand": 0.2}
# Generic skin prior in Lab (OpenCV 8-bit scale: a, b offset by 128) when there is no face.
_PRIOR_SKIN_MEAN = np.array([160.0, 145.0, 150.0])
_PRIOR_SKIN_STD = np.array([45.0, 8.0, 10.0])


GRAY_TOLERANCE = 2  # 8-bit levels R, G and B may differ by in a grayscale photo (JPEG noise)


def is_grayscale(rgb: np.ndarray, tol: int = GRAY_TOLERANCE) -> bool:
    """True when R, G and B agree within ``tol`` at every pixel (sampled on a 2-pixel grid)."""
    if rgb.ndim != 3 or rgb.shape[2] < 3:
        return True
    s = rgb[::2, ::2, :3].astype(np.int16)
    return bool(np.abs(s[..., 0] - s[..., 1]).max() <= tol
                and np.abs(s[..., 1] - s[..., 2]).max() <= tol)


def _seg_dist(px: np.ndarray, py: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distance of every grid point to the segment a-b (float32 grid)."""
    d = b - a
    L2 = float(d @ d)
    if L2 < 1e-6:
        return np.hypot(px - a[0], py - a[1])
    t = np.clip(((px - a[0]) * d[0] + (py - a[1]) * d[1]) / L2, 0.0, 1.0)
    return np.hypot(px - (a[0] + t * d[0]), py - (a[1] + t * d[1]))


def _poly_dist(poly: np.ndarray, h: int, w: int) -> np.ndarray:
    """0 inside the convex polygon, Euclidean distance to it outside (float32 (h, w))."""
    canvas = np.zeros((h, w), dtype=np.uint8)
    cv2.fillConvexPoly(canvas, cv2.convexHull(np.round(poly).astype(np.int32)), 1)
    return cv2.distanceTransform(1 - canvas, cv2.DIST_L2, 3)


class _Body:
    """Keypoint geometry of one person in working-resolution pixels."""

    def __init__(self, person: Person, h: int, w: int, threshold: float) -> None:
        self.p, self.h, self.w, self.t = person, h, w, threshold
        kp = person.body
        self.ok = kp[:, 2] > threshold
        self.kp = kp[:, :2].astype(np.float64)
        face = person.face
        self.face_ok = face[:68, 2] > threshold
        self.scale = self._scale()

    def pt(self, name: str) -> np.ndarray | None:
        i = BODY[name]
        return self.kp[i] if self.ok[i] else None

    def _scale(self) -> float:
        ls, rs = self.pt("left_shoulder"), self.pt("right_shoulder")
        if ls is not None and rs is not None and np.hypot(*(ls - rs)) > 2:
            return float(np.hypot(*(ls - rs)))
        neck = self.pt("neck")
        for hip in ("left_hip", "right_hip"):
            hp = self.pt(hip)
            if neck is not None and hp is not None:
                return float(np.hypot(*(neck - hp))) / 1.5
        if self.face_ok.sum() >= 17:
            jaw = self.p.face[:17, :2]
            return float(np.ptp(jaw[:, 0])) * 2.2
        pts = self.kp[self.ok]
        if len(pts) >= 2:
            return max(float(np.ptp(pts, axis=0).max()) / 3.0, 4.0)
        return max(min(self.h, self.w) / 6.0, 4.0)

    def down(self) -> np.ndarray:
        """Unit vector from the head towards the hips (image down if unknown)."""
        neck = self.pt("neck")
        hips = [p for p in (self.pt("left_hip"), self.pt("right_hip")) if p is not None]
        if neck is not None and hips:
            v = np.mean(hips, axis=0) - neck
            if np.hypot(*v) > 1:
                return v / np.hypot(*v)
        nose = self.pt("nose")
        if neck is not None and nose is not None and np.hypot(*(neck - nose)) > 1:
            v = neck - nose
            return v / np.hypot(*v)
        return np.array([0.0, 1.0])

    def hips(self) -> tuple[np.ndarray | None, np.ndarray | None, bool]:
        """(left hip, right hip, extrapolated?) — hips below the shoulders when undetected."""
        lh, rh = self.pt("left_hip"), self.pt("right_hip")
        ls, rs = self.pt("left_shoulder"), self.pt("right_shoulder")
        if lh is not None and rh is not None:
            return lh, rh, False
        torso_len = 1.5 * self.scale
        d = self.down()
        if lh is None and ls is not None:
            lh = ls + d * torso_len
        if rh is None and rs is not None:
            rh = rs + d * torso_len
        return lh, rh, True


def _face_geometry(body: _Body) -> dict | None:
    """Face polygon, head centre/radius and the face's up vector, or None without a face."""
    face = body.p.face[:68]
    ok = body.face_ok
    if ok[:17].sum() >= 9 and ok[17:27].sum() >= 6:
        jaw = face[:17][ok[:17], :2].astype(np.float64)
        brows = face[17:27][ok[17:27], :2].astype(np.float64)
        chin = face[8, :2] if ok[8] else jaw[len(jaw) // 2]
        brow_c = brows.mean(0)
        up = brow_c - chin
        face_h = float(np.hypot(*up))
        if face_h < 2:
            return None
        up = up / face_h
        forehead = brows + up * 0.35 * face_h
        center = brow_c + up * 0.1 * face_h  # the skull's centre, about the brow line
        cheeks = [i for i in (1, 2, 3, 29, 30, 13, 14, 15, 31, 35, 33) if ok[i]]
        skin_pts = face[cheeks, :2] if len(cheeks) >= 4 else None
        return dict(core=np.concatenate([jaw, brows]), forehead=np.concatenate([brows, forehead]),
                    center=center, radius=0.8 * face_h, up=up, chin=chin, face_h=face_h,
                    skin_pts=skin_pts)
    pts = [body.pt(n) for n in ("nose", "left_eye", "right_eye", "left_ear", "right_ear")]
    pts = [p for p in pts if p is not None]
    if not pts:
        return None
    c = np.mean(pts, axis=0)
    le, re = body.pt("left_eye"), body.pt("right_eye")
    lr, rr = body.pt("left_ear"), body.pt("right_ear")
    if lr is not None and rr is not None:
        width = float(np.hypot(*(lr - rr)))
    elif le is not None and re is not None:
        width = 2.2 * float(np.hypot(*(le - re)))
    else:
        width = 0.45 * body.scale
    width = max(width, 3.0)
    up = -body.down()
    face_h = 1.3 * width
    skin_pts = None
    nose = body.pt("nose")
    if nose is not None and le is not None and re is not None:
        # a small patch on the nose bridge and cheeks: between the eyes and below them
        eye_d = float(np.hypot(*(le - re)))
        mid = (le + re) / 2
        skin_pts = np.array([mid + (nose - mid) * 0.3 + (le - re) * 0.25,
                             mid + (nose - mid) * 0.3 - (le - re) * 0.25,
                             nose - (le - re) * 0.2, nose + (le - re) * 0.2])
        if eye_d < 4:
            skin_pts = None
    chin = c - up * 0.55 * face_h
    ang = np.linspace(0, 2 * np.pi, 24, endpoint=False)
    right = np.array([up[1], -up[0]])
    core = c + np.outer(np.cos(ang), right) * width / 2 + np.outer(np.sin(ang), up) * face_h * 0.5
    forehead = core[np.sin(ang) > 0] + up * 0.2 * face_h
    # Ears without nose and eyes: the person shows the back of the head (hair, not face).
    back = body.pt("nose") is None and le is None and re is None
    return dict(core=core, forehead=forehead, center=c + up * 0.1 * face_h, radius=0.85 * face_h,
                up=up, chin=chin, face_h=face_h, skin_pts=skin_pts, back=back)


class _Gaussian:
    """A diagonal-plus-floor Gaussian colour model in Lab."""

    def __init__(self, mean: np.ndarray, cov: np.ndarray) -> None:
        self.mean = mean
        self.icov = np.linalg.inv(cov)

    @classmethod
    def fit(cls, samples: np.ndarray, floor: np.ndarray) -> _Gaussian:
        mean = np.median(samples, axis=0)
        cov = np.cov(samples.T) if len(samples) > 3 else np.zeros((3, 3))
        cov = cov + np.diag(floor ** 2)
        return cls(mean, cov)

    def distance(self, lab: np.ndarray) -> np.ndarray:
        d = lab - self.mean
        return np.sqrt(np.einsum("...i,ij,...j->...", d, self.icov, d))


def _skin_model(lab: np.ndarray, person_mask: np.ndarray, geom: dict | None,
                h: int, w: int, gray: bool = False) -> _Gaussian | None:
    """The skin colour model from the face's cheeks and nose, else a generic prior; for a
    grayscale photo a luminance-only model from the face, or None (no skin) without one."""
    if geom is not None and geom["skin_pts"] is not None:
        region = np.zeros((h, w), dtype=np.uint8)
        cv2.fillConvexPoly(region, cv2.convexHull(np.round(geom["skin_pts"]).astype(np.int32)), 1)
        region = region.astype(bool) & person_mask
        samples = lab[region]
        if len(samples) >= 20:
            # Drop the darkest and brightest tenth (nostrils, eyes, highlights).
            lum = samples[:, 0]
            lo, hi = np.percentile(lum, [10, 90])
            samples = samples[(lum >= lo) & (lum <= hi)]
            if gray:  # luminance only: the chroma planes are flat, fit no width there
                return _Gaussian.fit(samples, floor=np.array([14.0, 1.0, 1.0]))
            return _Gaussian.fit(samples, floor=np.array([18.0, 3.0, 3.0]))
    if gray:
        return None
    return _Gaussian(_PRIOR_SKIN_MEAN, np.diag(_PRIOR_SKIN_STD ** 2))


def _split_waist(out: np.ndarray, lab: np.ndarray, skin: np.ndarray, where, body: _Body,
                 py: np.ndarray, px: np.ndarray) -> None:
    """Move the waistband between upper and lower clothes by colour, in place.

    The hip keypoints sit below the waist, so trousers show inside the torso polygon and a
    long top hangs over the thighs. When the thighs' clothes and the chest's clothes have
    clearly different colours, lower-torso pixels that look like the trousers become pants
    and thigh pixels that look like the top become upper clothes.
    """
    torso = where("torso")
    thighs = where("left_thigh") | where("right_thigh")
    if not torso.any() or not thighs.any():
        return
    ls, rs = body.pt("left_shoulder"), body.pt("right_shoulder")
    lh, rh = body.pt("left_hip"), body.pt("right_hip")
    if ls is None or rs is None or lh is None or rh is None:
        return
    top, hip = (ls + rs) / 2, (lh + rh) / 2
    axis = hip - top
    length = float(np.hypot(*axis))
    if length < 4:
        return
    # 0 at the shoulders, 1 at the hips, along the body
    t = ((px - top[0]) * axis[0] + (py - top[1]) * axis[1]) / (length * length)
    chest = torso & ~skin & (t < 0.5)
    legs = thighs & ~skin & (t > 1.1)
    if chest.sum() < 50 or legs.sum() < 50:
        return
    floor = np.array([10.0, 4.0, 4.0])
    shirt = _Gaussian.fit(lab[chest], floor)
    pants = _Gaussian.fit(lab[legs], floor)
    if shirt.distance(pants.mean[None])[0] < 4.0:  # same colour: nothing to tell apart
        return
    d_shirt, d_pants = shirt.distance(lab), pants.distance(lab)
    lower = torso & ~skin & (t > 0.6) & (d_pants < d_shirt)
    out[lower] = LABEL["pants"]
    over = thighs & ~skin & (t < 1.4) & (d_shirt < d_pants)
    out[over] = LABEL["upper_clothes"]


def parse_geometric(rgb: np.ndarray, person: Person, mask: np.ndarray | None = None, *,
                    threshold: float = 0.05, work_side: int = WORK_SIDE) -> np.ndarray:
    """Parse one person without weights.

    Args:
        rgb: uint8 (H, W, 3).
        person: keypoints in pixels of ``rgb`` (body 18, face 70, hands 21+21; missing hands
            are derived from the forearm).
        mask: person segmentation (H, W) in 0..1 (> 0.5 = person); None draws a rough one from
            the keypoints.
        threshold: keypoint confidence below which a keypoint counts as missing.
        work_side: the long side the parsing is computed at (speed on large images).
    Returns:
        uint8 (H, W) labels in the 22-label schema.
    """
    H, W = rgb.shape[:2]
    s = min(1.0, work_side / max(H, W))
    h, w = max(1, round(H * s)), max(1, round(W * s))
    small = cv2.resize(rgb, (w, h), interpolation=cv2.INTER_AREA) if s < 1 else rgb
    p = person.scaled(w / W, h / H)
    fill_missing_hands(p, threshold=threshold)  # in place, on the scaled copy
    if mask is None:
        m = mask_from_keypoints(p, h, w, threshold=threshold) > 0.5
    else:
        m = np.asarray(mask, dtype=np.float32)
        if m.shape != (h, w):
            m = cv2.resize(m, (w, h), interpolation=cv2.INTER_LINEAR)
        m = m > 0.5
    labels = _parse(small, p, m, threshold)
    if (h, w) != (H, W):
        labels = cv2.resize(labels, (W, H), interpolation=cv2.INTER_NEAREST)
    return labels


def _torso_distance(body: _Body, px: np.ndarray, py: np.ndarray, h: int, w: int
                    ) -> np.ndarray | None:
    """Distance to the torso polygon (shoulders, hips, neck; a segment with two of them) in
    torso widths, or None with fewer than two points."""
    ls, rs = body.pt("left_shoulder"), body.pt("right_shoulder")
    lh, rh, _extrapolated = body.hips()
    torso_pts = [q for q in (ls, rs, rh, lh) if q is not None]
    neck = body.pt("neck")
    if neck is not None:
        torso_pts.append(neck)
    if len(torso_pts) >= 3:
        return _poly_dist(np.array(torso_pts), h, w) / (RADIUS["torso"] * body.scale)
    if len(torso_pts) == 2:
        return _seg_dist(px, py, *torso_pts) / (RADIUS["torso"] * body.scale)
    return None


def _side_distances(body: _Body, side: str, px: np.ndarray, py: np.ndarray,
                    ) -> list[tuple[str, np.ndarray]]:
    """One side's arm, leg and foot segments: distance in part widths, minus a bias that lets
    a limb's core win over the torso it is in front of."""
    parts: list[tuple[str, np.ndarray]] = []

    def limb(name: str, a: str | np.ndarray, b: str | np.ndarray, radius: float,
             bias: float = 0.5) -> None:
        pa = body.pt(a) if isinstance(a, str) else a
        pb = body.pt(b) if isinstance(b, str) else b
        if pa is None or pb is None:
            return
        parts.append((name, _seg_dist(px, py, pa, pb) / (radius * body.scale) - bias))

    limb(f"{side}_upper_arm", f"{side}_shoulder", f"{side}_elbow", RADIUS["upper_arm"])
    limb(f"{side}_forearm", f"{side}_elbow", f"{side}_wrist", RADIUS["forearm"])
    # legs start at detected hips only (extrapolated hips just close the torso)
    limb(f"{side}_thigh", f"{side}_hip", f"{side}_knee", RADIUS["thigh"])
    limb(f"{side}_shin", f"{side}_knee", f"{side}_ankle", RADIUS["shin"])
    ankle, knee = body.pt(f"{side}_ankle"), body.pt(f"{side}_knee")
    if ankle is not None:
        shin_len = float(np.hypot(*(ankle - knee))) if knee is not None else body.scale
        toe = ankle + body.down() * 0.25 * shin_len
        limb(f"{side}_foot", ankle, toe, RADIUS["foot"], bias=0.6)
    return parts


def _hand_distance(hand: np.ndarray, h: int, w: int, threshold: float) -> np.ndarray | None:
    """Distance to the hand's finger/palm region in hand sizes (biased to win near it), or
    None without a drawable hand."""
    regions = hand_regions(hand, h, w, threshold)
    if regions is None:
        return None
    fingers, palm = regions
    region = (fingers | palm).astype(np.uint8)
    d = cv2.distanceTransform(1 - region, cv2.DIST_L2, 3)
    size = max(hand_size(hand, threshold), 2.0)
    return d / (0.15 * size) - 0.8


def _part_distances(person: Person, body: _Body, geom: dict | None, px: np.ndarray,
                    py: np.ndarray, threshold: float) -> list[tuple[str, np.ndarray]]:
    """(part name, per-pixel distance normalised by the part's width) for every part the
    keypoints place: head, torso, then per side arm, leg, foot and hand."""
    h, w = px.shape
    parts: list[tuple[str, np.ndarray]] = []
    if geom is not None:
        head = np.hypot(px - geom["center"][0], py - geom["center"][1]) / geom["radius"]
        parts.append(("head", head.astype(np.float32)))
    torso = _torso_distance(body, px, py, h, w)
    if torso is not None:
        parts.append(("torso", torso))
    for side in ("left", "right"):
        parts += _side_distances(body, side, px, py)
        hand = _hand_distance(getattr(person, f"{side}_hand"), h, w, threshold)
        if hand is not None:
            parts.append((f"{side}_hand", hand))
    return parts


def _skin(rgb: np.ndarray, m: np.ndarray, geom: dict | None) -> tuple[np.ndarray, np.ndarray]:
    """(CIELAB image float32, its chroma flattened for a grayscale photo; bool skin mask)."""
    h, w = m.shape
    gray = is_grayscale(rgb)
    lab = cv2.cvtColor(rgb, cv2.COLOR_RGB2LAB).astype(np.float32)
    if gray:  # exactly flat chroma: JPEG noise of 1-2 levels must not count as colour
        lab[..., 1:] = 128.0
    skin_model = _skin_model(lab, m, geom, h, w, gray)
    if skin_model is None:
        return lab, np.zeros((h, w), dtype=bool)
    skin = (skin_model.distance(lab) < SKIN_DISTANCE).astype(np.uint8)
    return lab, cv2.medianBlur(skin, 5).astype(bool)


def _label_body(out: np.ndarray, where: Callable[[str], np.ndarray], skin: np.ndarray) -> None:
    """In place: torso and limbs as skin or clothes, hands as hands."""
    torso = where("torso")
    out[torso] = np.where(skin[torso], LABEL["torso_skin"], LABEL["upper_clothes"])
    for side in ("left", "right"):
        for seg in ("upper_arm", "forearm"):
            sel = where(f"{side}_{seg}")
            out[sel] = np.where(skin[sel], LABEL[f"{side}_arm"], LABEL["upper_clothes"])
        for seg in ("thigh", "shin"):
            sel = where(f"{side}_{seg}")
            out[sel] = np.where(skin[sel], LABEL[f"{side}_leg"], LABEL["pants"])
        sel = where(f"{side}_foot")
        out[sel] = np.where(skin[sel], LABEL[f"{side}_leg"], LABEL[f"{side}_shoe"])
        out[where(f"{side}_hand")] = LABEL[f"{side}_hand"]


def _label_head(out: np.ndarray, head: np.ndarray, skin: np.ndarray, m: np.ndarray,
                geom: dict, px: np.ndarray, py: np.ndarray) -> None:
    """In place: the head's pixels as face core, skin-coloured forehead/ears, hair above the
    jaw, neck/collar below."""
    h, w = m.shape
    core = _poly_dist(geom["core"], h, w) == 0
    if geom.get("back"):  # seen from behind: no face to label
        core = np.zeros_like(core)
    fore = _poly_dist(geom["forehead"], h, w) == 0
    near_face = _poly_dist(geom["core"], h, w) < 0.12 * geom["face_h"]
    up = geom["up"]
    height = (px - geom["chin"][0]) * up[0] + (py - geom["chin"][1]) * up[1]
    above_chin = height > 0.05 * geom["face_h"]
    near_head = np.hypot(px - geom["center"][0], py - geom["center"][1]) \
        < HAIR_REACH * geom["radius"]
    face = head & (core | ((fore | near_face) & skin))
    if geom.get("back"):
        face[:] = False
    # above the brows every non-face head pixel is hair (however far the skull reaches
    # behind a profile face); lower down only near the head (not the collar)
    above_brow = height > 0.9 * geom["face_h"]
    hair = head & ~face & above_chin & (near_head | above_brow)
    below = head & ~face & ~hair
    out[hair] = LABEL["hair"]
    out[below] = np.where(skin[below], LABEL["torso_skin"], LABEL["upper_clothes"])
    out[face] = LABEL["face"]
    # the face core is the face even where the mask or another part claims it
    out[core & m] = LABEL["face"]


def _parse(rgb: np.ndarray, person: Person, m: np.ndarray, threshold: float) -> np.ndarray:
    h, w = m.shape
    out = np.zeros((h, w), dtype=np.uint8)
    body = _Body(person, h, w, threshold)
    if not m.any() or (not body.ok.any() and not body.face_ok.any()):
        return out
    py, px = np.mgrid[0:h, 0:w].astype(np.float32)
    geom = _face_geometry(body)

    # ---- part distances (normalised by part width); argmin decides the part ------------
    parts = _part_distances(person, body, geom, px, py, threshold)
    if not parts:
        return out
    names = [n for n, _ in parts]
    stack = np.stack([d for _, d in parts])
    del parts
    part = np.argmin(stack, axis=0)
    del stack

    # ---- colour: skin vs clothes ------------------------------------------------------
    lab, skin = _skin(rgb, m, geom)

    def where(name: str) -> np.ndarray:
        return (part == names.index(name)) & m if name in names else np.zeros_like(m)

    _label_body(out, where, skin)
    _split_waist(out, lab, skin, where, body, py, px)
    if geom is not None:
        _label_head(out, where("head"), skin, m, geom, px, py)
    return out
