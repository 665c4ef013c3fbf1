"""Small utility nodes: draw any POSE_KEYPOINT as a stick figure, preview and mask a PARSING."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..models.core.schema import (
    LABEL_GROUPS,
    colorize_labels,
    frame_to_people,
    group_mask,
    select_person,
    sequence_is_normalized,
)
from ..models.geometry.motion import DEFAULT_MOTION, list_motions, load_motion
from ..models.geometry.render import draw_pose
from .runtime import NodeInputError, Progress
from .sockets import (
    IMAGE,
    MASK,
    PARSING,
    POSE_KEYPOINT,
    check_parsing,
    check_pose_frames,
    rgb_uint8_to_image,
)

CATEGORY = "dance_reenact/utils"


def check_pose_keypoint(value: Any, node: str, name: str = "pose_keypoint") -> list[dict]:
    """A POSE_KEYPOINT value as a non-empty list of frames (a single dict is one frame)."""
    return check_pose_frames(value, node, name)


class RenderPose:
    """Draw POSE_KEYPOINT (ours or comfyui_controlnet_aux's, normalised or pixels) as the
    OpenPose stick figure P2B reads."""

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        return {
            "required": {
                "pose_keypoint": (POSE_KEYPOINT, {"tooltip": "One frame or a list of frames."}),
                "people": (["all", "largest", "index"], {"default": "all"}),
                "person_index": ("INT", {"default": 0, "min": 0, "max": 64}),
                "draw_body": ("BOOLEAN", {"default": True}),
                "draw_hands": ("BOOLEAN", {"default": True}),
                "draw_face": ("BOOLEAN", {"default": True}),
            },
            "optional": {
                "width": ("INT", {"default": 0, "min": 0, "max": 16384,
                                  "tooltip": "0 = the pose's own canvas width."}),
                "height": ("INT", {"default": 0, "min": 0, "max": 16384,
                                   "tooltip": "0 = the pose's own canvas height."}),
            },
        }

    RETURN_TYPES = (IMAGE,)
    RETURN_NAMES = ("stick_figure",)
    OUTPUT_TOOLTIPS = (
        'The poses drawn as OpenPose stick figures (IMAGE batch).',
    )
    FUNCTION = "render"
    CATEGORY = CATEGORY
    DESCRIPTION = "Render POSE_KEYPOINT frames as OpenPose stick figures (P2B's pose input)."

    def render(self, pose_keypoint: Any, people: str = "all", person_index: int = 0,
               draw_body: bool = True, draw_hands: bool = True, draw_face: bool = True,
               width: int = 0, height: int = 0) -> tuple[torch.Tensor]:
        node = "Render Pose"
        frames = check_pose_keypoint(pose_keypoint, node)
        first = frames[0] if isinstance(frames[0], dict) else {}
        out_w = width or int(first.get("canvas_width") or 0)
        out_h = height or int(first.get("canvas_height") or 0)
        if out_w <= 0 or out_h <= 0:
            raise NodeInputError(node, "width/height", "the pose has no canvas size",
                                 "set width and height")
        images = []
        normalized = sequence_is_normalized(frames)  # once for the sequence, not per frame
        with Progress(len(frames), node) as bar:
            for frame in frames:
                try:
                    found = frame_to_people(frame, normalized=normalized)
                    if people != "all" and found:
                        chosen = select_person(found, people, person_index)
                        found = [chosen] if chosen is not None else []
                except ValueError as exc:
                    raise NodeInputError(node, "pose_keypoint", str(exc),
                                         "connect a POSE_KEYPOINT in the OpenPose layout") from exc
                sx = out_w / float(frame["canvas_width"])
                sy = out_h / float(frame["canvas_height"])
                found = [p.scaled(sx, sy) for p in found]
                images.append(draw_pose(found, out_h, out_w, body=draw_body, hands=draw_hands,
                                        face=draw_face))
                bar.update()
        return (rgb_uint8_to_image(images),)


class ParsingPreview:
    """Colour preview of a PARSING and a MASK for a label group."""

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        return {
            "required": {
                "parsing": (PARSING,),
                "group": (list(LABEL_GROUPS) + ["custom"], {"default": "person"}),
            },
            "optional": {
                "custom_labels": ("STRING", {"default": "", "tooltip":
                                  "With group=custom: label ids, comma separated (e.g. 5,6,7)."}),
            },
        }

    RETURN_TYPES = (IMAGE, MASK)
    RETURN_NAMES = ("preview", "mask")
    OUTPUT_TOOLTIPS = (
        'The parsing in colour, one colour per label.',
        'The chosen label group as a mask (1 inside).',
    )
    FUNCTION = "preview"
    CATEGORY = CATEGORY
    DESCRIPTION = "Colour a PARSING with the label palette and output a mask of a label group."

    def preview(self, parsing: Any, group: str = "person",
                custom_labels: str = "") -> tuple[torch.Tensor, torch.Tensor]:
        node = "Parsing Preview"
        parsing = check_parsing(parsing, node, "parsing")
        ids: Any = group
        if group == "custom":
            try:
                ids = [int(t) for t in custom_labels.replace(" ", "").split(",") if t]
            except ValueError as exc:
                raise NodeInputError(node, "custom_labels", f"{custom_labels!r} is not a list "
                                     "of integers", "write label ids like 5,6,7") from exc
            bad = [i for i in ids if not 0 <= i < parsing.schema.num_labels]
            if not ids or bad:
                raise NodeInputError(node, "custom_labels", f"labels {bad or 'none'} are not in "
                                     f"0..{parsing.schema.num_labels - 1}",
                                     "list valid label ids")
        labels = parsing.labels.cpu().numpy()
        colors = colorize_labels(labels, parsing.schema.colors)
        mask = group_mask(labels, ids).astype(np.float32)
        return rgb_uint8_to_image(colors), torch.from_numpy(mask)


class LoadMotionClip:
    """A shipped motion clip (POSE_KEYPOINT sequence) to drive the pipeline without a video."""

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        names = list_motions() or [DEFAULT_MOTION]
        return {
            "required": {
                "motion": (names, {"default": DEFAULT_MOTION if DEFAULT_MOTION in names
                                   else names[0]}),
                "max_frames": ("INT", {"default": 0, "min": 0, "max": 100000,
                                       "tooltip": "0 = the whole clip."}),
            },
        }

    RETURN_TYPES = (POSE_KEYPOINT, "FLOAT", "INT")
    RETURN_NAMES = ("pose_keypoint", "fps", "frame_count")
    OUTPUT_TOOLTIPS = (
        "The clip's poses, one frame per entry (POSE_KEYPOINT).",
        "The clip's frame rate.",
        'How many frames the clip has.',
    )
    FUNCTION = "load"
    CATEGORY = CATEGORY
    DESCRIPTION = "Load a keyframed dance shipped with the pack as POSE_KEYPOINT frames."

    def load(self, motion: str, max_frames: int = 0) -> tuple[list, float, int]:
        try:
            frames, fps = load_motion(motion)
        except ValueError as exc:
            raise NodeInputError("Load Motion Clip", "motion", str(exc),
                                 "pick one of the listed clips") from exc
        if max_frames:
            frames = frames[:max_frames]
        return frames, fps, len(frames)


NODE_CLASS_MAPPINGS = {
    "DanceReenactRenderPose": RenderPose,
    "DanceReenactParsingPreview": ParsingPreview,
    "DanceReenactLoadMotionClip": LoadMotionClip,
}
NODE_DISPLAY_NAME_MAPPINGS = {
    "DanceReenactRenderPose": "Render Pose · Stick figures (Dance Reenact)",
    "DanceReenactParsingPreview": "Parsing Preview / Mask (Dance Reenact)",
    "DanceReenactLoadMotionClip": "Load Motion Clip (Dance Reenact)",
}
