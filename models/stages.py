"""The method's per-video stage work, written once (SPEC §1).

Every stage node runs these functions over its IMAGE batch; the CLI's thin driver
(``pipeline.py`` at the top of the pack) and the streaming all-in-one node run the very same
functions over a stream of frames. So a ComfyUI graph and the CLI give the same frames on the
same inputs (``tests/test_one_path.py``), and a fix made here reaches both.

Stages, in the order a frame meets them:

- target, once: :func:`select_detections` -> :func:`parse_target` -> :class:`TargetPhoto`
  -> :func:`fill_person` (its background) -> :class:`FaceRefiner` (its face);
- driver, once per video: :func:`select_detections` per frame -> :func:`fill_missing_detections`
  (the missing-person policy) -> smoothing (``temporal.smooth_pose_sequence``) ->
  :func:`person_in_frame`;
- per driver frame: :class:`P2BWarp` -> :class:`B2FWarp` -> ``temporal.MaskStabilizer`` ->
  ``blend.blend_frame`` -> :class:`FaceRefiner`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .core.schema import LABEL_GROUPS, Person, frame_to_people, select_person
from .geometry.temporal import GapFillReport, fill_missing_people

# --------------------------------------------------------------------------------------------
# The target
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class TargetPhoto:
    """The typed TARGET payload: one target photo as the weightless renderer needs it.

    Attributes:
        image: uint8 (h, w, 3) RGB photo.
        labels: uint8 (h, w) parsing p* of that photo (the pack's label schema).
        person: the target's keypoints in pixels of ``image``, or None when none were given
            (the warp backends then refuse it, saying so).
    """

    image: np.ndarray
    labels: np.ndarray
    person: Person | None

    def __post_init__(self) -> None:
        img, lab = self.image, self.labels
        if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
            raise ValueError(f"TargetPhoto.image must be uint8 (h, w, 3), got {img.dtype} "
                             f"{img.shape}")
        if lab.dtype != np.uint8 or lab.shape != img.shape[:2]:
            raise ValueError(f"TargetPhoto.labels must be uint8 {img.shape[:2]}, got "
                             f"{lab.dtype} {lab.shape}")


def largest_detection(dets: Sequence[Any]) -> Any:
    """The detection whose person has the largest keypoint box (area in pixels)."""
    def area(d: Any) -> float:
        box = d.person.bbox()
        return -1.0 if box is None else (box[2] - box[0] + 1) * (box[3] - box[1] + 1)
    return max(dets, key=area)


def select_detections(dets: list[Any], mode: str = "largest", index: int = 0) -> list[Any]:
    """Keep ``all`` people, the ``largest``, or the one at ``index`` counted left to right (so
    one index means one place in every frame).

    Raises:
        IndexError: ``index`` is out of range for this frame (the message says how many).
    """
    if not dets or mode == "all":
        return dets
    if mode == "largest":
        return [largest_detection(dets)]
    if not 0 <= index < len(dets):
        raise IndexError(f"person {index} was asked for but the frame has {len(dets)} people "
                         f"(0..{len(dets) - 1})")
    ordered = sorted(dets, key=lambda d: (d.person.bbox() or (0.0,))[0])
    return [ordered[index]]


def parse_target(parser: Any, rgb: np.ndarray, detections: list[Any] | None,
                 people: list[Person] | None, *, select: str = "largest", index: int = 0,
                 hands: bool = True, crop_to_person: bool = False) -> np.ndarray | None:
    """One frame's parsing p*: uint8 (h, w), or None when the parser finds no person.

    ``detections`` come from a pose detector run on ``rgb`` (None: no detector was available);
    ``people`` are keypoints given from elsewhere (a POSE_KEYPOINT), which win.
    """
    return parser.parse_frame(rgb, detections=detections or [], people=people, select=select,
                              index=index, hands=hands, crop_to_person=crop_to_person,
                              detected=detections is not None)


def fill_person(rgb: np.ndarray, person: np.ndarray,
                fill: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> np.ndarray:
    """The photo with the (already grown) ``person`` mask filled in by ``fill`` (see
    ``inpaint.fill_reduced`` for large frames); pixels outside the mask are the photo's own.

    Returns: uint8 (h, w, 3).
    """
    new = fill(rgb, person)
    return np.where(person[..., None], new, rgb)


# --------------------------------------------------------------------------------------------
# The driver's motion
# --------------------------------------------------------------------------------------------


def fill_missing_detections(people: list[list[Person]]
                            ) -> tuple[list[list[Person]], list[int], GapFillReport]:
    """The missing-person policy ``interpolate``: a frame where nobody was found gets the pose
    interpolated from its neighbours (held at the ends of the clip).

    Args:
        people: the people chosen in each frame (an empty list: nobody found).
    Returns:
        (people with every frame filled, the indices that were filled, the report).
    Raises:
        temporal.NoPersonError: nobody in any frame, so there is nothing to interpolate from.
    """
    missing = [i for i, found in enumerate(people) if not found]
    if not missing:
        return people, [], GapFillReport(frames=len(people))
    filled, gaps = fill_missing_people([select_person(f) if f else None for f in people])
    out = list(people)
    for i in missing:
        person = filled[i]
        assert person is not None
        out[i] = [person]
    return out, missing, gaps


def person_in_frame(frame: Mapping[str, Any], height: int, width: int, *,
                    normalized: bool | None = None, what: str = "POSE_KEYPOINT"
                    ) -> Person | None:
    """The largest person of one POSE_KEYPOINT frame in pixels of a (height, width) frame,
    or None when the frame has nobody with a confident keypoint.

    ``normalized``: the sequence's coordinate convention, decided once for all its frames
    (``schema.sequence_is_normalized``). Raises ValueError on a malformed frame."""
    person = select_person(frame_to_people(frame, what=what, normalized=normalized))
    if person is None or person.bbox() is None:
        return None
    return person.scaled(width / float(frame["canvas_width"]),
                         height / float(frame["canvas_height"]))


# --------------------------------------------------------------------------------------------
# Per driver frame: P2B and B2F (weightless), the face
# --------------------------------------------------------------------------------------------


class P2BWarp:
    """The weightless P2B for one target: its parsing posed like each driver frame.

    Built once per target (the photo reduced to the frame size when much larger, the rig, one
    slowly changing body scale for the whole clip); then ``self(i, person)`` -> uint8 (H, W).

    Raises:
        ValueError: the target's keypoints do not give a body to rig (message says which).
    """

    def __init__(self, labels: np.ndarray, target: Person, drivers: Sequence[Person | None],
                 out_hw: tuple[int, int]) -> None:
        from .geometry.mesh_warp import BodyRig, clip_scales
        from .geometry.warp import limit_source

        labels, target, _ = limit_source(labels, target, out_hw)  # a huge photo adds nothing
        self.rig = BodyRig.build(None, labels, target)
        self.scales = clip_scales(target, list(drivers))
        self.out_hw = (int(out_hw[0]), int(out_hw[1]))

    def __call__(self, i: int, person: Person) -> np.ndarray:
        from .geometry.mesh_warp import warp_parsing_mesh

        return warp_parsing_mesh(self.rig, person, float(self.scales[i]), self.out_hw)


class B2FWarp:
    """The weightless B2F for one target: its own pixels skinned into each driver pose.

    ``self(i, labels, person)`` -> ``WarpFrame`` (uint8 image (H, W, 3), float32 mask (H, W),
    ``absent_pixels``). The per-pixel sampling runs on ``device`` (a GPU when there is one).

    Raises:
        ValueError: the target has no keypoints, or they give no body to rig.
    """

    def __init__(self, target: TargetPhoto, drivers: Sequence[Person | None],
                 out_hw: tuple[int, int], *, feather: float = 1.0,
                 device: torch.device | str | None = None) -> None:
        from .geometry.mesh_warp import BodyRig, clip_scales
        from .geometry.warp import limit_source

        if target.person is None:
            raise ValueError("the target has no keypoints")
        labels, person, image = limit_source(target.labels, target.person, out_hw,
                                             target.image)
        self.scales = clip_scales(person, list(drivers))  # the same scales as P2BWarp's
        self.rig = BodyRig.build(image, labels, person, device=device)
        self.feather = float(feather)

    def __call__(self, i: int, labels: np.ndarray, person: Person) -> Any:
        from .geometry.mesh_warp import warp_frame_mesh

        return warp_frame_mesh(self.rig, labels, person, float(self.scales[i]),
                               feather=self.feather)


@dataclass(frozen=True)
class FaceOptions:
    """How FaceRefine finds and pastes faces (the Load FaceRefine node's widgets).

    landmarks: ``mediapipe`` (offline) or ``fan68`` (needs ``fan_path``); feather: the paste's
    feather in px (None = from the face size); color_match: match the frame's skin tone;
    seamless: Poisson blending instead of feathering.
    """

    landmarks: str = "mediapipe"
    fan_path: str | None = None
    feather: int | None = None
    color_match: bool = True
    seamless: bool = False


class FaceRefiner:
    """FaceRefine over a stream of frames, for both backends (the landmark-aligned paste, or
    a FaceRefineNet ``module``).

    Built once per target photo: finds the target's face (small faces on an upscaled crop).
    ``target_found`` is False when it has none; frames then pass through. Per frame,
    ``self(rgb, labels)`` -> (refined uint8 frame or None, status), status one of
    ``refined`` / ``none`` (no face found) / ``small`` (under ``min_face_px``) / ``kept``
    (nothing changed: landmarks off the rendered head). Use it as a context manager.

    Raises:
        RuntimeError / ValueError / weights.WeightError: the landmark detector cannot start.
    """

    def __init__(self, target_rgb: np.ndarray, options: FaceOptions = FaceOptions(), *,
                 module: torch.nn.Module | None = None, min_face_px: int | None = None,
                 device: torch.device | str = "cpu") -> None:
        from .compositing.face import MIN_FACE_PX, FaceFinder, FaceTarget, make_landmarker

        self.options, self.module, self.device = options, module, device
        self.min_face_px = MIN_FACE_PX if min_face_px is None else int(min_face_px)
        self._detector = make_landmarker(options.landmarks, fan_path=options.fan_path)
        self._find = FaceFinder(self._detector, min_face_px=self.min_face_px)
        self.target_face = self._find(target_rgb)
        self.face_target = None
        self.embedding = None
        if self.target_face.landmarks is not None:
            self.face_target = FaceTarget.from_image(target_rgb, self.target_face.landmarks)
            if module is not None:
                from .networks.face_refine import target_embedding

                self.embedding = target_embedding(module, self.face_target, device)

    @property
    def target_found(self) -> bool:
        return self.face_target is not None

    def __call__(self, rgb: np.ndarray, labels: np.ndarray | None = None
                 ) -> tuple[np.ndarray | None, str]:
        from .compositing.face import box_of_mask, refine_face_weightless
        from .compositing.inpaint import dilate_mask

        if self.face_target is None:
            return None, "none"
        region = hint = None
        if labels is not None:
            face = np.isin(labels, LABEL_GROUPS["face"])
            hint = box_of_mask(face)
            region = dilate_mask(face, max(2, int(0.02 * max(rgb.shape[:2]))))
        found = self._find(rgb, hint)
        if found.landmarks is None and hint is not None:
            found = self._find(rgb)  # the parsing's face box missed: the whole frame
        if found.landmarks is None:
            return None, "small" if found.status == "small" else "none"
        opts = self.options
        if self.module is None:
            res = refine_face_weightless(rgb, found.landmarks, self.face_target,
                                         feather_px=opts.feather, color_match=opts.color_match,
                                         seamless=opts.seamless, region=region)
        else:
            from .networks.face_refine import refine_face_network

            res = refine_face_network(self.module, rgb, found.landmarks, self.embedding,
                                      device=self.device, region=region)
        if not (res != rgb).any():
            return None, "kept"
        return res, "refined"

    def close(self) -> None:
        self._find.close()
        self._detector.close()

    def __enter__(self) -> FaceRefiner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
