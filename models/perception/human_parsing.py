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
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import torch

from ..schema import BODY_LIMBS, LIP_TO_SCHEMA, Person
from ..weights import WEIGHT_EXTENSIONS, WeightError, WeightSpec, resolve
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
