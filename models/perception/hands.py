"""Hand labels (20 left, 21 right) drawn from 21 hand keypoints (paper §3.1).

Neither LIP nor CIHP has hand labels: SCHP labels a hand as part of the arm (or background
between the fingers). The paper draws hands from the OpenPose hand keypoints; we do the same
for every parsing backend: the fingers are drawn as capsules along the hand skeleton and the
palm as the keypoints' convex hull, and only pixels already labelled arm (or background where
the thin finger capsules pass, inside the person mask when one is given) become hand.
"""

from __future__ import annotations

import cv2
import numpy as np

from ..core.schema import HAND_EDGES, LABEL, Person
from .base import fill_missing_hands

MIN_HAND_POINTS = 5  # fewer confident keypoints than this: the hand is not drawn
FINGER_WIDTH = 0.16  # finger capsule width / hand size (wrist to farthest keypoint)
PALM_MARGIN = 0.08  # palm hull dilation / hand size


def hand_size(hand: np.ndarray, threshold: float = 0.05) -> float:
    """Largest distance from the wrist (or the points' centroid) to a confident keypoint."""
    ok = hand[:, 2] > threshold
    if ok.sum() < 2:
        return 0.0
    pts = hand[ok, :2]
    origin = hand[0, :2] if ok[0] else pts.mean(0)
    return float(np.hypot(*(pts - origin).T).max())


def hand_regions(hand: np.ndarray, height: int, width: int,
                 threshold: float = 0.05) -> tuple[np.ndarray, np.ndarray] | None:
    """The finger capsules and the palm hull of one hand.

    Args:
        hand: (21, 3) keypoints in pixels (x, y, confidence).
    Returns:
        (fingers, palm) boolean (height, width) masks, or None when fewer than
        ``MIN_HAND_POINTS`` keypoints are confident.
    """
    ok = hand[:, 2] > threshold
    if ok.sum() < MIN_HAND_POINTS:
        return None
    size = hand_size(hand, threshold)
    if size < 1.0:
        return None
    thick = max(2, int(round(size * FINGER_WIDTH)))
    fingers = np.zeros((height, width), dtype=np.uint8)
    pts = np.round(hand[:, :2]).astype(np.int32)
    for a, b in HAND_EDGES:
        if ok[a] and ok[b]:
            cv2.line(fingers, tuple(int(v) for v in pts[a]), tuple(int(v) for v in pts[b]), 1,
                     thick, cv2.LINE_8)
    for i in np.flatnonzero(ok):
        cv2.circle(fingers, tuple(int(v) for v in pts[i]), max(1, thick // 2), 1, -1)
    palm = np.zeros((height, width), dtype=np.uint8)
    cv2.fillConvexPoly(palm, cv2.convexHull(pts[ok]), 1)
    margin = max(1, int(round(size * PALM_MARGIN)))
    palm = cv2.dilate(palm, cv2.getStructuringElement(cv2.MORPH_ELLIPSE,
                                                      (2 * margin + 1, 2 * margin + 1)))
    return fingers.astype(bool), (palm.astype(bool) | fingers.astype(bool))


def paint_hands(labels: np.ndarray, person: Person, *, mask: np.ndarray | None = None,
                threshold: float = 0.05, derive_missing: bool = True) -> np.ndarray:
    """Relabel the pixels of each hand as ``left_hand`` (20) / ``right_hand`` (21).

    Palm-hull pixels labelled arm (either side) become hand; finger-capsule pixels labelled
    arm or background become hand (background only inside ``mask`` when one is given, so
    fingers are not painted onto the backdrop of a masked person).

    Args:
        labels: uint8 (H, W) in our 22-label schema (modified copy returned).
        person: keypoints in pixels of ``labels``; a hand without keypoints is derived from the
            elbow and wrist when ``derive_missing`` (low confidence, SPEC §6).
        mask: optional person mask (H, W), > 0.5 = person.
    Returns:
        uint8 (H, W) labels with hands drawn.
    """
    out = labels.copy()
    h, w = out.shape
    if derive_missing:
        person = Person(person.body.copy(), person.face.copy(), person.left_hand.copy(),
                        person.right_hand.copy())
        fill_missing_hands(person, threshold=threshold)  # in place, on the copy
    arms = np.isin(out, (LABEL["left_arm"], LABEL["right_arm"]))
    background = out == LABEL["background"]
    if mask is not None:
        background &= np.asarray(mask) > 0.5
    for hand, label in ((person.left_hand, LABEL["left_hand"]),
                        (person.right_hand, LABEL["right_hand"])):
        regions = hand_regions(hand, h, w, threshold)
        if regions is None:
            continue
        fingers, palm = regions
        paint = (palm & arms) | (fingers & (arms | background))
        out[paint] = label
    return out
