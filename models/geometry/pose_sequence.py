"""POSE_KEYPOINT sequences as arrays: parse, pick one person per frame, write back.

A POSE_KEYPOINT value is a list of frames (one per video frame), each with its own canvas size
and either normalised (0..1) or pixel coordinates (see :mod:`.schema`). The temporal tools
(smoothing, retargeting, best frame) work on one coordinate space for the whole sequence, so:

- every frame is parsed into pixels of the **reference canvas** (the first frame's size);
  a frame whose canvas differs but has the same aspect ratio (within 1 %) is taken as the same
  view resized and its coordinates are rescaled; a different aspect ratio is an error (the
  frames cannot be the same view);
- keypoints with NaN/inf values are missing (confidence 0), like any undetected keypoint;
- a frame with no people is a frame where every keypoint is missing;
- the convention (normalised or pixels) is decided ONCE for the whole sequence
  (:func:`.schema.sequence_is_normalized`), never per frame;
- a frame whose person collapses to a few pixels is listed in ``collapsed`` (and logged);
- on output each frame gets back its own canvas size and the input's convention (normalised if
  the input was).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..core.schema import (
    NUM_ALL_KEYPOINTS,
    Person,
    collapsed_frames,
    frame_to_people,
    people_to_frame,
    select_person,
    sequence_is_normalized,
)

logger = logging.getLogger(__name__)

ASPECT_TOLERANCE = 0.01


@dataclass
class PoseSequence:
    """A parsed POSE_KEYPOINT sequence.

    people: per frame, the people in pixels of the reference canvas ``(width, height)``.
    sizes: per frame, its own canvas ``(width, height)``.
    normalized: whether the input used normalised coordinates (the output will too).
    collapsed: frames where a person spans fewer than ``schema.COLLAPSED_PX`` pixels.
    """

    people: list[list[Person]]
    sizes: list[tuple[int, int]]
    width: int
    height: int
    normalized: bool
    collapsed: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.people)

    def select(self, mode: str = "largest", index: int = 0) -> list[Person | None]:
        """One person per frame (``largest`` or ``index``); None where the frame has none
        (or, for ``index``, fewer people than ``index + 1``)."""
        out: list[Person | None] = []
        for found in self.people:
            if mode == "index":
                out.append(found[index] if index < len(found) else None)
            else:
                out.append(select_person(found, mode, index))
        return out

    def to_frames(self, people: Sequence[Sequence[Person]]) -> list[dict[str, Any]]:
        """POSE_KEYPOINT frames from per-frame people in reference-canvas pixels."""
        if len(people) != len(self.sizes):
            raise ValueError(f"expected {len(self.sizes)} frames of people, got {len(people)}")
        frames = []
        for found, (w, h) in zip(people, self.sizes):
            sx, sy = w / self.width, h / self.height
            if (w, h) != (self.width, self.height):
                found = [p.scaled(sx, sy) for p in found]
            frames.append(people_to_frame(list(found), w, h, normalized=self.normalized))
        return frames


def as_frame_list(value: Any, what: str = "POSE_KEYPOINT") -> list[Mapping[str, Any]]:
    """A POSE_KEYPOINT value as a list of frames (a single dict is one frame).

    Raises:
        ValueError: not a dict or a non-empty list.
    """
    if isinstance(value, Mapping):
        return [value]
    if not isinstance(value, (list, tuple)) or len(value) == 0:
        got = "an empty list" if isinstance(value, (list, tuple)) else type(value).__name__
        raise ValueError(f"{what}: expected a non-empty list of frames, got {got}")
    return list(value)


def parse_sequence(value: Any, what: str = "POSE_KEYPOINT") -> PoseSequence:
    """Parse a POSE_KEYPOINT list into a :class:`PoseSequence` (see the module docstring).

    Raises:
        ValueError: malformed frames, or frames whose canvases have different aspect ratios.
    """
    frames = as_frame_list(value, what)
    people: list[list[Person]] = []
    sizes: list[tuple[int, int]] = []
    normalized = sequence_is_normalized(frames)
    ref: tuple[int, int] | None = None
    for t, frame in enumerate(frames):
        found = frame_to_people(frame, what=f"{what} frame {t}", normalized=normalized)
        w, h = int(frame["canvas_width"]), int(frame["canvas_height"])
        if ref is None:
            ref = (w, h)
        elif (w, h) != ref:
            a0, a1 = ref[0] / ref[1], w / h
            if abs(a1 / a0 - 1.0) > ASPECT_TOLERANCE:
                raise ValueError(
                    f"{what}: frame {t} has a {w}x{h} canvas but frame 0 is {ref[0]}x{ref[1]} "
                    "(a different aspect ratio, so not the same view resized)")
            found = [p.scaled(ref[0] / w, ref[1] / h) for p in found]
        people.append(found)
        sizes.append((w, h))
    assert ref is not None
    collapsed = collapsed_frames(people)
    if collapsed:
        logger.warning("%s: the person collapses to under a few pixels in %d frame(s) (%s); "
                       "are these frames' coordinates in another convention?", what,
                       len(collapsed), _frame_list(collapsed))
    return PoseSequence(people, sizes, ref[0], ref[1], normalized, collapsed)


def _frame_list(frames: Sequence[int], limit: int = 12) -> str:
    """'3, 4, 9' (at most ``limit`` indices, then '...')."""
    text = ", ".join(str(t) for t in frames[:limit])
    return text + (", ..." if len(frames) > limit else "")


def stack_points(people: Sequence[Person | None]) -> np.ndarray:
    """Per-frame people -> (T, 130, 3) array (missing person = all keypoints missing)."""
    out = np.zeros((len(people), NUM_ALL_KEYPOINTS, 3), dtype=np.float64)
    for t, p in enumerate(people):
        if p is not None:
            out[t] = p.all_points()
    return out


def unstack_points(points: np.ndarray) -> list[Person | None]:
    """(T, 130, 3) -> per-frame people; a frame with no confident keypoint gives None."""
    out: list[Person | None] = []
    for pts in points:
        out.append(Person.from_points(pts) if (pts[:, 2] > 0).any() else None)
    return out
