"""controlnet-aux's OpenPose (body + hand + face, lllyasviel/Annotators weights) built from
files our weight registry resolved, so nothing downloads behind the registry's back.

controlnet_aux's ``Body``/``Hand``/``Face`` constructors call ``torch.load`` on a path; we
instead build their networks (``bodypose_model``, ``handpose_model``, ``FaceNet``), load the
state dicts with ``weights_only=True`` and strict key/shape checks, and reuse their inference
code unchanged.
"""

from __future__ import annotations

import logging
from pathlib import Path

import cv2
import numpy as np
import torch

from ..core.schema import NUM_BODY, NUM_FACE, NUM_HAND, Person
from ..io.loading import check_state_dict, load_torch_file
from .base import Detection

logger = logging.getLogger(__name__)

DETECT_RESOLUTION = 512  # controlnet_aux's default: the short side the frame is resized to


def _strip_first(model: torch.nn.Module, state: dict, source: str) -> dict:
    """controlnet_aux's ``util.transfer``: file keys lack the first component of ours."""
    out = {}
    missing = []
    for key in model.state_dict():
        short = ".".join(key.split(".")[1:])
        if short in state:
            out[key] = state[short]
        elif key in state:
            out[key] = state[key]
        else:
            missing.append(short)
    if missing:
        raise ValueError(f"{source} is not an OpenPose checkpoint for this network: "
                         f"{len(missing)} parameters missing (e.g. {missing[0]!r})")
    return out


def _load(model: torch.nn.Module, path: Path, transfer: bool) -> torch.nn.Module:
    state = load_torch_file(path)
    if not isinstance(state, dict):
        raise ValueError(f"{path} does not hold a state dict")
    if transfer:
        state = _strip_first(model, state, str(path))
    state = {k: v.float() for k, v in state.items()}
    check_state_dict(model, state, str(path))
    model.load_state_dict(state, strict=True)
    return model.eval()


def build_body(path: str | Path):
    from controlnet_aux.open_pose.body import Body
    from controlnet_aux.open_pose.model import bodypose_model

    body = Body.__new__(Body)
    body.model = _load(bodypose_model(), Path(path), transfer=True)
    return body


def build_hand(path: str | Path):
    from controlnet_aux.open_pose.hand import Hand
    from controlnet_aux.open_pose.model import handpose_model

    hand = Hand.__new__(Hand)
    hand.model = _load(handpose_model(), Path(path), transfer=True)
    return hand


def build_face(path: str | Path):
    from controlnet_aux.open_pose.face import Face, FaceNet, params

    face = Face.__new__(Face)
    face.inference_size = params["inference_img_size"]
    face.sigma = params["gaussian_sigma"]
    face.threshold = params["heatmap_peak_thresh"]
    face.model = _load(FaceNet(), Path(path), transfer=False)
    return face


class OpenPoseAux:
    """OpenPose body (+ hands, + face) through controlnet_aux's ``OpenposeDetector``.

    Args:
        body_path, hand_path, face_path: registry-resolved files (hand/face may be None to
            skip them).
        device: where the networks run.
        resolution: short side the frame is resized to before detection.
    """

    def __init__(self, body_path: str | Path, hand_path: str | Path | None = None,
                 face_path: str | Path | None = None, *, device: torch.device | str = "cpu",
                 resolution: int = DETECT_RESOLUTION) -> None:
        from controlnet_aux.open_pose import OpenposeDetector

        body = build_body(body_path)
        hand = build_hand(hand_path) if hand_path else None
        face = build_face(face_path) if face_path else None
        self.detector = OpenposeDetector(body, hand, face)
        for part in (body, hand, face):
            if part is not None:
                part.model.to(device)
        self.resolution = int(resolution)

    def __call__(self, rgb: np.ndarray) -> list[Detection]:
        """People in ``rgb`` (uint8 (H, W, 3) RGB), keypoints in pixels of ``rgb``."""
        h, w = rgb.shape[:2]
        k = min(self.resolution / min(h, w), 2048 / max(h, w))
        rh, rw = max(1, round(h * k)), max(1, round(w * k))
        img = cv2.resize(rgb, (rw, rh), interpolation=cv2.INTER_AREA if k < 1
                         else cv2.INTER_CUBIC) if (rh, rw) != (h, w) else rgb
        d = self.detector
        poses = d.detect_poses(np.ascontiguousarray(img),
                               include_hand=d.hand_estimation is not None,
                               include_face=d.face_estimation is not None)
        out = []
        for pose in poses:
            person = Person(
                body=_points(pose.body.keypoints, NUM_BODY, w, h, scored=True),
                face=_points(pose.face, NUM_FACE, w, h),
                left_hand=_points(pose.left, NUM_HAND, w, h),
                right_hand=_points(pose.right, NUM_HAND, w, h),
            )
            n = max(float(pose.body.total_parts), 1.0)
            score = float(np.clip(pose.body.total_score / n, 0.0, 1.0))
            out.append(Detection(person=person, mask=None, score=score))
        return out


def _points(kps, n: int, w: int, h: int, scored: bool = False) -> np.ndarray:
    """controlnet_aux keypoints (normalised, None or negative = missing) -> (n, 3) pixels."""
    arr = np.zeros((n, 3), np.float32)
    if kps is None:
        return arr
    for i, kp in enumerate(list(kps)[:n]):
        if kp is None or kp.x < 0 or kp.y < 0:
            continue
        conf = float(kp.score) if scored else 1.0
        arr[i] = (kp.x * w, kp.y * h, min(max(conf, 1e-3), 1.0))
    return arr
