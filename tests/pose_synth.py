"""Synthetic skeletons with exact bone lengths, for the temporal/retargeting/best-frame tests.

A person is built down the kinematic tree of ``schema.BODY_PARENT`` from the neck: every bone
has a rest direction and a length; per-frame angles rotate bones (rotations accumulate down
each chain). Feet are put on a ground line by moving the whole body vertically.
"""

from __future__ import annotations

import math

import numpy as np

from dance_reenact.models.core.schema import BODY, BODY_PARENT, NUM_FACE, NUM_HAND, Person

# Rest pose: unit direction of each bone (image coordinates, y down) and length in "units"
# (a person of scale 1 is about 1 unit... we use pixels at scale 1 = 100 px torso).
REST_DIR = {
    "nose": (0.0, -1.0), "right_shoulder": (-1.0, 0.0), "right_elbow": (-0.25, 1.0),
    "right_wrist": (-0.05, 1.0), "left_shoulder": (1.0, 0.0), "left_elbow": (0.25, 1.0),
    "left_wrist": (0.05, 1.0), "right_hip": (-0.22, 1.0), "right_knee": (0.0, 1.0),
    "right_ankle": (0.0, 1.0), "left_hip": (0.22, 1.0), "left_knee": (0.0, 1.0),
    "left_ankle": (0.0, 1.0), "right_eye": (-0.6, -0.8), "left_eye": (0.6, -0.8),
    "right_ear": (-1.0, 0.3), "left_ear": (1.0, 0.3),
}
REST_LEN = {
    "nose": 0.50, "right_shoulder": 0.42, "right_elbow": 0.60, "right_wrist": 0.55,
    "left_shoulder": 0.42, "left_elbow": 0.60, "left_wrist": 0.55, "right_hip": 1.0,
    "right_knee": 0.90, "right_ankle": 0.85, "left_hip": 1.0, "left_knee": 0.90,
    "left_ankle": 0.85, "right_eye": 0.12, "left_eye": 0.12, "right_ear": 0.14,
    "left_ear": 0.14,
}
ORDER = (1, 0, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17)  # parents first


def bone_lengths(scale: float = 100.0, **factors: float) -> dict[int, float]:
    """Length (pixels) of the bone ending at each joint; ``factors`` scale named joints' bones
    (e.g. ``right_knee=1.2`` lengthens the right thigh)."""
    return {BODY[n]: REST_LEN[n] * scale * factors.get(n, 1.0) for n in REST_LEN}


def build_body(neck: tuple[float, float], lengths: dict[int, float],
               angles: dict[str, float] | None = None, lean: float = 0.0) -> np.ndarray:
    """(18, 3) body: each bone = parent + R(accumulated angle) @ rest_dir * length, conf 1."""
    angles = angles or {}
    body = np.zeros((18, 3), np.float64)
    body[BODY["neck"]] = (neck[0], neck[1], 1.0)
    rot = np.zeros(18)
    for j in ORDER[1:]:
        p = BODY_PARENT[j]
        name = [k for k, v in BODY.items() if v == j][0]
        rot[j] = (rot[p] if p != BODY["neck"] else lean) + angles.get(name, 0.0)
        d = np.asarray(REST_DIR[name], float)
        d /= np.linalg.norm(d)
        c, s = math.cos(rot[j]), math.sin(rot[j])
        d = np.array([c * d[0] - s * d[1], s * d[0] + c * d[1]])
        body[j, :2] = body[p, :2] + d * lengths[j]
        body[j, 2] = 1.0
    return body


def dance_angles(t: float) -> dict[str, float]:
    """A smooth arm-waving, knee-bending dance (radians) at time t seconds."""
    return {
        "right_elbow": 0.9 * math.sin(2 * math.pi * 0.7 * t),
        "right_wrist": 0.6 * math.sin(2 * math.pi * 1.1 * t + 0.5),
        "left_elbow": -0.9 * math.sin(2 * math.pi * 0.6 * t + 1.0),
        "left_wrist": -0.5 * math.sin(2 * math.pi * 0.9 * t),
        "right_knee": 0.25 * math.sin(2 * math.pi * 0.5 * t),
        "right_ankle": -0.3 * max(0.0, math.sin(2 * math.pi * 0.5 * t)),
        "left_knee": -0.2 * math.sin(2 * math.pi * 0.5 * t + 0.3),
        "nose": 0.15 * math.sin(2 * math.pi * 0.4 * t),
    }


def on_ground(body: np.ndarray, ground_y: float) -> np.ndarray:
    """Move the body vertically so its lowest ankle is on ``ground_y``."""
    out = body.copy()
    ankles = out[[BODY["right_ankle"], BODY["left_ankle"]], 1]
    out[:, 1] += ground_y - ankles.max()
    return out


def dance_sequence(n: int, fps: float = 30.0, scale: float = 100.0, ground_y: float = 480.0,
                   cx: float = 320.0, sway: float = 40.0, **factors: float) -> np.ndarray:
    """(n, 18, 3) clean dance: swaying horizontally, feet on the ground line."""
    lengths = bone_lengths(scale, **factors)
    out = []
    for i in range(n):
        t = i / fps
        body = build_body((cx + sway * math.sin(2 * math.pi * 0.3 * t), 0.0), lengths,
                          dance_angles(t), lean=0.08 * math.sin(2 * math.pi * 0.3 * t))
        out.append(on_ground(body, ground_y))
    return np.stack(out)


def with_face_and_hands(body: np.ndarray) -> Person:
    """A Person whose face ring sits around the nose and hands fan out from the wrists."""
    face = np.zeros((NUM_FACE, 3), np.float32)
    ang = np.linspace(0, 2 * math.pi, NUM_FACE, endpoint=False)
    face[:, 0] = body[0, 0] + 12 * np.cos(ang)
    face[:, 1] = body[0, 1] + 15 * np.sin(ang)
    face[:, 2] = 1.0
    hands = []
    for wrist in (BODY["left_wrist"], BODY["right_wrist"]):
        h = np.zeros((NUM_HAND, 3), np.float32)
        h[:, 0] = body[wrist, 0] + np.linspace(0, 10, NUM_HAND)
        h[:, 1] = body[wrist, 1] + np.linspace(0, 20, NUM_HAND)
        h[:, 2] = 1.0
        hands.append(h)
    return Person(body=body.astype(np.float32), face=face, left_hand=hands[0],
                  right_hand=hands[1])
