"""Best appearance frame: pick the target frame to use when the target is a video (SPEC §5).

The single-shot method needs one good photo: the person upright and facing the camera, the
face and every body part visible, keypoints detected confidently. For each frame (its largest
person, or the chosen one)

    score = confidence × completeness × frontality × upright

- ``confidence``: mean confidence (clipped to 0..1) of the body keypoints that are present
  (confidence > ``threshold``);
- ``completeness``: fraction of the 18 body keypoints present;
- ``frontality`` = ``width × face × facing``:
  ``width`` — shoulder width and hip width, each divided by its robust maximum over the
  sequence (90th percentile, capped at 1) and averaged over the two: a profile view is narrow.
  Widths are not divided by the torso height: a crouch or a bend shortens the torso and
  would look "most frontal" (it won once with frontality 1.00);
  ``face`` — the mean confidence of nose, eyes and ears (0 for a missing one), divided by its
  robust maximum over the sequence: a face the detector only guesses (hidden, turned away,
  under a hood) scores low even when its keypoints are reported;
  ``facing`` — 1 when the subject's right shoulder (or eye) is on the image's left, i.e. the
  person faces the camera, 0.5 when they show their back.
- ``upright`` — how tall the person stands compared with the rest of the sequence: the
  vertical torso (neck to mid-hip) and the vertical leg (hip to the lower ankle of the
  straighter leg), each divided by its robust maximum over the sequence, multiplied. A crouch
  (thighs near horizontal) or a bend towards the camera (short torso) scores low; a segment
  that cannot be measured counts 1 (completeness already penalises missing keypoints).

Robust maxima are 90th percentiles over the frames where the quantity can be measured, so one
mis-detected frame cannot set the scale. A frame without a person scores 0. Ties go to the
earliest frame.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..core.schema import BODY, NUM_BODY, Person

_FACE_JOINTS = (BODY["nose"], BODY["right_eye"], BODY["left_eye"], BODY["right_ear"],
                BODY["left_ear"])
RS, LS = BODY["right_shoulder"], BODY["left_shoulder"]
RH, LH = BODY["right_hip"], BODY["left_hip"]
RA, LA = BODY["right_ankle"], BODY["left_ankle"]
NECK, NOSE = BODY["neck"], BODY["nose"]
ROBUST_PERCENTILE = 90.0


@dataclass(frozen=True)
class FrameScore:
    """One frame's score and its factors (all in 0..1)."""

    index: int
    confidence: float
    completeness: float
    frontality: float
    score: float
    upright: float = 1.0


def _dist(body: np.ndarray, a: int, b: int) -> float:
    return float(np.linalg.norm(body[a, :2] - body[b, :2]))


def _measures(body: np.ndarray, ok: np.ndarray) -> dict[str, float | None]:
    """Per-frame raw measures in pixels (None where the keypoints are missing)."""
    m: dict[str, float | None] = {
        "shoulder": _dist(body, RS, LS) if ok[RS] and ok[LS] else None,
        "hip": _dist(body, RH, LH) if ok[RH] and ok[LH] else None,
        "torso": None, "leg": None,
        "face": float(np.mean([np.clip(body[j, 2], 0, 1) if ok[j] else 0.0
                               for j in _FACE_JOINTS])),
    }
    hips = [j for j in (RH, LH) if ok[j]]
    if ok[NECK] and hips:
        mid_hip_y = float(body[hips, 1].mean())
        m["torso"] = max(mid_hip_y - float(body[NECK, 1]), 0.0)
    legs = [float(body[a, 1] - body[h, 1]) for h, a in ((RH, RA), (LH, LA)) if ok[h] and ok[a]]
    if legs:
        m["leg"] = max(max(legs), 0.0)
    return m


def _robust_max(values: list[float | None]) -> float:
    vals = [v for v in values if v is not None]
    return float(np.percentile(vals, ROBUST_PERCENTILE)) if vals else 0.0


def _ratio(value: float | None, ref: float) -> float | None:
    if value is None or ref <= 1e-9:
        return None
    return min(value / ref, 1.0)


def score_frames(people: Sequence[Person | None], threshold: float = 0.05) -> list[FrameScore]:
    """Score every frame (see the module docstring).

    Args:
        people: per frame the person to judge (None = no person).
        threshold: confidence above which a keypoint is present.
    Returns:
        one :class:`FrameScore` per frame.
    """
    raw = [None if p is None else p.body.astype(np.float64) for p in people]
    oks = [None if b is None else np.isfinite(b).all(1) & (np.nan_to_num(b[:, 2]) > threshold)
           for b in raw]
    bodies = [None if b is None else np.nan_to_num(b) for b in raw]
    measures = [None if b is None or ok is None or not ok.any() else _measures(b, ok)
                for b, ok in zip(bodies, oks)]
    refs = {k: _robust_max([m[k] for m in measures if m is not None])
            for k in ("shoulder", "hip", "torso", "leg", "face")}

    scores = []
    for t, (body, ok, m) in enumerate(zip(bodies, oks, measures)):
        if body is None or ok is None or m is None:
            scores.append(FrameScore(t, 0.0, 0.0, 0.0, 0.0, 0.0))
            continue
        conf = float(np.clip(body[ok, 2], 0, 1).mean())
        complete = float(ok.sum()) / NUM_BODY
        terms = [r for r in (_ratio(m["shoulder"], refs["shoulder"]),
                             _ratio(m["hip"], refs["hip"])) if r is not None]
        width = float(np.mean(terms)) if terms else 0.0
        face = _ratio(m["face"], refs["face"]) or 0.0
        if ok[RS] and ok[LS]:
            facing = 1.0 if body[RS, 0] < body[LS, 0] else 0.5
        elif ok[BODY["right_eye"]] and ok[BODY["left_eye"]]:
            facing = 1.0 if body[BODY["right_eye"], 0] < body[BODY["left_eye"], 0] else 0.5
        else:
            facing = 1.0
        front = width * face * facing
        upright = 1.0
        for key in ("torso", "leg"):
            r = _ratio(m[key], refs[key])
            if r is not None:
                upright *= r
        scores.append(FrameScore(t, conf, complete, front, conf * complete * front * upright,
                                 upright))
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
