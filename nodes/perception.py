"""OpenPose and DensePose nodes: driver videos and target photos -> poses, stick figures,
person masks and DensePose I/U/V (SPEC §1-§4)."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import torch

from ..models import stages
from ..models.core.cache import model_cache
from ..models.core.schema import (
    Person,
    colorize_densepose,
    frame_to_people,
    people_to_frame,
    sequence_is_normalized,
)
from ..models.geometry.render import draw_pose
from ..models.geometry.temporal import NoPersonError, fill_missing_people
from ..models.io.weights import WeightError, resolve
from ..models.perception.base import Detection, mask_from_keypoints
from ..models.perception.densepose import (
    DensePoseMap,
    DensePoseTorchScript,
    densepose_from_keypoints,
    load_densepose_torchscript,
)
from ..models.perception.pose import POSE_BACKENDS, PoseEstimator
from .runtime import NodeInputError, Progress, get_device
from .sockets import (
    DENSEPOSE,
    IMAGE,
    MASK,
    POSE_KEYPOINT,
    DensePose,
    check_image,
    check_mask,
    check_pose_frames,
    frame_to_rgb_uint8,
    rgb_frames_to_image,
)

logger = logging.getLogger(__name__)

CATEGORY = "dance_reenact/perception"
PEOPLE_MODES = ("largest", "index", "all")
# interpolate: a frame without a person gets one from its neighbours (the Smooth Pose gap
# fill, models.temporal.fill_missing_people); only a clip with no person at all stops.
NO_PERSON_MODES = ("interpolate", "empty", "error")
NO_PERSON_TOOLTIP = ("interpolate: a frame without a person gets the pose interpolated from "
                     "the nearest frames with one (held before the first / after the last); "
                     "only a clip with no person at all stops. empty: an empty result for that "
                     "frame. error: stop with a message naming the frame.")


def _no_person(node: str, frame: int, total: int) -> NodeInputError:
    where = "the image" if total == 1 else f"frame {frame} of {total}"
    return NodeInputError(node, "image", f"no person was found in {where}",
                          "use a photo or video where one person is clearly visible, try "
                          "another backend, or set on_no_person to 'interpolate' (or 'empty') "
                          "for such frames")


def _nobody_at_all(node: str, total: int) -> NodeInputError:
    if total == 1:
        return _no_person(node, 0, 1)
    return NodeInputError(node, "image", f"no person was found in any of the {total} frames, "
                          "so there is nothing to interpolate from",
                          "use a video where one person is clearly visible, try another "
                          "backend, or set on_no_person to 'empty'")


def select_detections(dets: list[Detection], mode: str, index: int, node: str,
                      frame: int) -> list[Detection]:
    """Keep all people, the largest, or the one at ``index`` (error when out of range)."""
    try:
        return stages.select_detections(dets, mode, index)
    except IndexError as exc:
        raise NodeInputError(node, "person_index", f"frame {frame}: {exc}",
                             "lower person_index or use people='largest'") from exc


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
                "on_no_person": (list(NO_PERSON_MODES), {"default": "interpolate", "tooltip":
                                 NO_PERSON_TOOLTIP + " (empty: an empty pose, a black stick "
                                 "figure and an empty mask.)"}),
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
            "optional": {
                "draw_stick_figure": ("BOOLEAN", {"default": True, "tooltip":
                                      "Draw the stick_figure output. Off: it is one black "
                                      "frame, which saves a video-sized output ComfyUI would "
                                      "keep in memory (turn it off when nothing uses it)."}),
            },
        }

    RETURN_TYPES = (POSE_KEYPOINT, IMAGE, MASK, "STRING", "STRING")
    RETURN_NAMES = ("pose_keypoint", "stick_figure", "person_mask", "people_per_frame",
                    "report")
    OUTPUT_TOOLTIPS = (
        "The people's keypoints per frame (OpenPose layout: body 18, face 70, hands 21).",
        'The keypoints drawn as stick figures.',
        'Where the person is (1 inside), per frame.',
        'How many people were found in each frame.',
        'Frames without a person and what was done with them, in words; connect a Preview'
        ' Any node to read it.',
    )
    FUNCTION = "detect"
    CATEGORY = CATEGORY
    DESCRIPTION = ("Detect body, hand and face keypoints (OpenPose layout) per frame; outputs "
                   "POSE_KEYPOINT, the stick figure P2B reads, a person mask, how many "
                   "people were found in each frame, and a report of the frames without a "
                   "person (interpolated, held or left empty).")

    def detect(self, image: Any, backend: str = "mediapipe", people: str = "largest",
               person_index: int = 0, on_no_person: str = "interpolate",
               detect_hands: bool = True, detect_face: bool = True,
               derive_missing_hands: bool = True, coordinates: str = "pixels",
               draw_stick_figure: bool = True,
               ) -> tuple[list[dict], torch.Tensor, torch.Tensor, str, str]:
        node = "OpenPose"
        image = check_image(image, node, "image")
        if backend not in POSE_BACKENDS:
            raise NodeInputError(node, "backend", f"unknown backend {backend!r}",
                                 f"choose one of {', '.join(POSE_BACKENDS)}")
        if on_no_person not in NO_PERSON_MODES:
            raise NodeInputError(node, "on_no_person", f"unknown choice {on_no_person!r}",
                                 f"choose one of {', '.join(NO_PERSON_MODES)}")
        n, h, w = int(image.shape[0]), int(image.shape[1]), int(image.shape[2])
        chosen_per_frame: list[list[Detection]] = []
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
                chosen_per_frame.append(chosen)
                for d in chosen:
                    if d.mask is not None:
                        masks[i] = torch.maximum(masks[i], torch.from_numpy(d.mask))
                bar.update()
            notes = estimator.stats.notes()
        persons = [[d.person for d in chosen] for chosen in chosen_per_frame]
        missing = [i for i, found in enumerate(persons) if not found]
        if missing and on_no_person == "interpolate":
            try:
                persons, _, gaps = stages.fill_missing_detections(persons)
            except NoPersonError as exc:
                raise _nobody_at_all(node, n) from exc
            for i in missing:
                masks[i] = torch.from_numpy(mask_from_keypoints(persons[i][0], h, w))
            text = f"{gaps}"
        elif missing:
            text = (f"{n} frames, no person found in {len(missing)} "
                    f"({_few(missing)}): left empty")
        else:
            text = f"{n} frame(s), a person in every one"
        if missing:
            logger.warning("%s: %s", node, text)
        report = "; ".join([text, *notes])
        frames_out = [people_to_frame(found, w, h, normalized=coordinates == "normalized")
                      for found in persons]
        sticks = rgb_frames_to_image(n, lambda i: draw_pose(persons[i], h, w)) \
            if draw_stick_figure else torch.zeros((1, h, w, 3), dtype=torch.float32)
        return frames_out, sticks, masks, ",".join(map(str, counts)), report


def _few(frames: list[int], limit: int = 12) -> str:
    return ", ".join(map(str, frames[:limit])) + (", ..." if len(frames) > limit else "")


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
DENSEPOSE_KIND = "densepose"  # in the pack's model cache, one network at a time


def _torchscript_runner(node: str) -> DensePoseTorchScript:
    path = resolve("densepose_r50")  # sha256-pinned: TorchScript runs code when loaded
    device = get_device()

    def load() -> DensePoseTorchScript:
        try:
            module = load_densepose_torchscript(path, device)
        except ValueError as exc:
            raise WeightError(f"{exc}. Delete {path} and run again to re-download it.") \
                from exc
        return DensePoseTorchScript(module, device=device)

    return model_cache().get_or_create(DENSEPOSE_KIND, (str(path), str(device)), load,
                                       device=device, kind_limit=1)


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


def _densepose_inputs(pose_keypoint: Any, person_mask: Any, n: int, h: int, w: int
                     ) -> tuple[list | None, torch.Tensor | None]:
    """DensePose's optional keypoints and person mask, checked against its n (h, w) frames."""
    node = "DensePose"
    if pose_keypoint is not None:
        pose_keypoint = check_pose_frames(pose_keypoint, node, "pose_keypoint")
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
    return pose_keypoint, person_mask


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
                "on_no_person": (list(NO_PERSON_MODES), {"default": "interpolate", "tooltip":
                                 NO_PERSON_TOOLTIP + " (densepose_r50 has no keypoints: it "
                                 "holds the nearest frame with a person.)"}),
            },
            "optional": {
                "pose_keypoint": (POSE_KEYPOINT, {"tooltip": "weightless: the poses to use "
                                  "(one frame, or one per image frame). Without it MediaPipe "
                                  "finds them."}),
                "person_mask": (MASK, {"tooltip": "weightless: the person mask (e.g. from "
                                "OpenPose). Without it MediaPipe's segmentation, or a mask "
                                "drawn from the keypoints, is used."}),
                "draw_preview": ("BOOLEAN", {"default": True, "tooltip":
                                 "Draw the colour preview output. Off: it is one black frame, "
                                 "which saves a video-sized output ComfyUI would keep in "
                                 "memory (turn it off when nothing uses it)."}),
            },
        }

    RETURN_TYPES = (DENSEPOSE, IMAGE, "STRING")
    RETURN_NAMES = ("densepose", "preview", "report")
    OUTPUT_TOOLTIPS = (
        'The body-surface coordinates (IUV) per frame.',
        'The DensePose drawn in colour.',
        'What was done: backend, frames without a person and how they were filled; connect '
        'a Preview Any node to read it.',
    )
    FUNCTION = "estimate"
    CATEGORY = CATEGORY
    DESCRIPTION = ("DensePose I (24 parts), U, V per pixel for P2B, with a colour preview "
                   "(the viridis hint comfyui_controlnet_aux draws, usable with DensePose "
                   "ControlNets).")

    def estimate(self, image: Any, backend: str = "weightless",
                 on_no_person: str = "interpolate",
                 pose_keypoint: Any = None, person_mask: Any = None,
                 draw_preview: bool = True,
                 ) -> tuple[DensePose, torch.Tensor, str]:
        node = "DensePose"
        image = check_image(image, node, "image")
        if backend not in DENSEPOSE_BACKENDS:
            raise NodeInputError(node, "backend", f"unknown backend {backend!r}",
                                 f"choose one of {', '.join(DENSEPOSE_BACKENDS)}")
        n, h, w = int(image.shape[0]), int(image.shape[1]), int(image.shape[2])
        pose_keypoint, person_mask = _densepose_inputs(pose_keypoint, person_mask, n, h, w)
        index = torch.zeros((n, h, w), dtype=torch.uint8)
        u = torch.zeros((n, h, w), dtype=torch.float32)
        v = torch.zeros((n, h, w), dtype=torch.float32)
        runner = _torchscript_runner(node) if backend == "densepose_r50" else None
        # the poses' convention, decided once for the sequence (not per frame)
        normalized = sequence_is_normalized(pose_keypoint) if pose_keypoint is not None else None
        estimator = None
        if backend == "weightless" and pose_keypoint is None:
            estimator = _pose_estimator(node, "mediapipe", video=n > 1, hands=True, face=False,
                                        derive_hands=True)
        if on_no_person not in NO_PERSON_MODES:
            raise NodeInputError(node, "on_no_person", f"unknown choice {on_no_person!r}",
                                 f"choose one of {', '.join(NO_PERSON_MODES)}")
        people: list[Person | None] = []  # keypoints only (small): for the gap fill
        try:
            with Progress(n, node) as bar:
                for i in range(n):
                    rgb = frame_to_rgb_uint8(image[i])
                    person = None
                    if runner is not None:
                        dp = runner(rgb)
                    else:
                        dp, person = self._weightless(rgb, i, n, pose_keypoint, person_mask,
                                                      estimator, node, normalized)
                    if not (dp.index > 0).any():
                        person = None
                        if on_no_person == "error":
                            raise _no_person(node, i, n)
                    people.append(person if runner is None else
                                  (Person() if (dp.index > 0).any() else None))
                    index[i] = torch.from_numpy(dp.index)
                    u[i] = torch.from_numpy(dp.u)
                    v[i] = torch.from_numpy(dp.v)
                    bar.update()
        finally:
            if estimator is not None:
                estimator.close()
        missing = [i for i, p in enumerate(people) if p is None]
        if missing and on_no_person == "interpolate":
            self._fill(missing, people, runner is not None, person_mask, index, u, v, node)
        source = ("the DensePose R50-FPN network" if runner is not None else
                  "keypoints from the connected POSE_KEYPOINT" if pose_keypoint is not None
                  else "keypoints found by MediaPipe")
        report = f"{backend}: {n} frame(s) from {source}"
        if missing:
            how = ("held from the nearest frame with a person" if runner is not None
                   else "interpolated from the neighbouring frames") \
                if on_no_person == "interpolate" else "left empty"
            logger.warning("%s: no person in %d of %d frame(s) (%s): %s", node, len(missing), n,
                           _few(missing), how)
            report += f"; no person in {len(missing)} frame(s) ({_few(missing)}): {how}"
        else:
            report += "; a person in every frame"
        previews = rgb_frames_to_image(n, lambda i: colorize_densepose(index[i].numpy())) \
            if draw_preview else torch.zeros((1, h, w, 3), dtype=torch.float32)
        return DensePose(index=index, u=u, v=v), previews, report

    @staticmethod
    def _fill(missing: list[int], people: list[Person | None], network: bool, person_mask: Any,
              index: torch.Tensor, u: torch.Tensor, v: torch.Tensor, node: str) -> None:
        """on_no_person=interpolate: keypoint DensePose from the interpolated pose; the network
        backend (no keypoints) holds the nearest frame with a person."""
        n, h, w = index.shape
        present = [i for i, p in enumerate(people) if p is not None]
        if not present:
            raise _nobody_at_all(node, n)
        if network:
            for i in missing:
                j = min(present, key=lambda k: (abs(k - i), k))
                index[i], u[i], v[i] = index[j], u[j], v[j]
            return
        filled, _ = fill_missing_people(people)
        for i in missing:
            mask = None
            if person_mask is not None:
                m = person_mask[i if person_mask.shape[0] > 1 else 0].numpy()
                mask = m if (m > 0.5).any() else None
            dp = densepose_from_keypoints(filled[i], mask, h, w)
            index[i] = torch.from_numpy(dp.index)
            u[i] = torch.from_numpy(dp.u)
            v[i] = torch.from_numpy(dp.v)

    @staticmethod
    def _weightless(rgb: np.ndarray, i: int, n: int, pose_keypoint: Any, person_mask: Any,
                    estimator: PoseEstimator | None, node: str,
                    normalized: bool | None = None) -> tuple[DensePoseMap, Person | None]:
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
            det = stages.largest_detection(dets) if dets else None
            person = det.person if det else None
            if mask is None and det is not None:
                mask = det.mask
        if person is None or person.num_confident() == 0:
            return DensePoseMap.empty(h, w), None
        return densepose_from_keypoints(person, mask, h, w), person


def _area(p: Person) -> float:
    box = p.bbox()
    return -1.0 if box is None else (box[2] - box[0] + 1) * (box[3] - box[1] + 1)


NODE_CLASS_MAPPINGS = {
    "DanceReenactOpenPose": OpenPose,
    "DanceReenactDensePose": DensePoseNode,
}
NODE_DISPLAY_NAME_MAPPINGS = {
    "DanceReenactOpenPose": "OpenPose · People's keypoints (Dance Reenact)",
    "DanceReenactDensePose": "DensePose · Body surface (Dance Reenact)",
}
