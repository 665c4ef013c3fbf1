"""One entry point for the pose backends: ``mediapipe`` (offline), ``openpose`` and ``dwpose``
(weights through the registry). Every backend returns :class:`.base.Detection` lists with
keypoints in pixels of the frame, in the OpenPose layouts of ``models.schema``.

Two guards make the detectors neither invent nor lose people (:class:`PoseEstimator`):

- **No ghosts.** MediaPipe's video tracking keeps following "a person" through frames where
  nobody is left to see (a fade to black, a near-empty frame). A tracked person is checked
  when it looks doubtful — the frame is nearly flat under its keypoints (grey-level standard
  deviation below :data:`LOW_CONTRAST`), its segmentation covers almost nothing of its box,
  or its landmarks' mean visibility is low — by a static (non-tracking) detection on the
  frame and on an enlarged crop around it; when neither finds anybody it is dropped. Clear
  frames are never second-guessed: the static detector misses real people now and then.
- **Small people.** A person ~50 px tall in a 350 px frame is too small for MediaPipe's
  person detector. When a frame has nobody, the detector runs again on an enlarged crop
  around the last place a person was seen, else on 3 x 3 overlapping half-size tiles
  (each enlarged to :data:`CROP_SIDE` px); keypoints and mask are mapped back to the frame.

:attr:`PoseEstimator.stats` counts the frames without a person, the ghosts dropped and the
people found only in an enlarged crop.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import cv2
import numpy as np
import torch

from ..core.cache import model_cache
from ..io.weights import resolve
from .base import Detection, HandGapFiller, fill_missing_hands, mask_from_keypoints

logger = logging.getLogger(__name__)

LOW_CONTRAST = 8.0  # grey std (0..255) under a tracked person below which it is doubtful
LOW_MASK = 0.05  # mean segmentation inside a tracked person's box below which it is doubtful
LOW_SCORE = 0.5  # mean landmark visibility below which a tracked person is doubtful
CROP_SIDE = 384  # enlarged crops are resized to this long side
CROP_CONTEXT = 3.0  # a crop around a known person is this many times its box's long side
HISTORY = 30  # frames after the last sighting in which the crop follows its box
MIN_TILED_SIDE = 192  # frames with a shorter side are not tiled (already enlarged whole)


def _few(frames: list[int], limit: int = 12) -> str:
    return ", ".join(map(str, frames[:limit])) + (", ..." if len(frames) > limit else "")


@dataclass
class DetectionStats:
    """What a :class:`PoseEstimator` saw, by frame index (calls in order, from 0)."""

    frames: int = 0
    missing: list[int] = field(default_factory=list)
    ghosts: list[int] = field(default_factory=list)
    enlarged: list[int] = field(default_factory=list)

    def notes(self) -> list[str]:
        """Sentences for a report: ghosts dropped, people found only in an enlarged crop."""
        out = []
        if self.ghosts:
            out.append(f"{len(self.ghosts)} tracked person(s) dropped: a static detection "
                       f"found nobody there (frames {_few(self.ghosts)})")
        if self.enlarged:
            out.append(f"a small person found only in an enlarged crop in "
                       f"{len(self.enlarged)} frame(s) ({_few(self.enlarged)})")
        return out

    def __str__(self) -> str:
        text = f"{self.frames} frame(s), no person in {len(self.missing)}"
        if self.missing:
            text += f" ({_few(self.missing)})"
        return "; ".join([text, *self.notes()])

POSE_BACKENDS: tuple[str, ...] = ("mediapipe", "openpose", "dwpose")
# Registry names each backend needs (``mediapipe`` ships its models in the wheel).
POSE_WEIGHTS: dict[str, tuple[str, ...]] = {
    "mediapipe": (),
    "openpose": ("openpose_body", "openpose_hand", "openpose_face"),
    "dwpose": ("dwpose_detector", "dwpose_wholebody"),
}

_KIND = "pose"
_KIND_LIMIT = 2  # pose networks kept loaded at once


def clear_cache() -> None:
    """Forget loaded pose networks (frees their memory)."""
    model_cache().clear(_KIND)


class PoseEstimator:
    """Callable ``rgb uint8 (H, W, 3) -> list[Detection]`` for one backend; use as a context
    manager (the MediaPipe video tracker holds native resources until closed).

    Every detection gets a mask: the backend's segmentation where it has one (MediaPipe),
    else one drawn from the keypoints (:func:`.base.mask_from_keypoints`). Hands no detector
    found are derived from the forearm when ``derive_hands``.

    Args:
        verify_tracking: drop tracked MediaPipe people a static detection cannot confirm
            (module docstring); only matters with ``video``.
        find_small: search enlarged crops when a frame has nobody (module docstring);
            None = on for ``mediapipe`` (the multi-person backends have their own detector).
    """

    def __init__(self, backend: str, *, device: torch.device | str = "cpu", video: bool = False,
                 hands: bool = True, face: bool = True, derive_hands: bool = True,
                 allow_download: bool = True, verify_tracking: bool = True,
                 find_small: bool | None = None) -> None:
        if backend not in POSE_BACKENDS:
            raise ValueError(f"unknown pose backend {backend!r}; choose one of "
                             f"{', '.join(POSE_BACKENDS)}")
        self.backend = backend
        self.hands, self.face, self.derive_hands = hands, face, derive_hands
        # In a video, a hand the detector lost for a few frames is carried over (one person).
        self._gaps = HandGapFiller() if video and hands else None
        self._close: Callable[[], None] | None = None
        self.stats = DetectionStats()
        self._last_box: tuple[float, float, float, float] | None = None
        self._last_seen = -(10 ** 9)
        self._verify = bool(video and verify_tracking and backend == "mediapipe")
        self._find_small = backend == "mediapipe" if find_small is None else bool(find_small)
        dev = str(torch.device(device))
        if backend == "mediapipe":
            from .mediapipe_holistic import HolisticDetector, detect_people

            det = HolisticDetector(static_image_mode=not video, with_mask=True,
                                   derive_hands=derive_hands)
            self._run: Callable[[np.ndarray], list[Detection]] = det
            self._close = det.close
            # Crops and checks never go through the tracker (they would move its state).
            self._static: Callable[[np.ndarray], list[Detection]] = det if not video else \
                (lambda rgb: detect_people(rgb, with_mask=True, derive_hands=derive_hands))
        elif backend == "openpose":
            from .openpose_aux import OpenPoseAux

            paths = [resolve("openpose_body", allow_download=allow_download)]
            paths.append(resolve("openpose_hand", allow_download=allow_download)
                         if hands else None)
            paths.append(resolve("openpose_face", allow_download=allow_download)
                         if face else None)
            key = ("openpose", *map(str, paths), dev)
            self._run = model_cache().get_or_create(
                _KIND, key, lambda: OpenPoseAux(*paths, device=dev), device=dev,
                kind_limit=_KIND_LIMIT)
        else:
            from .dwpose import DWPoseOnnx

            det_p = resolve("dwpose_detector", allow_download=allow_download)
            pose_p = resolve("dwpose_wholebody", allow_download=allow_download)
            providers = ["CUDAExecutionProvider", "CPUExecutionProvider"] \
                if dev.startswith("cuda") else ["CPUExecutionProvider"]
            key = ("dwpose", str(det_p), str(pose_p), dev)
            self._run = model_cache().get_or_create(
                _KIND, key, lambda: DWPoseOnnx(det_p, pose_p, providers=providers),
                device=dev, kind_limit=_KIND_LIMIT)
        if backend != "mediapipe":
            self._static = self._run

    def __call__(self, rgb: np.ndarray) -> list[Detection]:
        h, w = rgb.shape[:2]
        t = self.stats.frames
        self.stats.frames += 1
        dets = self._run(rgb)
        ghost = False
        if dets and self._verify and _doubtful(rgb, dets[0]) \
                and not self._confirmed(rgb, dets[0]):
            logger.debug("frame %d: tracked person dropped (a static detection finds nobody)",
                         t)
            self.stats.ghosts.append(t)
            dets, ghost = [], True
        if not dets and self._find_small and not ghost:
            dets = self._search_enlarged(rgb, t)
            if dets:
                self.stats.enlarged.append(t)
        if dets:
            box = max((d.person.bbox() for d in dets if d.person.bbox() is not None),
                      key=lambda b: (b[2] - b[0]) * (b[3] - b[1]), default=None)
            if box is not None:
                self._last_box, self._last_seen = box, t
        else:
            self.stats.missing.append(t)
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

    def _confirmed(self, rgb: np.ndarray, det: Detection) -> bool:
        """Whether a static detection finds a person in the frame or around ``det``."""
        if self._static(rgb):
            return True
        box = det.person.bbox()
        return box is not None and bool(self._in_crop(rgb, _square(box, rgb.shape[:2])))

    def _in_crop(self, rgb: np.ndarray, region: tuple[int, int, int, int]) -> list[Detection]:
        """Detect in ``rgb[y0:y1, x0:x1]`` enlarged to CROP_SIDE; keypoints and masks mapped
        back to the frame. Only plausible people (see :func:`_doubtful`) are kept."""
        x0, y0, x1, y1 = region
        crop = rgb[y0:y1, x0:x1]
        if crop.shape[0] < 8 or crop.shape[1] < 8:
            return []
        s = CROP_SIDE / max(crop.shape[:2])
        big = cv2.resize(crop, (max(1, round(crop.shape[1] * s)), max(1, round(crop.shape[0] * s))),
                         interpolation=cv2.INTER_CUBIC if s > 1 else cv2.INTER_AREA)
        found = []
        for d in self._static(np.ascontiguousarray(big)):
            if _doubtful(big, d):
                continue
            sx, sy = crop.shape[1] / big.shape[1], crop.shape[0] / big.shape[0]
            person = d.person.scaled(sx, sy, x0, y0)
            mask = None
            if d.mask is not None:
                mask = np.zeros(rgb.shape[:2], np.float32)
                mask[y0:y1, x0:x1] = cv2.resize(d.mask, (crop.shape[1], crop.shape[0]),
                                                interpolation=cv2.INTER_LINEAR)
            found.append(Detection(person=person, mask=mask, score=d.score,
                                   derived_hands=d.derived_hands))
        return found

    def _search_enlarged(self, rgb: np.ndarray, t: int) -> list[Detection]:
        """A person too small for the detector: look in an enlarged crop around the last
        sighting, else in enlarged tiles; the best tile hit is re-detected in a crop centred
        on it (a tile may cut the person). Returns at most one detection."""
        h, w = rgb.shape[:2]
        if self._last_box is not None and t - self._last_seen <= HISTORY:
            found = self._in_crop(rgb, _square(self._last_box, (h, w)))
            if found:
                return [max(found, key=lambda d: d.score)]
        if min(h, w) < MIN_TILED_SIDE:
            return []
        side = min(h, w) // 2
        hits: list[Detection] = []
        for ty in sorted({0, (h - side) // 2, h - side}):
            for tx in sorted({0, (w - side) // 2, w - side}):
                hits += self._in_crop(rgb, (tx, ty, tx + side, ty + side))
        if not hits:
            return []
        best = max(hits, key=lambda d: d.score)
        box = best.person.bbox()
        if box is not None:
            again = self._in_crop(rgb, _square(box, (h, w)))
            if again:
                return [max(again, key=lambda d: d.score)]
        return [best]

    def close(self) -> None:
        if self._close is not None:
            self._close()
            self._close = None

    def __enter__(self) -> PoseEstimator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _square(box: tuple[float, float, float, float], hw: tuple[int, int],
            context: float = CROP_CONTEXT) -> tuple[int, int, int, int]:
    """A square region ``context`` times the box's long side (at least 64 px) around its
    centre, shifted/clipped into the frame: (x0, y0, x1, y1)."""
    h, w = hw
    x0, y0, x1, y1 = box
    side = min(max(64.0, context * max(x1 - x0, y1 - y0)), float(max(h, w)))
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    ax = int(round(min(max(cx - side / 2, 0.0), max(w - side, 0.0))))
    ay = int(round(min(max(cy - side / 2, 0.0), max(h - side, 0.0))))
    return ax, ay, min(w, int(round(ax + side))), min(h, int(round(ay + side)))


def _doubtful(rgb: np.ndarray, det: Detection) -> bool:
    """Whether a detection may be a ghost: low mean visibility, a nearly flat image under its
    keypoints, or a segmentation that covers almost none of its box."""
    if det.score < LOW_SCORE:
        return True
    box = det.person.bbox()
    if box is None:
        return True
    h, w = rgb.shape[:2]
    x0, y0 = max(0, int(box[0])), max(0, int(box[1]))
    x1, y1 = min(w, int(np.ceil(box[2])) + 1), min(h, int(np.ceil(box[3])) + 1)
    if x1 - x0 < 2 or y1 - y0 < 2:
        return True
    gray = cv2.cvtColor(np.ascontiguousarray(rgb[y0:y1, x0:x1]), cv2.COLOR_RGB2GRAY)
    if float(gray.std()) < LOW_CONTRAST:
        return True
    return det.mask is not None and float(det.mask[y0:y1, x0:x1].mean()) < LOW_MASK


def _drop_outside(person, width: int, height: int) -> None:
    """Mark keypoints outside the frame as missing, in place (detectors never report those;
    keeping them would also break the normalised/pixel detection of POSE_KEYPOINT)."""
    for arr in (person.body, person.face, person.left_hand, person.right_hand):
        out = (arr[:, 0] < 0) | (arr[:, 0] > width) | (arr[:, 1] < 0) | (arr[:, 1] > height)
        arr[out] = 0.0
