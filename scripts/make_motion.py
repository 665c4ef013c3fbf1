"""Make the shipped motion clip: a keyframed upper-body dance as POSE_KEYPOINT frames.

    python scripts/make_motion.py [--out assets/motion/upper_body_dance.json]

The clip is ours (no dataset, no video): a waist-up figure on a 512x320 (width x height) canvas,
framed like a waist-up portrait (hips below the frame, marked missing), 12 s at 24 fps. Moves:
sway, right-arm wave, left-arm wave, both arms up, arms out with elbow waves, clap, sway.
Body joints come from forward kinematics of a few angles per keyframe, interpolated with a
smooth (cosine) ease; the face (70 points) and hands (21 each) are rigid templates carried by
the head and the forearms.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np

W, H, FPS, SECONDS = 512, 320, 24, 12
NECK = np.array([256.0, 150.0])
SHOULDER_HALF = 58.0
UPPER_ARM, FOREARM = 74.0, 64.0
HEAD_UP = 72.0  # neck -> nose

# Keyframes: time (s) -> angles in degrees. Arm angle 0 = horizontal outwards, +90 = straight
# down, -90 = straight up; elbow = extra bend of the forearm (same convention, relative).
KEYS: list[tuple[float, dict[str, float]]] = [
    (0.0, dict(r_arm=75, r_elb=10, l_arm=75, l_elb=10, sway=0, tilt=0)),
    (1.0, dict(r_arm=70, r_elb=20, l_arm=80, l_elb=5, sway=12, tilt=5)),
    (2.0, dict(r_arm=80, r_elb=5, l_arm=70, l_elb=20, sway=-12, tilt=-5)),
    # right arm wave
    (2.6, dict(r_arm=-55, r_elb=-40, l_arm=75, l_elb=10, sway=0, tilt=4)),
    (3.1, dict(r_arm=-55, r_elb=30, l_arm=75, l_elb=10, sway=4, tilt=6)),
    (3.6, dict(r_arm=-55, r_elb=-40, l_arm=75, l_elb=10, sway=0, tilt=4)),
    (4.1, dict(r_arm=-55, r_elb=30, l_arm=75, l_elb=10, sway=4, tilt=6)),
    # left arm wave
    (4.7, dict(r_arm=75, r_elb=10, l_arm=-55, l_elb=-40, sway=0, tilt=-4)),
    (5.2, dict(r_arm=75, r_elb=10, l_arm=-55, l_elb=30, sway=-4, tilt=-6)),
    (5.7, dict(r_arm=75, r_elb=10, l_arm=-55, l_elb=-40, sway=0, tilt=-4)),
    (6.2, dict(r_arm=75, r_elb=10, l_arm=-55, l_elb=30, sway=-4, tilt=-6)),
    # both arms up, bouncing
    (6.8, dict(r_arm=-50, r_elb=-5, l_arm=-50, l_elb=-5, sway=0, tilt=0)),
    (7.2, dict(r_arm=-40, r_elb=15, l_arm=-40, l_elb=15, sway=6, tilt=3)),
    (7.6, dict(r_arm=-50, r_elb=-5, l_arm=-50, l_elb=-5, sway=-6, tilt=-3)),
    # arms out, elbow waves
    (8.2, dict(r_arm=0, r_elb=-35, l_arm=0, l_elb=35, sway=0, tilt=0)),
    (8.7, dict(r_arm=0, r_elb=35, l_arm=0, l_elb=-35, sway=8, tilt=4)),
    (9.2, dict(r_arm=0, r_elb=-35, l_arm=0, l_elb=35, sway=-8, tilt=-4)),
    # clap in front of the chest
    (9.8, dict(r_arm=70, r_elb=105, l_arm=70, l_elb=105, sway=0, tilt=0)),
    (10.1, dict(r_arm=65, r_elb=100, l_arm=65, l_elb=100, sway=0, tilt=0)),
    (10.4, dict(r_arm=70, r_elb=105, l_arm=70, l_elb=105, sway=0, tilt=0)),
    (10.7, dict(r_arm=65, r_elb=100, l_arm=65, l_elb=100, sway=0, tilt=0)),
    (11.3, dict(r_arm=75, r_elb=15, l_arm=75, l_elb=15, sway=10, tilt=5)),
    (12.0, dict(r_arm=75, r_elb=10, l_arm=75, l_elb=10, sway=0, tilt=0)),
]


def _ease(a: float, b: float, t: float) -> float:
    return a + (b - a) * (1 - math.cos(math.pi * t)) / 2


def params_at(t: float) -> dict[str, float]:
    for (t0, k0), (t1, k1) in zip(KEYS, KEYS[1:]):
        if t0 <= t <= t1:
            u = (t - t0) / (t1 - t0)
            return {k: _ease(k0[k], k1[k], u) for k in k0}
    return dict(KEYS[-1][1])


def _rot(v: np.ndarray, deg: float) -> np.ndarray:
    a = math.radians(deg)
    c, s = math.cos(a), math.sin(a)
    return np.array([c * v[0] - s * v[1], s * v[0] + c * v[1]])


def face_template() -> np.ndarray:
    """70 points (iBUG 68 + pupils) relative to the nose tip, for a face ~58 px wide."""
    pts = []
    for i in range(17):  # jaw: from the subject's right (image left) round the chin
        a = math.pi * (1.0 - i / 16.0)
        pts.append((29 * math.cos(a), 2 + 30 * math.sin(a) * (1.0 if a < math.pi else 1.0)))
    pts = [(x, y if i in (0, 16) else abs(y) + 2) for i, (x, y) in enumerate(pts)]
    for side in (-1, 1):  # eyebrows: right (image left) first
        for i in range(5):
            x = side * (6 + i * 4.5) if side > 0 else -(24 - i * 4.5)
            pts.append((x, -22 - 3 * math.sin(math.pi * i / 4)))
    for i in range(4):  # nose bridge
        pts.append((0, -17 + i * 5))
    for i in range(5):  # nose lower
        pts.append((-6 + 3 * i, 2 + (1 if i in (1, 3) else 0) + (1.5 if i == 2 else 0)))
    for cx in (-13, 13):  # eyes: right eye (image left) first
        for i in range(6):
            a = math.pi - i * math.pi / 3
            pts.append((cx + 6 * math.cos(a), -12 - 2.5 * math.sin(a)))
    for i in range(12):  # outer lips
        a = math.pi - i * math.pi / 6
        pts.append((12 * math.cos(a), 12 - 4 * math.sin(a)))
    for i in range(8):  # inner lips
        a = math.pi - i * math.pi / 4
        pts.append((8 * math.cos(a), 12 - 1.5 * math.sin(a)))
    pts += [(-13, -12), (13, -12)]  # pupils: right, left
    arr = np.array(pts, dtype=np.float64)
    assert arr.shape == (70, 2)
    return arr


def hand_template() -> np.ndarray:
    """21 points of an open hand, wrist at the origin, fingers along +x (length ~34 px)."""
    pts = [(0.0, 0.0)]
    spreads = [(-40, 4, 6.0), (-12, 4, 9.0), (0, 4, 10.0), (12, 4, 9.5), (24, 4, 7.5)]
    for k, (angle, n, seg) in enumerate(spreads):
        base = _rot(np.array([10.0 if k else 5.0, 0.0]), angle)
        d = _rot(np.array([seg, 0.0]), angle * 0.6)
        for j in range(n):
            pts.append(tuple(base + d * j))
    return np.array(pts, dtype=np.float64)


def frame_keypoints(t: float) -> dict:
    p = params_at(t)
    neck = NECK + np.array([p["sway"], abs(p["sway"]) * 0.15])
    body = np.zeros((18, 3))
    body[1] = (*neck, 1)
    up = _rot(np.array([0.0, -1.0]), p["tilt"])
    nose = neck + up * HEAD_UP
    body[0] = (*nose, 1)
    side = _rot(np.array([1.0, 0.0]), p["tilt"])
    body[14] = (*(nose - side * 12 + up * 10), 1)  # right eye (image left)
    body[15] = (*(nose + side * 12 + up * 10), 1)
    body[16] = (*(nose - side * 28 + up * 4), 1)  # right ear
    body[17] = (*(nose + side * 28 + up * 4), 1)
    hands = {}
    for name, sgn, sh, el, wr, key in (("r", -1, 2, 3, 4, "right"), ("l", 1, 5, 6, 7, "left")):
        shoulder = neck + np.array([sgn * SHOULDER_HALF, 2.0])
        # angle measured outwards from horizontal, + is down: mirror for the right side
        a = math.radians(p[f"{name}_arm"])
        d1 = np.array([sgn * math.cos(a), math.sin(a)])
        elbow = shoulder + d1 * UPPER_ARM
        a2 = math.radians(p[f"{name}_arm"] + p[f"{name}_elb"])
        d2 = np.array([sgn * math.cos(a2), math.sin(a2)])
        wrist = elbow + d2 * FOREARM
        body[sh], body[el], body[wr] = (*shoulder, 1), (*elbow, 1), (*wrist, 1)
        ang = math.degrees(math.atan2(d2[1], d2[0]))
        tmpl = hand_template()
        if sgn < 0:  # mirror the thumb side for the right hand
            tmpl[:, 1] *= -1
        hand = np.array([_rot(q, ang) for q in tmpl]) + wrist
        hands[key] = np.concatenate([hand, np.ones((21, 1))], axis=1)
    # hips (8, 11) and legs are below the frame: missing, as in a waist-up portrait
    face = np.array([_rot(q, p["tilt"]) for q in face_template()]) + nose
    face = np.concatenate([face, np.ones((70, 1))], axis=1)

    def flat(a: np.ndarray) -> list[float]:
        out = a.copy()
        inside = (out[:, 0] >= 0) & (out[:, 0] < W) & (out[:, 1] >= 0) & (out[:, 1] < H)
        out[~inside] = 0
        out[out[:, 2] == 0] = 0
        return [round(float(v), 2) for v in out.reshape(-1)]

    return {"people": [{"pose_keypoints_2d": flat(body), "face_keypoints_2d": flat(face),
                        "hand_left_keypoints_2d": flat(hands["left"]),
                        "hand_right_keypoints_2d": flat(hands["right"])}],
            "canvas_width": W, "canvas_height": H}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "assets" /
                                         "motion" / "upper_body_dance.json"))
    args = ap.parse_args()
    frames = [frame_keypoints(i / FPS) for i in range(FPS * SECONDS)]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    doc = {"name": "upper_body_dance", "fps": FPS, "canvas_width": W, "canvas_height": H,
           "description": "Keyframed upper-body dance made for this pack (CC0). Hips and legs "
                          "are below the frame (missing), like a waist-up portrait.",
           "frames": frames}
    out.write_text(json.dumps(doc, separators=(",", ":")))
    print(f"{out}: {len(frames)} frames at {FPS} fps")


if __name__ == "__main__":
    main()
