"""Drawing keypoints and labels: the stick figure P2B reads (paper §3.1, `P^S`).

The stick figure follows OpenPose's drawing (as comfyui_controlnet_aux renders it): body limbs
as filled ellipses in the OpenPose colours at 60% intensity, joints as dots, hand edges in
hue-stepped colours with blue joints, face landmarks as white dots.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import cv2
import numpy as np

from ..core.schema import BODY_COLORS, BODY_LIMBS, HAND_COLORS, HAND_EDGES, Person


def _scale(height: int, width: int) -> float:
    return max(min(height, width) / 512.0, 0.25)


def draw_pose(people: Sequence[Person], height: int, width: int, *, body: bool = True,
              hands: bool = True, face: bool = True, threshold: float = 0.05) -> np.ndarray:
    """Render people (pixel coordinates) into a black canvas.

    Returns:
        uint8 RGB, shape (height, width, 3).
    """
    if height <= 0 or width <= 0:
        raise ValueError(f"canvas must be at least 1x1, got {width}x{height}")
    canvas = np.zeros((height, width, 3), dtype=np.uint8)
    s = _scale(height, width)
    stick = max(1, round(4 * s))
    dot = max(1, round(4 * s))
    for person in people:
        if body:
            _draw_body(canvas, person.body, stick, dot, threshold)
        if hands:
            for hand in (person.left_hand, person.right_hand):
                _draw_hand(canvas, hand, max(1, round(2 * s)), dot, threshold)
        if face:
            _draw_face(canvas, person.face, max(1, round(3 * s)), threshold)
    return canvas


def _draw_body(canvas: np.ndarray, kp: np.ndarray, stick: int, dot: int, thr: float) -> None:
    for (a, b), color in zip(BODY_LIMBS, BODY_COLORS):
        if kp[a, 2] <= thr or kp[b, 2] <= thr:
            continue
        (x0, y0), (x1, y1) = kp[a, :2], kp[b, :2]
        mx, my = (x0 + x1) / 2, (y0 + y1) / 2
        length = math.hypot(x1 - x0, y1 - y0) / 2
        angle = math.degrees(math.atan2(y1 - y0, x1 - x0))
        poly = cv2.ellipse2Poly((int(round(mx)), int(round(my))), (int(round(length)), stick),
                                int(round(angle)), 0, 360, 1)
        cv2.fillConvexPoly(canvas, poly, [int(c * 0.6) for c in color])
    for i, color in enumerate(BODY_COLORS):
        if kp[i, 2] > thr:
            cv2.circle(canvas, (int(round(kp[i, 0])), int(round(kp[i, 1]))), dot,
                       [int(c) for c in color], thickness=-1)


def _draw_hand(canvas: np.ndarray, kp: np.ndarray, width: int, dot: int, thr: float) -> None:
    for (a, b), color in zip(HAND_EDGES, HAND_COLORS):
        if kp[a, 2] <= thr or kp[b, 2] <= thr:
            continue
        cv2.line(canvas, (int(round(kp[a, 0])), int(round(kp[a, 1]))),
                 (int(round(kp[b, 0])), int(round(kp[b, 1]))), [int(c) for c in color], width)
    for x, y, c in kp:
        if c > thr:
            cv2.circle(canvas, (int(round(x)), int(round(y))), max(1, dot // 2), (0, 0, 255), -1)


def _draw_face(canvas: np.ndarray, kp: np.ndarray, radius: int, thr: float) -> None:
    for x, y, c in kp:
        if c > thr:
            cv2.circle(canvas, (int(round(x)), int(round(y))), radius, (255, 255, 255), -1)
