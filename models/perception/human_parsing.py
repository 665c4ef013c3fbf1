"""HumanParse backends behind one interface: image + one chosen person -> 22-label parsing.

Backends:
- ``geometric``: weightless (:mod:`.geometric_parsing`), needs keypoints and ideally a mask;
- ``schp_lip``: SCHP LIP ResNet-101 in torch (:mod:`.schp`), weights ``schp_lip`` from the
  registry (CC BY-NC-SA 4.0, non-commercial);
- ``schp_lip_onnx``: the same network exported to ONNX (OOTDiffusion's ``parsing_lip.onnx``),
  run with onnxruntime.

SCHP's 20 LIP labels map onto ours with :data:`..schema.LIP_TO_SCHEMA`; hands (20/21) are then
painted from the hand keypoints (:func:`.hands.paint_hands`). With several people in the frame
the parsing is restricted to the chosen one: each person pixel goes to the person whose
skeleton is nearest.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Iterator, Sequence
from contextlib import ExitStack
from pathlib import Path

import cv2
import numpy as np
import torch

from ..core.schema import BODY_LIMBS, LIP_TO_SCHEMA, Person, select_person
from ..io.weights import WEIGHT_EXTENSIONS, WeightError, WeightSpec, resolve
from .base import Detection
from .geometric_parsing import parse_geometric
from .hands import paint_hands

logger = logging.getLogger(__name__)

BACKENDS: tuple[str, ...] = ("geometric", "schp_lip", "schp_lip_onnx")
WEIGHTLESS = "geometric"
_SCHP_MARGIN = 0.15  # extra margin around a person's box when parsing a crop


def lip_to_schema(lip: np.ndarray) -> np.ndarray:
    """SCHP/LIP labels (0..19) -> our 22-label schema (uint8, same shape)."""
    lip = np.asarray(lip)
    if lip.size and int(lip.max()) >= len(LIP_TO_SCHEMA):
        raise ValueError(f"LIP label {int(lip.max())} out of range 0..{len(LIP_TO_SCHEMA) - 1}")
    return LIP_TO_SCHEMA[lip]


def skeleton_distance(person: Person, height: int, width: int,
                      threshold: float = 0.05) -> np.ndarray:
    """Distance (float32 (H, W)) of every pixel to the person's skeleton (limbs + keypoints)."""
    canvas = np.ones((height, width), dtype=np.uint8)
    kp = person.body
    ok = kp[:, 2] > threshold
    drew = False
    for a, b in BODY_LIMBS:
        if ok[a] and ok[b]:
            cv2.line(canvas, (int(kp[a, 0]), int(kp[a, 1])), (int(kp[b, 0]), int(kp[b, 1])), 0, 1)
            drew = True
    for pts in (kp, person.face, person.left_hand, person.right_hand):
        for x, y, c in pts:
            if c > threshold and 0 <= x < width and 0 <= y < height:
                canvas[int(y), int(x)] = 0
                drew = True
    if not drew:
        return np.full((height, width), np.inf, dtype=np.float32)
    return cv2.distanceTransform(canvas, cv2.DIST_L2, 3)


def restrict_to_person(labels: np.ndarray, people: Sequence[Person], chosen: int) -> np.ndarray:
    """Keep only the labelled pixels nearer to ``people[chosen]``'s skeleton than to any other's.

    Args:
        labels: uint8 (H, W).
    Returns:
        a copy with the other people's pixels set to background.
    """
    if len(people) < 2:
        return labels
    h, w = labels.shape
    dists = np.stack([skeleton_distance(p, h, w) for p in people])
    mine = np.argmin(dists, axis=0) == chosen
    out = labels.copy()
    out[~mine] = 0
    return out


def person_box(person: Person, height: int, width: int,
               margin: float = _SCHP_MARGIN) -> tuple[float, float, float, float] | None:
    """The person's keypoint box grown by ``margin`` of its size (and a head allowance)."""
    box = person.bbox()
    if box is None:
        return None
    x0, y0, x1, y1 = box
    bw, bh = x1 - x0, y1 - y0
    m = margin * max(bw, bh, 16.0)
    # keypoints stop at the eyes/ears: hair needs about a head height more above
    x0, x1 = max(0.0, x0 - m), min(width - 1.0, x1 + m)
    y0, y1 = max(0.0, y0 - 2 * m), min(height - 1.0, y1 + m)
    return (x0, y0, x1, y1)


class HumanParser:
    """One parsing backend, loaded once and reused for every frame.

    Args:
        backend: one of :data:`BACKENDS`.
        device: where the torch backend runs.
        weights: registry name, a :class:`WeightSpec` or a local file path for the SCHP
            backends (default: the backend's registry entry).
    """

    def __init__(self, backend: str = WEIGHTLESS, *, device: torch.device | str = "cpu",
                 weights: str | WeightSpec | os.PathLike[str] | None = None) -> None:
        if backend not in BACKENDS:
            raise ValueError(f"unknown parsing backend {backend!r}; choose one of "
                             f"{', '.join(BACKENDS)}")
        self.backend = backend
        self.device = torch.device(device)
        self._schp = None
        if backend == WEIGHTLESS:
            return
        from .schp import OnnxSCHP, SCHPParser, load_schp

        path = _weight_path(weights if weights is not None else backend)
        if backend == "schp_lip":
            net = load_schp(path, device=self.device)
        else:
            net = OnnxSCHP(path, providers=_onnx_providers(self.device))
        self._schp = SCHPParser(net, device=self.device)
        self.source = str(path)

    @property
    def needs_keypoints(self) -> bool:
        return self.backend == WEIGHTLESS

    def parse_frame(self, rgb: np.ndarray, *, detections: Sequence[Detection] = (),
                    people: Sequence[Person] | None = None, select: str = "largest",
                    index: int = 0, hands: bool = True, crop_to_person: bool = False,
                    detected: bool = True) -> np.ndarray | None:
        """Choose a person and parse the frame.

        Args:
            rgb: uint8 (H, W, 3).
            detections: what a pose detector found in this frame (keypoints + masks).
            people: the frame's people from elsewhere (POSE_KEYPOINT), in pixels of ``rgb``;
                None = the detections' people. A detection's mask is used when it shows the
                chosen person.
            select / index: ``largest`` or ``index`` (see :func:`..schema.select_person`).
            detected: False when no detector could run; SCHP then parses everyone, without
                hands, instead of reporting that nobody is there.
        Returns:
            uint8 (H, W) labels, or None when there is no person.
        Raises:
            ValueError: ``index`` is out of range.
        """
        if people is None:
            people = [d.person for d in detections]
        if not people:
            if not detected and not self.needs_keypoints:
                return self.parse(rgb, None, hands=False)
            return None
        chosen = select_person(people, select, index)
        k = next(j for j, p in enumerate(people) if p is chosen)
        mask = None
        for d in detections:
            if d.mask is not None and same_person(d.person, chosen):
                mask = d.mask
        return self.parse(rgb, chosen, mask=mask, people=people, chosen=k, hands=hands,
                          crop_to_person=crop_to_person)

    def parse(self, rgb: np.ndarray, person: Person | None, *, mask: np.ndarray | None = None,
              people: Sequence[Person] = (), chosen: int = 0, hands: bool = True,
              crop_to_person: bool = False) -> np.ndarray:
        """Parse one frame.

        Args:
            rgb: uint8 (H, W, 3).
            person: the chosen person's keypoints in pixels of ``rgb`` (None: SCHP parses
                everyone and no hands are drawn; the weightless backend then returns all
                background).
            mask: the chosen person's segmentation (H, W) in 0..1, if known.
            people: everyone found in the frame (``people[chosen]`` is ``person``); with two
                or more the result is restricted to the chosen person.
            hands: draw hand labels from the hand keypoints (SCHP backends).
            crop_to_person: SCHP parses the person's box instead of the whole frame (better
                for a small person in a large frame).
        Returns:
            uint8 (H, W) labels in the 22-label schema.
        """
        h, w = rgb.shape[:2]
        if self._schp is None:
            if person is None:
                return np.zeros((h, w), dtype=np.uint8)
            labels = parse_geometric(rgb, person, mask)
        else:
            box = person_box(person, h, w) if (crop_to_person and person is not None) else None
            labels = lip_to_schema(self._schp.parse(rgb, box))
            if person is not None and hands:
                labels = paint_hands(labels, person)
        if len(people) > 1:
            labels = restrict_to_person(labels, people, chosen)
        return labels


def same_person(a: Person, b: Person) -> bool:
    """Whether two keypoint sets describe the same person: their keypoint boxes overlap by
    more than half of the smaller one."""
    ba, bb = a.bbox(), b.bbox()
    if ba is None or bb is None:
        return False
    ix = max(0.0, min(ba[2], bb[2]) - max(ba[0], bb[0]))
    iy = max(0.0, min(ba[3], bb[3]) - max(ba[1], bb[1]))
    area = min((ba[2] - ba[0]) * (ba[3] - ba[1]), (bb[2] - bb[0]) * (bb[3] - bb[1]))
    return area > 0 and ix * iy / area > 0.5


def parse_video(frames: Iterable[np.ndarray], *, backend: str = WEIGHTLESS,
                poses: Sequence[Sequence[Person]] | None = None, pose_backend: str = "mediapipe",
                select: str = "largest", index: int = 0, hands: bool = True,
                device: torch.device | str = "cpu") -> Iterator[np.ndarray | None]:
    """Parse a stream of frames (what the Human Parse node does, for scripts and the CLI).

    Args:
        frames: uint8 RGB (H, W, 3) frames, consumed one at a time.
        poses: per-frame people in pixels of the frames; None detects them with
            ``pose_backend`` (tracking across frames).
    Yields:
        uint8 (H, W) labels per frame, or None for a frame without a person.
    """
    from .pose import PoseEstimator

    parser = HumanParser(backend, device=device)
    need_detector = poses is None or parser.needs_keypoints
    with ExitStack() as stack:
        detector = stack.enter_context(PoseEstimator(pose_backend, device=device, video=True)) \
            if need_detector else None
        for i, rgb in enumerate(frames):
            dets = detector(rgb) if detector is not None else []
            yield parser.parse_frame(rgb, detections=dets,
                                     people=None if poses is None else poses[i], select=select,
                                     index=index, hands=hands, detected=detector is not None)


def _weight_path(weights: str | WeightSpec | os.PathLike[str]) -> Path:
    """A registry name or spec is resolved (downloaded if needed); a path is used as is."""
    if isinstance(weights, WeightSpec):
        return resolve(weights)
    if isinstance(weights, str) and os.sep not in weights and \
            not weights.endswith(WEIGHT_EXTENSIONS):
        return resolve(weights)
    path = Path(weights)
    if not path.is_file():
        raise WeightError(f"weight file {path} does not exist")
    return path


def _onnx_providers(device: torch.device) -> list[str]:
    if device.type == "cuda":
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]
