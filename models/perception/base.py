"""What every pose backend returns, and keypoint helpers shared by the backends.

A backend maps one RGB frame to a list of :class:`Detection`: a :class:`~..schema.Person` in
pixel coordinates of that frame, an optional person segmentation and a score.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from ..core.schema import BODY, NUM_HAND, Person


@dataclass
class Detection:
    """One person found in a frame.

    Attributes:
        person: keypoints in pixels of the input frame.
        mask: float32 (H, W) person segmentation in 0..1 at the frame's size, or None when
            the backend gives none.
        score: the backend's confidence that this is a person, 0..1.
        derived_hands: the sides (``"left"``, ``"right"``) whose hand keypoints were derived
            from the forearm rather than detected.
    """

    person: Person
    mask: np.ndarray | None
    score: float
    derived_hands: set[str] = field(default_factory=set)


# A right hand, palm towards the camera, in units of the hand length (wrist to middle tip):
# u runs from the wrist towards the fingers, v towards the thumb. OpenPose hand order:
# 0 wrist, 1-4 thumb, 5-8 index, 9-12 middle, 13-16 ring, 17-20 little finger.
HAND_TEMPLATE: np.ndarray = np.array(
    [
        [0.00, 0.00],
        [0.10, 0.15], [0.20, 0.27], [0.31, 0.35], [0.41, 0.41],
        [0.45, 0.15], [0.65, 0.17], [0.78, 0.18], [0.90, 0.19],
        [0.47, 0.04], [0.70, 0.045], [0.85, 0.05], [1.00, 0.05],
        [0.45, -0.07], [0.66, -0.08], [0.80, -0.09], [0.92, -0.10],
        [0.41, -0.17], [0.56, -0.20], [0.66, -0.22], [0.76, -0.23],
    ],
    dtype=np.float32,
)
HAND_TO_FOREARM = 0.75  # hand length (wrist to middle fingertip) / forearm length
DERIVED_HAND_CONFIDENCE = 0.2


def derive_hand(elbow: np.ndarray, wrist: np.ndarray, *, thumb_towards: np.ndarray | None = None,
                direction: np.ndarray | None = None, length: float | None = None,
                confidence: float = DERIVED_HAND_CONFIDENCE) -> np.ndarray:
    """Hand keypoints placed from the forearm when no hand detector found the hand (SPEC §6).

    The fingers continue the forearm (or ``direction`` if given), the hand is
    ``HAND_TO_FOREARM`` times the forearm long (or ``length``), and the thumb lies on the side
    of ``thumb_towards`` (e.g. the body's midline, or a detected thumb point).

    Args:
        elbow, wrist: (2,) pixel positions.
    Returns:
        float32 (21, 3) x, y, confidence (all ``confidence``), or all zeros when the forearm
        has no length.
    """
    elbow = np.asarray(elbow, dtype=np.float32)[:2]
    wrist = np.asarray(wrist, dtype=np.float32)[:2]
    forearm = wrist - elbow
    flen = float(np.hypot(*forearm))
    d = forearm if direction is None else np.asarray(direction, dtype=np.float32)[:2]
    dlen = float(np.hypot(*d))
    out = np.zeros((NUM_HAND, 3), dtype=np.float32)
    if dlen < 1e-3 or (length is None and flen < 1e-3):
        return out
    u = d / dlen
    n = np.array([-u[1], u[0]], dtype=np.float32)
    if thumb_towards is not None and float(np.dot(np.asarray(thumb_towards)[:2] - wrist, n)) < 0:
        n = -n
    size = float(length) if length is not None else HAND_TO_FOREARM * flen
    pts = wrist + size * (HAND_TEMPLATE[:, :1] * u + HAND_TEMPLATE[:, 1:] * n)
    out[:, :2] = pts
    out[:, 2] = confidence
    return out


def fill_missing_hands(person: Person, *, threshold: float = 0.05,
                       confidence: float = DERIVED_HAND_CONFIDENCE) -> set[str]:
    """Derive each undetected hand from its elbow and wrist (low confidence), in place.

    A hand counts as detected when any of its keypoints is above ``threshold``. Hands whose
    elbow or wrist is missing stay empty. Returns the sides that were derived.
    """
    body = person.body
    neck = body[BODY["neck"]]
    derived: set[str] = set()
    for side in ("left", "right"):
        hand = getattr(person, f"{side}_hand")
        if (hand[:, 2] > threshold).any():
            continue
        e, w = body[BODY[f"{side}_elbow"]], body[BODY[f"{side}_wrist"]]
        if e[2] <= threshold or w[2] <= threshold:
            continue
        towards = neck[:2] if neck[2] > threshold else None
        setattr(person, f"{side}_hand",
                derive_hand(e[:2], w[:2], thumb_towards=towards, confidence=confidence))
        derived.add(side)
    return derived


class HandGapFiller:
    """Bridge short gaps of the hand detector in a video of ONE person (SPEC §6).

    When a hand was really detected at most ``max_gap`` frames ago and is now only derived
    from the forearm, the last detected hand is carried over, moved with the wrist, at half
    its confidence. Call once per frame, in order.
    """

    def __init__(self, max_gap: int = 3) -> None:
        self.max_gap = max_gap
        self._last: dict[str, tuple[np.ndarray, np.ndarray, int]] = {}  # side -> hand, wrist, age

    def __call__(self, det: Detection) -> Detection:
        body = det.person.body
        for side in ("left", "right"):
            wrist = body[BODY[f"{side}_wrist"]]
            hand = getattr(det.person, f"{side}_hand")
            if side not in det.derived_hands and (hand[:, 2] > 0).any():
                if wrist[2] > 0:
                    self._last[side] = (hand.copy(), wrist[:2].copy(), 0)
                continue
            last = self._last.get(side)
            if last is None:
                continue
            old_hand, old_wrist, age = last
            age += 1
            if age > self.max_gap or wrist[2] <= 0:
                self._last.pop(side, None)
                continue
            self._last[side] = (old_hand, old_wrist, age)
            moved = old_hand.copy()
            ok = moved[:, 2] > 0
            moved[ok, :2] += wrist[:2] - old_wrist
            moved[ok, 2] *= 0.5
            setattr(det.person, f"{side}_hand", moved)
            det.derived_hands.discard(side)
        return det

    def reset(self) -> None:
        self._last.clear()


def mask_from_keypoints(person: Person, height: int, width: int, *,
                        threshold: float = 0.05) -> np.ndarray:
    """A rough person mask drawn from keypoints (for backends without a segmentation).

    Limbs become thick capsules (width proportional to the torso size), the torso a filled
    polygon, the head a disc around the face or nose/ears.

    Returns:
        float32 (height, width) in {0, 1}.
    """
    from ..core.schema import BODY_LIMBS

    canvas = np.zeros((height, width), dtype=np.uint8)
    kp = person.body
    ok = kp[:, 2] > threshold
    pts = kp[ok, :2]
    if len(pts) == 0:
        for hand in (person.left_hand, person.right_hand):
            hp = hand[hand[:, 2] > threshold, :2]
            if len(hp) >= 3:
                cv2.fillConvexPoly(canvas, cv2.convexHull(hp.astype(np.int32)), 1)
        return canvas.astype(np.float32)
    # Scale: shoulder width, else torso length, else the keypoints' extent.
    def dist(a: str, b: str) -> float | None:
        i, j = BODY[a], BODY[b]
        if ok[i] and ok[j]:
            return float(np.hypot(*(kp[i, :2] - kp[j, :2])))
        return None
    scale = dist("left_shoulder", "right_shoulder") or dist("neck", "right_hip") \
        or dist("neck", "left_hip")
    if not scale:
        ext = pts.max(0) - pts.min(0)
        scale = max(float(ext.max()) / 3.0, 4.0)
    thick = max(2, int(round(scale * 0.35)))
    for a, b in BODY_LIMBS[:12]:  # arms, torso lines and legs (not the head lines)
        if ok[a] and ok[b]:
            cv2.line(canvas, tuple(int(v) for v in kp[a, :2]), tuple(int(v) for v in kp[b, :2]),
                     1, thick)
    torso = [BODY[n] for n in ("right_shoulder", "left_shoulder", "left_hip", "right_hip")]
    tp = kp[[i for i in torso if ok[i]], :2]
    if len(tp) >= 3:
        cv2.fillConvexPoly(canvas, cv2.convexHull(tp.astype(np.int32)), 1)
    face = person.face[person.face[:, 2] > threshold, :2]
    if len(face) >= 3:
        cv2.fillConvexPoly(canvas, cv2.convexHull(face.astype(np.int32)), 1)
    head = [BODY[n] for n in ("nose", "right_eye", "left_eye", "right_ear", "left_ear")]
    hp = kp[[i for i in head if ok[i]], :2]
    if len(hp):
        c = hp.mean(0)
        cv2.circle(canvas, (int(c[0]), int(c[1])), max(2, int(round(scale * 0.45))), 1, -1)
    for hand in (person.left_hand, person.right_hand):
        hpts = hand[hand[:, 2] > threshold, :2]
        if len(hpts) >= 3:
            cv2.fillConvexPoly(canvas, cv2.convexHull(hpts.astype(np.int32)), 1)
            for x, y in hpts:
                cv2.circle(canvas, (int(x), int(y)), max(1, thick // 4), 1, -1)
    return canvas.astype(np.float32)
