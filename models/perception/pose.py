"""One entry point for the pose backends: ``mediapipe`` (offline), ``openpose`` and ``dwpose``
(weights through the registry). Every backend returns :class:`.base.Detection` lists with
keypoints in pixels of the frame, in the OpenPose layouts of ``models.schema``.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from ..weights import resolve
from .base import Detection, HandGapFiller, fill_missing_hands, mask_from_keypoints

logger = logging.getLogger(__name__)

POSE_BACKENDS: tuple[str, ...] = ("mediapipe", "openpose", "dwpose")
# Registry names each backend needs (``mediapipe`` ships its models in the wheel).
POSE_WEIGHTS: dict[str, tuple[str, ...]] = {
    "mediapipe": (),
    "openpose": ("openpose_body", "openpose_hand", "openpose_face"),
    "dwpose": ("dwpose_detector", "dwpose_wholebody"),
}

_cache: OrderedDict[tuple, Any] = OrderedDict()
_cache_lock = threading.Lock()
_CACHE_SIZE = 2


def _cached(key: tuple, build: Callable[[], Any]) -> Any:
    with _cache_lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    model = build()
    with _cache_lock:
        _cache[key] = model
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return model


def clear_cache() -> None:
    """Forget loaded pose networks (frees their memory)."""
    with _cache_lock:
        _cache.clear()


class PoseEstimator:
    """Callable ``rgb uint8 (H, W, 3) -> list[Detection]`` for one backend; use as a context
    manager (the MediaPipe video tracker holds native resources until closed).

    Every detection gets a mask: the backend's segmentation where it has one (MediaPipe),
    else one drawn from the keypoints (:func:`.base.mask_from_keypoints`). Hands no detector
    found are derived from the forearm when ``derive_hands``.
    """

    def __init__(self, backend: str, *, device: torch.device | str = "cpu", video: bool = False,
                 hands: bool = True, face: bool = True, derive_hands: bool = True,
                 allow_download: bool = True) -> None:
        if backend not in POSE_BACKENDS:
            raise ValueError(f"unknown pose backend {backend!r}; choose one of "
                             f"{', '.join(POSE_BACKENDS)}")
        self.backend = backend
        self.hands, self.face, self.derive_hands = hands, face, derive_hands
        # In a video, a hand the detector lost for a few frames is carried over (one person).
        self._gaps = HandGapFiller() if video and hands else None
        self._close: Callable[[], None] | None = None
        dev = str(torch.device(device))
        if backend == "mediapipe":
            from .mediapipe_holistic import HolisticDetector

            det = HolisticDetector(static_image_mode=not video, with_mask=True,
                                   derive_hands=derive_hands)
            self._run: Callable[[np.ndarray], list[Detection]] = det
            self._close = det.close
        elif backend == "openpose":
            from .openpose_aux import OpenPoseAux

            paths = [resolve("openpose_body", allow_download=allow_download)]
            paths.append(resolve("openpose_hand", allow_download=allow_download)
                         if hands else None)
            paths.append(resolve("openpose_face", allow_download=allow_download)
                         if face else None)
            key = ("openpose", *map(str, paths), dev)
            self._run = _cached(key, lambda: OpenPoseAux(*paths, device=dev))
        else:
            from .dwpose import DWPoseOnnx

            det_p = resolve("dwpose_detector", allow_download=allow_download)
            pose_p = resolve("dwpose_wholebody", allow_download=allow_download)
            providers = ["CUDAExecutionProvider", "CPUExecutionProvider"] \
                if dev.startswith("cuda") else ["CPUExecutionProvider"]
            key = ("dwpose", str(det_p), str(pose_p), dev)
            self._run = _cached(key, lambda: DWPoseOnnx(det_p, pose_p, providers=providers))

    def __call__(self, rgb: np.ndarray) -> list[Detection]:
        h, w = rgb.shape[:2]
        dets = self._run(rgb)
        for d in dets:
            _drop_outside(d.person, w, h)
            if not self.hands:
                d.person.left_hand[:] = 0
                d.person.right_hand[:] = 0
            if not self.face:
                d.person.face[:] = 0
            if self.hands and self.derive_hands:
                d.derived_hands |= fill_missing_hands(d.person)
        if self._gaps is not None:
            if len(dets) == 1:
                self._gaps(dets[0])
            else:  # nobody, or several people we cannot tell apart: start over
                self._gaps.reset()
        for d in dets:
            if d.mask is None:
                d.mask = mask_from_keypoints(d.person, h, w)
        return dets

    def close(self) -> None:
        if self._close is not None:
            self._close()
            self._close = None

    def __enter__(self) -> PoseEstimator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _drop_outside(person, width: int, height: int) -> None:
    """Mark keypoints outside the frame as missing, in place (detectors never report those;
    keeping them would also break the normalised/pixel detection of POSE_KEYPOINT)."""
    for arr in (person.body, person.face, person.left_hand, person.right_hand):
        out = (arr[:, 0] < 0) | (arr[:, 0] > width) | (arr[:, 1] < 0) | (arr[:, 1] > height)
        arr[out] = 0.0
