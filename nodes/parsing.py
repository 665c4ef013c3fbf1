"""HumanParse node: photo or video -> PARSING (22 labels), colour preview, label-group MASK."""

from __future__ import annotations

import logging
from contextlib import ExitStack
from typing import Any

import numpy as np
import torch

from ..models.core.cache import model_cache
from ..models.core.schema import (
    LABEL_GROUPS,
    Person,
    colorize_labels,
    frame_to_people,
    group_mask,
    sequence_is_normalized,
)
from ..models.io.weights import WeightError
from ..models.perception.geometric_parsing import is_grayscale
from ..models.perception.human_parsing import BACKENDS, WEIGHTLESS, HumanParser
from ..models.perception.pose import POSE_BACKENDS, PoseEstimator
from ..models.stages import parse_target
from .runtime import NodeInputError, Progress, get_device
from .sockets import (
    IMAGE,
    MASK,
    PARSING,
    POSE_KEYPOINT,
    Parsing,
    check_image,
    check_same_length,
    frame_to_rgb_uint8,
    rgb_frames_to_image,
)
from .utility import check_pose_keypoint

logger = logging.getLogger(__name__)
NODE = "Human Parse"

PARSER_KIND = "human_parser"  # the SCHP networks in the pack's model cache


def get_parser(backend: str, device: torch.device) -> HumanParser:
    """A loaded backend, cached so a workflow re-run does not reload 267 MB of weights; one
    network in memory at a time (the weightless backend loads nothing and is not cached)."""
    if backend == WEIGHTLESS:
        return HumanParser(backend, device=device)
    return model_cache().get_or_create(PARSER_KIND, (backend, str(device)),
                                       lambda: HumanParser(backend, device=device),
                                       device=device, kind_limit=1)


def _frames_people(pose_keypoint: Any, n_frames: int, height: int,
                   width: int) -> list[list[Person]]:
    """POSE_KEYPOINT frames -> people in pixels of the image (rescaled from the canvas)."""
    frames = check_pose_keypoint(pose_keypoint, NODE)
    if len(frames) == 1 and n_frames > 1:
        raise NodeInputError(NODE, "pose_keypoint", f"1 pose frame for a {n_frames}-frame "
                             "video", "connect the poses of every frame of this video")
    check_same_length(NODE, image=n_frames, pose_keypoint=len(frames))
    out = []
    normalized = sequence_is_normalized(frames)  # once for the sequence, not per frame
    for i, frame in enumerate(frames):
        try:
            people = frame_to_people(frame, normalized=normalized)
            cw, ch = float(frame["canvas_width"]), float(frame["canvas_height"])
        except (ValueError, KeyError, TypeError) as exc:
            raise NodeInputError(NODE, "pose_keypoint", f"frame {i}: {exc}",
                                 "connect a POSE_KEYPOINT in the OpenPose layout") from exc
        out.append([p.scaled(width / cw, height / ch) for p in people
                    if p.bbox() is not None])
    return out


class HumanParse:
    """Human parsing of a photo or every frame of a video into the 22-label schema."""

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        return {
            "required": {
                "image": (IMAGE, {"tooltip": "A photo or a video batch (any size; grayscale "
                                             "and RGBA are accepted)."}),
                "backend": (list(BACKENDS), {"default": WEIGHTLESS, "tooltip":
                            "geometric: no download (keypoints + person mask + skin colour). "
                            "schp_lip: SCHP LIP ResNet-101 (267 MB, CC BY-NC-SA 4.0: "
                            "non-commercial). schp_lip_onnx: the same as ONNX."}),
                "person": (["largest", "index"], {"default": "largest", "tooltip":
                           "Several people: parse the largest, or the one at person_index."}),
                "person_index": ("INT", {"default": 0, "min": 0, "max": 64}),
                "mask_group": (list(LABEL_GROUPS), {"default": "person", "tooltip":
                               "Which labels the MASK output covers."}),
                "if_no_person": (["error", "empty"], {"default": "error", "tooltip":
                                 "A frame without a person: stop with an error, or output "
                                 "all background for it."}),
            },
            "optional": {
                "pose_keypoint": (POSE_KEYPOINT, {"tooltip": "Use these poses (OpenPose/DWPose, "
                                  "normalised or pixels) instead of detecting them."}),
                "draw_hands": ("BOOLEAN", {"default": True, "tooltip":
                               "Draw left/right hand labels (20/21) from the hand keypoints."}),
                "crop_to_person": ("BOOLEAN", {"default": False, "tooltip":
                                   "SCHP: parse the person's box instead of the whole frame "
                                   "(helps when the person is small in the frame)."}),
                "pose_backend": (list(POSE_BACKENDS), {"default": "mediapipe", "tooltip":
                                 "Finds people (keypoints and, with mediapipe, the person "
                                 "mask) when no POSE_KEYPOINT is connected. mediapipe needs "
                                 "no download but finds one person; openpose/dwpose find "
                                 "several."}),
            },
        }

    RETURN_TYPES = (PARSING, IMAGE, MASK, "STRING")
    RETURN_NAMES = ("parsing", "preview", "mask", "report")
    OUTPUT_TOOLTIPS = (
        'The body-part labels per frame (PARSING, 22 labels).',
        'The labels in colour.',
        'The person (or the chosen label group) as a mask.',
        'What was done: backend, frames without a person (left as background), a missing '
        'pose detector; connect a Preview Any node to read it.',
    )
    FUNCTION = "parse"
    CATEGORY = "dance_reenact/perception"
    DESCRIPTION = ("Human parsing (paper p*): 22 labels per pixel — SCHP LIP (the paper's parser) "
                   "or a weightless geometric parser — with hands drawn from hand keypoints, a "
                   "colour preview and a MASK of a label group.")

    def parse(self, image: Any, backend: str = WEIGHTLESS, person: str = "largest",
              person_index: int = 0, mask_group: str = "person", if_no_person: str = "error",
              pose_keypoint: Any = None, draw_hands: bool = True, crop_to_person: bool = False,
              pose_backend: str = "mediapipe",
              ) -> tuple[Parsing, torch.Tensor, torch.Tensor, str]:
        image = check_image(image, NODE, "image")
        if backend not in BACKENDS:
            raise NodeInputError(NODE, "backend", f"unknown backend {backend!r}",
                                 f"choose one of {', '.join(BACKENDS)}")
        if pose_backend not in POSE_BACKENDS:
            raise NodeInputError(NODE, "pose_backend", f"unknown pose backend {pose_backend!r}",
                                 f"choose one of {', '.join(POSE_BACKENDS)}")
        if mask_group not in LABEL_GROUPS:
            raise NodeInputError(NODE, "mask_group", f"unknown label group {mask_group!r}",
                                 f"choose one of {', '.join(LABEL_GROUPS)}")
        b, h, w = (int(v) for v in image.shape[:3])
        given = None if pose_keypoint is None else _frames_people(pose_keypoint, b, h, w)
        try:
            parser = get_parser(backend, get_device())
        except WeightError as exc:
            raise NodeInputError(NODE, "backend", f"the {backend} weights are not available "
                                 f"({exc})", "place the file as the message says, allow the "
                                 "download, or use the geometric backend") from exc
        labels_out = np.zeros((b, h, w), dtype=np.uint8)
        empty: list[int] = []
        gray = False
        detector = None
        with ExitStack() as stack:
            detector = None
            if given is None or parser.needs_keypoints:
                detector = self._detector(stack, b, pose_backend, need=given is None and
                                          parser.needs_keypoints)
            bar = stack.enter_context(Progress(b, NODE))
            for i in range(b):
                rgb = frame_to_rgb_uint8(image[i])
                gray = gray or is_grayscale(rgb)
                labels_out[i] = self._parse_frame(
                    i, rgb, parser, detector, None if given is None else given[i], person,
                    person_index, if_no_person, draw_hands, crop_to_person)
                if not labels_out[i].any():
                    empty.append(i)
                bar.update()
        labels = torch.from_numpy(labels_out)
        parsing = Parsing(labels)
        preview = rgb_frames_to_image(b, lambda i: colorize_labels(labels_out[i]))
        mask = torch.from_numpy(group_mask(labels_out, mask_group).astype(np.float32))
        report = f"{backend}: {b} frame(s), keypoints " + (
            "from the connected POSE_KEYPOINT" if given is not None else
            f"found by {pose_backend}" if detector is not None else "unavailable (no hand "
            "labels)")
        if empty:
            shown = ", ".join(map(str, empty[:12])) + (", ..." if len(empty) > 12 else "")
            report += f"; no person in {len(empty)} frame(s) ({shown}): left as background"
        else:
            report += "; a person in every frame"
        if gray and backend == WEIGHTLESS:
            report += "; grayscale: skin told from clothes by brightness only"
        return parsing, preview, mask, report

    @staticmethod
    def _detector(stack: ExitStack, n_frames: int, pose_backend: str, need: bool):
        """The pose estimator (tracking for videos), or None when MediaPipe is missing and the
        parsing backend can do without keypoints."""
        try:
            return stack.enter_context(PoseEstimator(pose_backend, device=get_device(),
                                                     video=n_frames > 1))
        except WeightError as exc:
            raise NodeInputError(NODE, "pose_backend", f"the {pose_backend} weights are not "
                                 f"available ({exc})", "connect a POSE_KEYPOINT, allow the "
                                 "download, or use pose_backend = mediapipe") from exc
        except (ImportError, RuntimeError) as exc:
            if need:
                raise NodeInputError(
                    NODE, "pose_keypoint", f"the geometric backend needs keypoints and the "
                    f"{pose_backend} detector is unavailable ({exc})", "connect a "
                    "POSE_KEYPOINT (e.g. from OpenPose), or install the offline extra "
                    "(pip install 'mediapipe==0.10.21')") from exc
            logger.warning("pose detector unavailable (%s): no keypoints, so no hand labels",
                           exc)
            return None

    @staticmethod
    def _parse_frame(i: int, rgb: np.ndarray, parser: HumanParser, detector: Any,
                     people: list[Person] | None, mode: str, index: int, if_no_person: str,
                     draw_hands: bool, crop_to_person: bool) -> np.ndarray:
        dets = detector(rgb) if detector is not None else None
        try:
            labels = parse_target(parser, rgb, dets, people, select=mode, index=index,
                                  hands=draw_hands, crop_to_person=crop_to_person)
        except ValueError as exc:
            raise NodeInputError(NODE, "person_index", f"frame {i}: {exc}",
                                 "lower person_index or use person = largest") from exc
        if labels is not None:
            return labels
        if if_no_person == "empty":
            return np.zeros(rgb.shape[:2], dtype=np.uint8)
        raise NodeInputError(NODE, "image", f"no person found in frame {i}",
                             "use a frame where a person is visible, connect a POSE_KEYPOINT "
                             "with a person, or set if_no_person to 'empty'")


NODE_CLASS_MAPPINGS = {"DanceReenactHumanParse": HumanParse}
NODE_DISPLAY_NAME_MAPPINGS = {
    "DanceReenactHumanParse": "Human Parse · Body-part labels (Dance Reenact)",
}
