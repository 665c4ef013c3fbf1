"""Training augmentations for P2B (and B2F): pose augmentation from Ren et al. (2020) and the
parsing augmentations of Gafni et al. (2021, appendix C).

Pose (applied to the DRIVER's keypoints before the stick figure is drawn):

* :func:`jitter_joints`: Gaussian noise on every keypoint, sigma relative to the body size;
* :func:`scale_limbs`: each skeleton link scaled by a random factor, children moved with their
  parents (hands and face follow their wrist / head);
* :func:`drop_parts`: whole parts (an arm, a leg, a hand, the face) made missing.

Parsing (p* and the ground truth; never the poses):

* :func:`rotate_scale`: a random rotation and scale of a label map about a centre;
* :func:`squeeze_stretch`: a horizontal or vertical stretch about a centre, applied to BOTH
  parsing maps and NOT to the poses, so the network learns that the body shape comes from
  p* and only the pose from the driver;
* :func:`hand_label_augment`: hand labels (20/21, drawn from hand keypoints at inference)
  randomly merged into the arm label or grown, so P2B copes with missing or coarse hands.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ..models.core.schema import BODY, LABEL, Person

__all__ = [
    "PoseAugment",
    "ParsingAugment",
    "jitter_joints",
    "scale_limbs",
    "drop_parts",
    "rotate_scale",
    "squeeze_stretch",
    "hand_label_augment",
]

_THR = 0.05

# Links parent -> child, outwards from the neck (OpenPose body 18).
_LINKS: tuple[tuple[str, str], ...] = (
    ("neck", "right_shoulder"), ("neck", "left_shoulder"), ("neck", "right_hip"),
    ("neck", "left_hip"), ("neck", "nose"),
    ("right_shoulder", "right_elbow"), ("right_elbow", "right_wrist"),
    ("left_shoulder", "left_elbow"), ("left_elbow", "left_wrist"),
    ("right_hip", "right_knee"), ("right_knee", "right_ankle"),
    ("left_hip", "left_knee"), ("left_knee", "left_ankle"),
    ("nose", "right_eye"), ("nose", "left_eye"), ("right_eye", "right_ear"),
    ("left_eye", "left_ear"),
)

PARTS: dict[str, tuple[str, ...]] = {
    "right_arm": ("right_elbow", "right_wrist"),
    "left_arm": ("left_elbow", "left_wrist"),
    "right_leg": ("right_knee", "right_ankle"),
    "left_leg": ("left_knee", "left_ankle"),
    "face": (),
    "right_hand": (),
    "left_hand": (),
}


def _size(p: Person) -> float:
    box = p.bbox()
    if box is None:
        return 1.0
    return max(float(np.hypot(box[2] - box[0], box[3] - box[1])), 1.0)


def jitter_joints(person: Person, rng: np.random.Generator, sigma: float = 0.01) -> Person:
    """Every confident keypoint moved by N(0, (sigma * body diagonal)^2) pixels."""
    s = sigma * _size(person)

    def f(a: np.ndarray) -> np.ndarray:
        out = a.copy()
        ok = out[:, 2] > 0
        out[ok, :2] += rng.normal(0.0, s, size=(int(ok.sum()), 2)).astype(np.float32)
        return out

    return Person(f(person.body), f(person.face), f(person.left_hand), f(person.right_hand))


def scale_limbs(person: Person, rng: np.random.Generator, low: float = 0.85,
                high: float = 1.15) -> Person:
    """Each link's length multiplied by U(low, high); the subtree below it moves along.

    Hands move with their wrist and the face with the nose.
    """
    body = person.body.copy()
    face, lh, rh = person.face.copy(), person.left_hand.copy(), person.right_hand.copy()
    moved = {name: np.zeros(2, np.float32) for name in BODY}
    for parent, child in _LINKS:
        pi, ci = BODY[parent], BODY[child]
        if person.body[pi, 2] <= _THR or person.body[ci, 2] <= _THR:
            continue
        vec = person.body[ci, :2] - person.body[pi, :2]
        k = float(rng.uniform(low, high))
        moved[child] = moved[parent] + vec * (k - 1.0)
        body[ci, :2] = person.body[ci, :2] + moved[child]
    for arr, anchor in ((face, "nose"), (lh, "left_wrist"), (rh, "right_wrist")):
        ok = arr[:, 2] > 0
        arr[ok, :2] += moved[anchor]
    return Person(body, face, lh, rh)


def drop_parts(person: Person, rng: np.random.Generator, p: float = 0.1) -> Person:
    """Each of the parts in :data:`PARTS` independently made missing with probability p."""
    body, face = person.body.copy(), person.face.copy()
    lh, rh = person.left_hand.copy(), person.right_hand.copy()
    for part, joints in PARTS.items():
        if rng.random() >= p:
            continue
        for j in joints:
            body[BODY[j]] = 0.0
        if part == "face":
            face[:] = 0.0
        if part in ("left_hand", "left_arm"):
            lh[:] = 0.0
        if part in ("right_hand", "right_arm"):
            rh[:] = 0.0
    return Person(body, face, lh, rh)


@dataclass(frozen=True)
class PoseAugment:
    """Ren et al.'s pose augmentation; zeros switch a step off."""

    jitter: float = 0.0  # sigma as a fraction of the body diagonal
    limb_scale: float = 0.0  # links scaled by U(1 - limb_scale, 1 + limb_scale)
    part_dropout: float = 0.0  # probability per part

    def __call__(self, person: Person, rng: np.random.Generator) -> Person:
        if self.limb_scale > 0:
            person = scale_limbs(person, rng, 1 - self.limb_scale, 1 + self.limb_scale)
        if self.jitter > 0:
            person = jitter_joints(person, rng, self.jitter)
        if self.part_dropout > 0:
            person = drop_parts(person, rng, self.part_dropout)
        return person


def _warp_labels(labels: np.ndarray, m: np.ndarray) -> np.ndarray:
    h, w = labels.shape
    return cv2.warpAffine(labels, m, (w, h), flags=cv2.INTER_NEAREST,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def _center(labels: np.ndarray) -> tuple[float, float]:
    ys, xs = np.nonzero(labels)
    if len(ys) == 0:
        return labels.shape[1] / 2, labels.shape[0] / 2
    return float(xs.mean()), float(ys.mean())


def rotate_scale(labels: np.ndarray, degrees: float, scale: float,
                 center: tuple[float, float] | None = None) -> np.ndarray:
    """Rotate (degrees, counter-clockwise on screen) and scale a label map about ``center``
    (default: the person's centroid). Nearest neighbour, background outside."""
    c = center or _center(labels)
    return _warp_labels(labels, cv2.getRotationMatrix2D(c, degrees, scale))


def squeeze_stretch(labels: np.ndarray, factor: float, axis: int = 1,
                    center: tuple[float, float] | None = None) -> np.ndarray:
    """Stretch (factor > 1) or squeeze (< 1) a label map along x (axis=1) or y (axis=0)
    about ``center`` (default: the person's centroid)."""
    cx, cy = center or _center(labels)
    if axis == 1:
        m = np.array([[factor, 0, cx * (1 - factor)], [0, 1, 0]], np.float64)
    elif axis == 0:
        m = np.array([[1, 0, 0], [0, factor, cy * (1 - factor)]], np.float64)
    else:
        raise ValueError(f"axis must be 0 (y) or 1 (x), got {axis}")
    return _warp_labels(labels, m)


def hand_label_augment(labels: np.ndarray, rng: np.random.Generator, p_merge: float = 0.2,
                       p_grow: float = 0.2) -> np.ndarray:
    """Per hand: with p_merge its label becomes the arm label (a hand the parser missed); else
    with p_grow it is dilated by 1-2 pixels over the background and its arm (a coarse hand)."""
    out = labels.copy()
    for hand, arm in (("left_hand", "left_arm"), ("right_hand", "right_arm")):
        m = out == LABEL[hand]
        if not m.any():
            continue
        r = rng.random()
        if r < p_merge:
            out[m] = LABEL[arm]
        elif r < p_merge + p_grow:
            k = int(rng.integers(1, 3))
            grown = cv2.dilate(m.astype(np.uint8), np.ones((2 * k + 1, 2 * k + 1), np.uint8)) > 0
            out[grown & np.isin(out, [0, LABEL[arm]])] = LABEL[hand]
    return out


@dataclass(frozen=True)
class ParsingAugment:
    """The paper's parsing augmentation (appendix C); zeros switch a step off.

    ``rotate`` (max degrees) and ``scale`` (max relative change) act on p* only;
    ``stretch`` (max relative change) squeezes/stretches p* AND the ground truth by the same
    factor along a random axis, poses untouched; ``hands`` is the probability scale of
    :func:`hand_label_augment` on p*.
    """

    rotate: float = 0.0
    scale: float = 0.0
    stretch: float = 0.0
    hands: float = 0.0

    def __call__(self, source: np.ndarray, target: np.ndarray, rng: np.random.Generator
                 ) -> tuple[np.ndarray, np.ndarray]:
        if self.stretch > 0:
            f = float(rng.uniform(1 - self.stretch, 1 + self.stretch))
            axis = int(rng.integers(2))
            source = squeeze_stretch(source, f, axis)
            target = squeeze_stretch(target, f, axis)
        if self.rotate > 0 or self.scale > 0:
            source = rotate_scale(source, float(rng.uniform(-self.rotate, self.rotate)),
                                  float(rng.uniform(1 - self.scale, 1 + self.scale)))
        if self.hands > 0:
            source = hand_label_augment(source, rng, self.hands, self.hands)
        return source, target
