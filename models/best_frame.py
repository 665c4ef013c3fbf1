"""Best appearance frame: pick the target frame to use when the target is a video (SPEC §5).

The single-shot method needs one good photo: the person facing the camera, every body part
visible, keypoints detected confidently. For each frame (its largest person, or the chosen one)

    score = confidence × completeness × frontality

- ``confidence``: mean confidence (clipped to 0..1) of the body keypoints that are present
  (confidence > ``threshold``);
- ``completeness``: fraction of the 18 body keypoints present;
- ``frontality`` = ``width × face × facing``:
  ``width`` — shoulder width and hip width divided by the torso height (neck to mid-hip; the
  neck–nose distance ×2 when most frames show no hips), each divided by its largest value in
  the sequence and averaged over the two (so the widest-looking, i.e. most frontal, frame gets
  1 and a profile view close to 0; 0 when it cannot be measured);
  ``face`` — fraction of nose, both eyes and both ears visible;
  ``facing`` — 1 when the subject's right shoulder (or eye) is on the image's left, i.e. the
  person faces the camera, 0.5 when they show their back.

A frame without a person scores 0. Ties go to the earliest frame.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .schema import BODY, NUM_BODY, Person

_FACE_JOINTS = (BODY["nose"], BODY["right_eye"], BODY["left_eye"], BODY["right_ear"],
                BODY["left_ear"])
RS, LS = BODY["right_shoulder"], BODY["left_shoulder"]
RH, LH = BODY["right_hip"], BODY["left_hip"]
NECK, NOSE = BODY["neck"], BODY["nose"]


@dataclass(frozen=True)
class FrameScore:
    """One frame's score and its factors (all in 0..1)."""

    index: int
    confidence: float
    completeness: float
    frontality: float
    score: float


def _dist(body: np.ndarray, a: int, b: int) -> float:
    return float(np.linalg.norm(body[a, :2] - body[b, :2]))


def score_frames(people: Sequence[Person | None], threshold: float = 0.05) -> list[FrameScore]:
    """Score every frame (see the module docstring).

    Args:
        people: per frame the person to judge (None = no person).
        threshold: confidence above which a keypoint is present.
    Returns:
        one :class:`FrameScore` per frame.
    """
    bodies = [None if p is None else p.body.astype(np.float64) for p in people]
    oks = [None if b is None else b[:, 2] > threshold for b in bodies]
    with_person = [ok for ok in oks if ok is not None and ok.any()]
    use_torso = sum(bool(ok[NECK] and ok[RH] and ok[LH]) for ok in with_person) * 2 >= \
        max(len(with_person), 1)

    raw_w: list[tuple[float | None, float | None]] = []
    for body, ok in zip(bodies, oks):
        if body is None or ok is None or not ok.any():
            raw_w.append((None, None))
            continue
        if use_torso and ok[NECK] and ok[RH] and ok[LH]:
            height = float(np.linalg.norm(body[NECK, :2] - body[[RH, LH], :2].mean(0)))
        elif not use_torso and ok[NECK] and ok[NOSE]:
            height = 2.0 * _dist(body, NECK, NOSE)
        else:
            height = 0.0
        if height <= 1e-6:
            raw_w.append((None, None))
            continue
        sw = _dist(body, RS, LS) / height if ok[RS] and ok[LS] else None
        hw = _dist(body, RH, LH) / height if ok[RH] and ok[LH] else None
        raw_w.append((sw, hw))
    max_s = max((w[0] for w in raw_w if w[0] is not None), default=0.0)
    max_h = max((w[1] for w in raw_w if w[1] is not None), default=0.0)

    scores = []
    for t, (body, ok) in enumerate(zip(bodies, oks)):
        if body is None or ok is None or not ok.any():
            scores.append(FrameScore(t, 0.0, 0.0, 0.0, 0.0))
            continue
        conf = float(np.clip(body[ok, 2], 0, 1).mean())
        complete = float(ok.sum()) / NUM_BODY
        terms = []
        sw, hw = raw_w[t]
        if sw is not None and max_s > 0:
            terms.append(sw / max_s)
        if hw is not None and max_h > 0:
            terms.append(hw / max_h)
        width = float(np.mean(terms)) if terms else 0.0
        face = float(sum(bool(ok[j]) for j in _FACE_JOINTS)) / len(_FACE_JOINTS)
        if ok[RS] and ok[LS]:
            facing = 1.0 if body[RS, 0] < body[LS, 0] else 0.5
        elif ok[BODY["right_eye"]] and ok[BODY["left_eye"]]:
            facing = 1.0 if body[BODY["right_eye"], 0] < body[BODY["left_eye"], 0] else 0.5
        else:
            facing = 1.0
        front = width * face * facing
        scores.append(FrameScore(t, conf, complete, front, conf * complete * front))
    return scores


def best_frame(people: Sequence[Person | None], threshold: float = 0.05,
               ) -> tuple[int, list[FrameScore]]:
    """Index of the best-scoring frame and all scores.

    Raises:
        ValueError: no frame has a person.
    """
    scores = score_frames(people, threshold)
    if not scores or all(p is None or not (p.body[:, 2] > threshold).any() for p in people):
        raise ValueError("no frame shows a person (no body keypoint above the threshold)")
    best = max(scores, key=lambda s: (s.score, -s.index))
    return best.index, scores
