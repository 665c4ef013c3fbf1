"""OpenPose and DensePose nodes: driver videos and target photos -> poses, stick figures,
person masks and DensePose I/U/V (SPEC §1-§4)."""

from __future__ import annotations

import logging
import threading
from typing import Any

import numpy as np
import torch

from ..models.perception.base import Detection
from ..models.perception.densepose import (
    DensePoseMap,
    DensePoseTorchScript,
    densepose_from_keypoints,
    load_densepose_torchscript,
)
from ..models.perception.pose import POSE_BACKENDS, PoseEstimator
from ..models.render import draw_pose
from ..models.schema import (
    Person,
    colorize_densepose,
    frame_to_people,
    people_to_frame,
    sequence_is_normalized,
)
from ..models.weights import WeightError, resolve
from .runtime import NodeInputError, Progress, get_device
from .sockets import (
    DENSEPOSE,
    IMAGE,
    MASK,
    POSE_KEYPOINT,
    DensePose,
    check_image,
    check_mask,
    frame_to_rgb_uint8,
    rgb_uint8_to_image,
)

logger = logging.getLogger(__name__)

CATEGORY = "dance_reenact/perception"
PEOPLE_MODES = ("largest", "index", "all")
NO_PERSON_MODES = ("error", "empty")


def _no_person(node: str, frame: int, total: int) -> NodeInputError:
    where = "the image" if total == 1 else f"frame {frame} of {total}"
    return NodeInputError(node, "image", f"no person was found in {where}",
                          "use a photo or video where one person is clearly visible, try "
                          "another backend, or set on_no_person to 'empty' to get an empty "
                          "result for such frames")


def _largest(dets: list[Detection]) -> Detection:
    def area(d: Detection) -> float:
        box = d.person.bbox()
        return -1.0 if box is None else (box[2] - box[0] + 1) * (box[3] - box[1] + 1)
    return max(dets, key=area)


def select_detections(dets: list[Detection], mode: str, index: int, node: str,
                      frame: int) -> list[Detection]:
    """Keep all people, the largest, or the one at ``index`` (error when out of range)."""
    if not dets or mode == "all":
        return dets
    if mode == "largest":
        return [_largest(dets)]
    if not 0 <= index < len(dets):
        raise NodeInputError(node, "person_index", f"person {index} was asked for but frame "
                             f"{frame} has {len(dets)} people (0..{len(dets) - 1})",
                             "lower person_index or use people='largest'")
    # Index people left to right so the same index means the same place in every frame.
    ordered = sorted(dets, key=lambda d: (d.person.bbox() or (0.0,))[0])
    return [ordered[index]]


class OpenPose:
    """Poses of the people in a photo or every frame of a video."""

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        return {
            "required": {
                "image": (IMAGE, {"tooltip": "A photo or a video (a batch of frames)."}),
                "backend": (list(POSE_BACKENDS), {"default": "mediapipe", "tooltip":
                            "mediapipe: offline, one person, with a person mask. openpose: "
                            "lllyasviel/Annotators body+hand+face. dwpose: yzd-v/DWPose "
                            "whole-body ONNX. Hub weights download once through the registry."}),
                "people": (list(PEOPLE_MODES), {"default": "largest", "tooltip":
                           "Which people to keep when several are found (index counts from "
                           "the left of the frame)."}),
                "person_index": ("INT", {"default": 0, "min": 0, "max": 64}),
                "on_no_person": (list(NO_PERSON_MODES), {"default": "error", "tooltip":
                                 "error: stop with a message naming the frame. empty: an "
                                 "empty pose, a black stick figure and an empty mask."}),
                "detect_hands": ("BOOLEAN", {"default": True}),
                "detect_face": ("BOOLEAN", {"default": True}),
                "derive_missing_hands": ("BOOLEAN", {"default": True, "tooltip":
                                         "Place hands no detector found from the wrist and "
                                         "forearm direction (confidence 0.2), so hand labels "
                                         "can still be drawn."}),
                "coordinates": (["pixels", "normalized"], {"default": "pixels", "tooltip":
                                "POSE_KEYPOINT coordinates: pixels (as DWPose emits) or 0..1 "
                                "(as comfyui_controlnet_aux's OpenPose emits)."}),
            },
        }

    RETURN_TYPES = (POSE_KEYPOINT, IMAGE, MASK, "STRING")
    RETURN_NAMES = ("pose_keypoint", "stick_figure", "person_mask", "people_per_frame")
    FUNCTION = "detect"
    CATEGORY = CATEGORY
    DESCRIPTION = ("Detect body, hand and face keypoints (OpenPose layout) per frame; outputs "
                   "POSE_KEYPOINT, the stick figure P2B reads, a person mask and how many "
                   "people were found in each frame.")

    def detect(self, image: Any, backend: str = "mediapipe", people: str = "largest",
               person_index: int = 0, on_no_person: str = "error", detect_hands: bool = True,
               detect_face: bool = True, derive_missing_hands: bool = True,
               coordinates: str = "pixels") -> tuple[list[dict], torch.Tensor, torch.Tensor, str]:
        node = "OpenPose"
        image = check_image(image, node, "image")
        if backend not in POSE_BACKENDS:
            raise NodeInputError(node, "backend", f"unknown backend {backend!r}",
                                 f"choose one of {', '.join(POSE_BACKENDS)}")
        n, h, w = int(image.shape[0]), int(image.shape[1]), int(image.shape[2])
        frames_out: list[dict] = []
        sticks: list[np.ndarray] = []
        masks = torch.zeros((n, h, w), dtype=torch.float32)
        counts: list[int] = []
        estimator = _pose_estimator(node, backend, video=n > 1, hands=detect_hands,
                                    face=detect_face, derive_hands=derive_missing_hands)
        with estimator, Progress(n, node) as bar:
            for i in range(n):
                rgb = frame_to_rgb_uint8(image[i])
                dets = estimator(rgb)
                counts.append(len(dets))
                if not dets and on_no_person == "error":
                    raise _no_person(node, i, n)
                chosen = select_detections(dets, people, person_index, node, i)
                persons = [d.person for d in chosen]
                frames_out.append(people_to_frame(persons, w, h,
                                                  normalized=coordinates == "normalized"))
                sticks.append(draw_pose(persons, h, w))
                for d in chosen:
                    if d.mask is not None:
                        masks[i] = torch.maximum(masks[i], torch.from_numpy(d.mask))
                bar.update()
        return frames_out, rgb_uint8_to_image(sticks), masks, ",".join(map(str, counts))


def _pose_estimator(node: str, backend: str, **kw: Any) -> PoseEstimator:
    try:
        return PoseEstimator(backend, device=get_device(), **kw)
    except WeightError:
        raise
    except RuntimeError as exc:  # mediapipe missing / too new
        raise NodeInputError(node, "backend", str(exc), "install the 'offline' extra "
                             "(mediapipe==0.10.21) or pick another backend") from exc
    except ValueError as exc:  # a weight file of the wrong architecture
        raise WeightError(f"the {backend} weights could not be loaded: {exc}. Delete the file "
                          "and let the registry download it again, or place the right file "
                          "by hand.") from exc


# --------------------------------------------------------------------------------------------
# DensePose
# --------------------------------------------------------------------------------------------

DENSEPOSE_BACKENDS = ("weightless", "densepose_r50")
_ts_cache: dict[tuple[str, str], DensePoseTorchScript] = {}
_ts_lock = threading.Lock()


def _torchscript_runner(node: str) -> DensePoseTorchScript:
    path = resolve("densepose_r50")  # sha256-pinned: TorchScript runs code when loaded
    device = get_device()
    key = (str(path), str(device))
    with _ts_lock:
        if key not in _ts_cache:
            try:
                module = load_densepose_torchscript(path, device)
            except ValueError as exc:
                raise WeightError(f"{exc}. Delete {path} and run again to re-download it.") \
                    from exc
            _ts_cache.clear()
            _ts_cache[key] = DensePoseTorchScript(module, device=device)
        return _ts_cache[key]


def _frame_people(pose_keypoint: Any, i: int, h: int, w: int, node: str,
                  normalized: bool | None = None) -> list[Person]:
    frame = pose_keypoint[i if len(pose_keypoint) > 1 else 0]
    try:
        people = frame_to_people(frame, normalized=normalized)
    except ValueError as exc:
        raise NodeInputError(node, "pose_keypoint", str(exc),
                             "connect a POSE_KEYPOINT in the OpenPose layout") from exc
    sx = w / float(frame["canvas_width"])
    sy = h / float(frame["canvas_height"])
    return [p.scaled(sx, sy) for p in people]


class DensePoseNode:
    """DensePose part index I and chart coordinates U, V per pixel, and a colour preview."""

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        return {
            "required": {
                "image": (IMAGE, {"tooltip": "A photo or a video (a batch of frames)."}),
                "backend": (list(DENSEPOSE_BACKENDS), {"default": "weightless", "tooltip":
                            "weightless: I/U/V approximated from body keypoints and the person "
                            "mask (no download). densepose_r50: the TorchScript DensePose "
                            "R50-FPN comfyui_controlnet_aux uses (sha256-pinned)."}),
                "on_no_person": (list(NO_PERSON_MODES), {"default": "error"}),
            },
            "optional": {
                "pose_keypoint": (POSE_KEYPOINT, {"tooltip": "weightless: the poses to use "
                                  "(one frame, or one per image frame). Without it MediaPipe "
                                  "finds them."}),
                "person_mask": (MASK, {"tooltip": "weightless: the person mask (e.g. from "
                                "OpenPose). Without it MediaPipe's segmentation, or a mask "
                                "drawn from the keypoints, is used."}),
            },
        }

    RETURN_TYPES = (DENSEPOSE, IMAGE)
    RETURN_NAMES = ("densepose", "preview")
    FUNCTION = "estimate"
    CATEGORY = CATEGORY
    DESCRIPTION = ("DensePose I (24 parts), U, V per pixel for P2B, with a colour preview "
                   "(the viridis hint comfyui_controlnet_aux draws, usable with DensePose "
                   "ControlNets).")

    def estimate(self, image: Any, backend: str = "weightless", on_no_person: str = "error",
                 pose_keypoint: Any = None, person_mask: Any = None
                 ) -> tuple[DensePose, torch.Tensor]:
        node = "DensePose"
        image = check_image(image, node, "image")
        if backend not in DENSEPOSE_BACKENDS:
            raise NodeInputError(node, "backend", f"unknown backend {backend!r}",
                                 f"choose one of {', '.join(DENSEPOSE_BACKENDS)}")
        n, h, w = int(image.shape[0]), int(image.shape[1]), int(image.shape[2])
        if pose_keypoint is not None:
            if isinstance(pose_keypoint, dict):
                pose_keypoint = [pose_keypoint]
            if not isinstance(pose_keypoint, (list, tuple)) or not pose_keypoint:
                raise NodeInputError(node, "pose_keypoint", "expected a non-empty list of "
                                     "POSE_KEYPOINT frames", "connect an OpenPose output")
            if len(pose_keypoint) not in (1, n):
                raise NodeInputError(node, "pose_keypoint", f"{len(pose_keypoint)} pose frames "
                                     f"for {n} image frames", "give one pose per frame (or one "
                                     "for all)")
        if person_mask is not None:
            person_mask = check_mask(person_mask, node, "person_mask")
            if tuple(person_mask.shape[1:]) != (h, w):
                raise NodeInputError(node, "person_mask", f"mask is {person_mask.shape[2]}x"
                                     f"{person_mask.shape[1]} but the image is {w}x{h}",
                                     "connect the mask made from this image")
            if person_mask.shape[0] not in (1, n):
                raise NodeInputError(node, "person_mask", f"{person_mask.shape[0]} masks for "
                                     f"{n} frames", "give one mask per frame (or one for all)")
        index = torch.zeros((n, h, w), dtype=torch.uint8)
        u = torch.zeros((n, h, w), dtype=torch.float32)
        v = torch.zeros((n, h, w), dtype=torch.float32)
        previews: list[np.ndarray] = []
        runner = _torchscript_runner(node) if backend == "densepose_r50" else None
        # the poses' convention, decided once for the sequence (not per frame)
        normalized = sequence_is_normalized(pose_keypoint) if pose_keypoint is not None else None
        estimator = None
        if backend == "weightless" and pose_keypoint is None:
            estimator = _pose_estimator(node, "mediapipe", video=n > 1, hands=True, face=False,
                                        derive_hands=True)
        try:
            with Progress(n, node) as bar:
                for i in range(n):
                    rgb = frame_to_rgb_uint8(image[i])
                    if runner is not None:
                        dp = runner(rgb)
                    else:
                        dp = self._weightless(rgb, i, n, pose_keypoint, person_mask, estimator,
                                              node, normalized)
                    if not (dp.index > 0).any() and on_no_person == "error":
                        raise _no_person(node, i, n)
                    index[i] = torch.from_numpy(dp.index)
                    u[i] = torch.from_numpy(dp.u)
                    v[i] = torch.from_numpy(dp.v)
                    previews.append(colorize_densepose(dp.index))
                    bar.update()
        finally:
            if estimator is not None:
                estimator.close()
        return DensePose(index=index, u=u, v=v), rgb_uint8_to_image(previews)

    @staticmethod
    def _weightless(rgb: np.ndarray, i: int, n: int, pose_keypoint: Any, person_mask: Any,
                    estimator: PoseEstimator | None, node: str,
                    normalized: bool | None = None) -> DensePoseMap:
        h, w = rgb.shape[:2]
        mask = None
        if person_mask is not None:
            mask = person_mask[i if person_mask.shape[0] > 1 else 0].numpy()
        if pose_keypoint is not None:
            people = _frame_people(pose_keypoint, i, h, w, node, normalized)
            person = max(people, key=lambda p: _area(p)) if people else None
        else:
            assert estimator is not None
            dets = estimator(rgb)
            det = _largest(dets) if dets else None
            person = det.person if det else None
            if mask is None and det is not None:
                mask = det.mask
        if person is None or person.num_confident() == 0:
            return DensePoseMap.empty(h, w)
        return densepose_from_keypoints(person, mask, h, w)


def _area(p: Person) -> float:
    box = p.bbox()
    return -1.0 if box is None else (box[2] - box[0] + 1) * (box[3] - box[1] + 1)


NODE_CLASS_MAPPINGS = {
    "DanceReenactOpenPose": OpenPose,
    "DanceReenactDensePose": DensePoseNode,
}
NODE_DISPLAY_NAME_MAPPINGS = {
    "DanceReenactOpenPose": "OpenPose (Dance Reenact)",
    "DanceReenactDensePose": "DensePose (Dance Reenact)",
}
