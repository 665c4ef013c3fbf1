"""Beyond-the-paper nodes: smooth and retarget driver poses, pick the best target frame,
stabilise the blend mask over time. The maths lives in models/geometry/: temporal.py,
retarget.py and best_frame.py."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from ..models.geometry.best_frame import best_frame
from ..models.geometry.pose_sequence import ASPECT_TOLERANCE, as_frame_list, parse_sequence
from ..models.geometry.retarget import DEFAULT_MARGIN, retarget_pose_sequence
from ..models.geometry.temporal import (
    PERSON_MODES,
    SMOOTHING_METHODS,
    MaskStabilizer,
    SmoothingOptions,
    smooth_pose_sequence,
)
from .runtime import NodeInputError, Progress
from .sockets import IMAGE, MASK, POSE_KEYPOINT, check_image, check_mask, frame_to_rgb_uint8

CATEGORY = "dance_reenact/temporal"
_POSE_FIX = "connect the POSE_KEYPOINT output of OpenPose/DWPose (one frame per video frame)"


def _frames(value: Any, node: str, name: str) -> list:
    try:
        return as_frame_list(value, name)
    except ValueError as exc:
        raise NodeInputError(node, name, str(exc), _POSE_FIX) from exc


class SmoothPose:
    """Savitzky–Golay or One-Euro smoothing of a POSE_KEYPOINT sequence, filling short gaps."""

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        d = SmoothingOptions()
        return {
            "required": {
                "pose_keypoint": (POSE_KEYPOINT, {"tooltip": "The driver's poses, one frame "
                                                  "per video frame."}),
                "method": (list(SMOOTHING_METHODS), {"default": d.method, "tooltip":
                           "savgol: Savitzky-Golay (offline, no lag); one_euro: One-Euro "
                           "(causal, adapts to speed); none: only fill short gaps."}),
                "window": ("INT", {"default": d.window, "min": 3, "max": 99, "step": 2,
                                   "tooltip": "Savitzky-Golay window in frames (odd)."}),
                "order": ("INT", {"default": d.order, "min": 0, "max": 6,
                                  "tooltip": "Savitzky-Golay polynomial order (< window)."}),
                "min_cutoff": ("FLOAT", {"default": d.min_cutoff, "min": 0.01, "max": 30.0,
                                         "step": 0.05, "tooltip": "One-Euro cutoff at rest "
                                         "(Hz): lower = smoother when still."}),
                "beta": ("FLOAT", {"default": d.beta, "min": 0.0, "max": 1000.0, "step": 0.5,
                                   "tooltip": "One-Euro speed coefficient (per person height "
                                   "per second): higher = less lag in fast moves."}),
                "d_cutoff": ("FLOAT", {"default": d.d_cutoff, "min": 0.01, "max": 30.0,
                                       "step": 0.05, "tooltip": "One-Euro cutoff of the speed "
                                       "estimate (Hz)."}),
                "fps": ("FLOAT", {"default": d.fps, "min": 1.0, "max": 240.0, "step": 1.0,
                                  "tooltip": "Frame rate of the sequence (One-Euro)."}),
                "max_gap": ("INT", {"default": d.max_gap, "min": 0, "max": 120, "tooltip":
                                    "Missing/low-confidence runs up to this many frames are "
                                    "interpolated; longer ones stay missing."}),
                "conf_threshold": ("FLOAT", {"default": d.conf_threshold, "min": 0.0,
                                             "max": 1.0, "step": 0.01, "tooltip": "Keypoints "
                                             "below this confidence count as missing."}),
                "max_deviation": ("FLOAT", {"default": d.max_deviation, "min": 0.0, "max": 1.0,
                                            "step": 0.01, "tooltip": "A confident keypoint moves "
                                            "at most this fraction of the person's size "
                                            "(0 = no limit)."}),
                "person": (list(PERSON_MODES), {"default": "largest", "tooltip":
                           "largest: the largest person per frame; index: person_index; all: "
                           "every person, tracked by position in the list."}),
                "person_index": ("INT", {"default": 0, "min": 0, "max": 64}),
            },
        }

    RETURN_TYPES = (POSE_KEYPOINT, "STRING")
    RETURN_NAMES = ("pose_keypoint", "report")
    OUTPUT_TOOLTIPS = (
        'The smoothed poses (same frames, less jitter).',
        'What was smoothed or filled, in words; connect a Preview Any node to read it.',
    )
    FUNCTION = "smooth"
    CATEGORY = CATEGORY
    DESCRIPTION = ("Remove keypoint jitter (Savitzky-Golay or One-Euro) and interpolate "
                   "keypoints missing for a few frames. Same format and canvas as the input.")

    def smooth(self, pose_keypoint: Any, method: str = "savgol", window: int = 7,
               order: int = 2, min_cutoff: float = 1.0, beta: float = 10.0,
               d_cutoff: float = 1.0, fps: float = 30.0, max_gap: int = 5,
               conf_threshold: float = 0.2, max_deviation: float = 0.05,
               person: str = "largest", person_index: int = 0) -> tuple[list, str]:
        node = "Smooth Pose"
        frames = _frames(pose_keypoint, node, "pose_keypoint")
        opts = SmoothingOptions(method=method, window=window, order=order,
                                min_cutoff=min_cutoff, beta=beta, d_cutoff=d_cutoff, fps=fps,
                                max_gap=max_gap, conf_threshold=conf_threshold,
                                max_deviation=max_deviation)
        try:
            opts.validate()
        except ValueError as exc:
            raise NodeInputError(node, str(exc).split()[0], str(exc),
                                 "change the option as the message says") from exc
        try:
            out, report = smooth_pose_sequence(frames, opts, person=person, index=person_index)
        except ValueError as exc:
            if "person index" in str(exc):
                raise NodeInputError(node, "person_index", str(exc), "choose a smaller index "
                                     "or person=largest") from exc
            raise NodeInputError(node, "pose_keypoint", str(exc), _POSE_FIX + "; frames of one "
                                 "video must share one aspect ratio") from exc
        return out, str(report)


class RetargetPose:
    """The driver's motion on the target's skeleton: target limb lengths, feet on its ground."""

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        return {
            "required": {
                "target_pose": (POSE_KEYPOINT, {"tooltip": "The target photo's pose (one "
                                                "frame)."}),
                "driver_pose": (POSE_KEYPOINT, {"tooltip": "The driver video's poses."}),
                "person": (["largest", "index"], {"default": "largest"}),
                "person_index": ("INT", {"default": 0, "min": 0, "max": 64}),
                "keep_foreshortening": ("BOOLEAN", {"default": False, "tooltip":
                                        "Shorten a bone when the driver's is foreshortened "
                                        "(pointing at the camera)."}),
                "limit_to_target": ("BOOLEAN", {"default": False, "tooltip":
                                    "Drop joints the target does not show (e.g. the legs of "
                                    "a waist-up photo)."}),
                "keep_in_frame": ("BOOLEAN", {"default": True, "tooltip":
                                  "Keep the whole person inside the photo: scale the motion "
                                  "down when the largest pose does not fit, and stop the "
                                  "person at the edge instead of walking out. The report "
                                  "says what it did."}),
                "margin": ("FLOAT", {"default": DEFAULT_MARGIN, "min": 0.0, "max": 0.25,
                                     "step": 0.01, "tooltip": "Free border kept around the "
                                     "person with keep_in_frame, as a fraction of the photo's "
                                     "shorter side."}),
            },
        }

    RETURN_TYPES = (POSE_KEYPOINT, "STRING")
    RETURN_NAMES = ("pose_keypoint", "report")
    OUTPUT_TOOLTIPS = (
        "The driver's motion on the target's body and canvas.",
        'What was scaled, moved or limited to keep the person in the photo; connect a '
        'Preview Any node to read it.',
    )
    FUNCTION = "retarget"
    CATEGORY = CATEGORY
    DESCRIPTION = ("Move the driver's skeleton onto the target's body: each bone keeps the "
                   "driver's direction and the target's length; scale and position anchored "
                   "on the first frame (feet on the target's ground line, or hips/shoulders "
                   "for a waist-up target). Output on the target's canvas, the whole person "
                   "kept inside it (keep_in_frame).")

    def retarget(self, target_pose: Any, driver_pose: Any, person: str = "largest",
                 person_index: int = 0, keep_foreshortening: bool = False,
                 limit_to_target: bool = False, keep_in_frame: bool = True,
                 margin: float = DEFAULT_MARGIN) -> tuple[list, str]:
        node = "Retarget Pose"
        target = _frames(target_pose, node, "target_pose")
        driver = _frames(driver_pose, node, "driver_pose")
        if len(target) != 1:
            raise NodeInputError(node, "target_pose", f"{len(target)} frames given, the target "
                                 "is one photo", "pose the target photo alone, or pick a frame "
                                 "with Best Appearance Frame")
        try:
            tseq = parse_sequence(target, "target_pose")
            tgt = tseq.select(person, person_index)[0]
        except ValueError as exc:
            raise NodeInputError(node, "target_pose", str(exc), _POSE_FIX) from exc
        if tgt is None:
            raise NodeInputError(node, "target_pose", "no person found in the target pose",
                                 "use a photo where the pose detector finds the person")
        try:
            parse_sequence(driver, "driver_pose")
        except ValueError as exc:
            raise NodeInputError(node, "driver_pose", str(exc), _POSE_FIX + "; frames of one "
                                 "video must share one aspect ratio") from exc
        try:
            out, report = retarget_pose_sequence(target, driver, person=person,
                                                 index=person_index,
                                                 keep_foreshortening=keep_foreshortening,
                                                 limit_to_target=limit_to_target,
                                                 keep_in_frame=keep_in_frame, margin=margin)
        except ValueError as exc:
            which = "driver_pose" if "driver" in str(exc) else "target_pose"
            raise NodeInputError(node, which, str(exc), "check that the pose detector found the "
                                 "person's neck and shoulders") from exc
        return out, str(report)


class BestAppearanceFrame:
    """Pick the target video's frame with the most confident, complete and frontal pose."""

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        return {
            "required": {
                "video": (IMAGE, {"tooltip": "The target video (an IMAGE batch)."}),
                "pose_keypoint": (POSE_KEYPOINT, {"tooltip": "Its poses, one per frame."}),
                "person": (["largest", "index"], {"default": "largest"}),
                "person_index": ("INT", {"default": 0, "min": 0, "max": 64}),
                "threshold": ("FLOAT", {"default": 0.05, "min": 0.0, "max": 1.0, "step": 0.01,
                                        "tooltip": "Confidence above which a keypoint counts "
                                        "as present."}),
            },
        }

    RETURN_TYPES = (IMAGE, "INT", POSE_KEYPOINT, "STRING")
    RETURN_NAMES = ("image", "index", "pose_keypoint", "scores")
    OUTPUT_TOOLTIPS = (
        'The chosen frame, to use as the target photo.',
        'Its index in the video.',
        'Its pose (POSE_KEYPOINT), for the target branch.',
        'The best frames and their scores, in words; connect a Preview Any node to read it.',
    )
    FUNCTION = "pick"
    CATEGORY = CATEGORY
    DESCRIPTION = ("Best appearance frame: score = mean keypoint confidence x completeness x "
                   "frontality (shoulder/hip width vs the video's widest, face keypoints "
                   "confidently seen, facing the camera) x upright (torso and legs as tall as "
                   "elsewhere in the video: a crouch or bend loses); outputs that frame, its "
                   "index and its pose.")

    def pick(self, video: Any, pose_keypoint: Any, person: str = "largest",
             person_index: int = 0, threshold: float = 0.05,
             ) -> tuple[torch.Tensor, int, list, str]:
        node = "Best Appearance Frame"
        video = check_image(video, node, "video")
        frames = _frames(pose_keypoint, node, "pose_keypoint")
        if len(frames) != video.shape[0]:
            raise NodeInputError(node, "video/pose_keypoint", f"the video has {video.shape[0]} "
                                 f"frames but the pose has {len(frames)}", "pose every frame "
                                 "of this video (connect the same video to the pose node)")
        try:
            seq = parse_sequence(frames, "pose_keypoint")
        except ValueError as exc:
            raise NodeInputError(node, "pose_keypoint", str(exc), _POSE_FIX) from exc
        vh, vw = int(video.shape[1]), int(video.shape[2])
        if abs((seq.width / seq.height) / (vw / vh) - 1.0) > ASPECT_TOLERANCE:
            raise NodeInputError(node, "pose_keypoint", f"its canvas {seq.width}x{seq.height} "
                                 f"does not have the video's aspect ratio ({vw}x{vh})",
                                 "pose this video, not another one")
        try:
            index, scores = best_frame(seq.select(person, person_index), threshold)
        except ValueError as exc:
            raise NodeInputError(node, "pose_keypoint", str(exc), "use a video in which the "
                                 "pose detector finds the person") from exc
        top = sorted(scores, key=lambda s: -s.score)[:5]
        text = "; ".join(f"frame {s.index}: score {s.score:.3f} (confidence {s.confidence:.2f} "
                         f"x completeness {s.completeness:.2f} x frontality "
                         f"{s.frontality:.2f} x upright {s.upright:.2f})" for s in top)
        return video[index:index + 1].clone(), int(index), [frames[index]], text


class StabilizeMask:
    """Motion-gated running average of a MASK batch: no flicker where the image is still."""

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        return {
            "required": {
                "mask": (MASK, {"tooltip": "The blend mask per frame (e.g. B2F's mask)."}),
                "image": (IMAGE, {"tooltip": "The frames the mask belongs to (motion is "
                                  "measured on them)."}),
                "enabled": ("BOOLEAN", {"default": True, "tooltip": "Off: the mask passes "
                                        "through unchanged."}),
                "strength": ("FLOAT", {"default": 0.8, "min": 0.0, "max": 0.99, "step": 0.01,
                                       "tooltip": "Weight of the previous stabilised mask where "
                                       "the image is still (higher = steadier)."}),
                "motion_threshold": ("FLOAT", {"default": 0.04, "min": 0.001, "max": 1.0,
                                               "step": 0.005, "tooltip": "Mean absolute image "
                                               "change (0..1) at which a pixel counts as "
                                               "moving and takes the new mask."}),
                "motion_radius": ("INT", {"default": 2, "min": 0, "max": 64, "tooltip":
                                          "Motion is spread over this many pixels so moving "
                                          "edges follow the object."}),
            },
        }

    RETURN_TYPES = (MASK,)
    RETURN_NAMES = ("mask",)
    OUTPUT_TOOLTIPS = (
        'The mask with its flicker removed.',
    )
    FUNCTION = "stabilize"
    CATEGORY = CATEGORY
    DESCRIPTION = ("Temporally stable blend mask: where the image barely changes between "
                   "frames the mask is averaged with the previous stabilised mask; where it "
                   "moves, the new mask is taken.")

    def stabilize(self, mask: Any, image: Any, enabled: bool = True, strength: float = 0.8,
                  motion_threshold: float = 0.04, motion_radius: int = 2,
                  ) -> tuple[torch.Tensor]:
        node = "Stabilize Mask"
        mask = check_mask(mask, node, "mask")
        image = check_image(image, node, "image")
        if not enabled or mask.shape[0] == 1:
            return (mask,)
        if image.shape[0] != mask.shape[0]:
            raise NodeInputError(node, "mask/image", f"the mask has {mask.shape[0]} frames but "
                                 f"the image has {image.shape[0]}", "connect the video the "
                                 "mask was made for (same frame count)")
        mh, mw = int(mask.shape[1]), int(mask.shape[2])
        ih, iw = int(image.shape[1]), int(image.shape[2])
        if (mh, mw) != (ih, iw) and abs((iw / ih) / (mw / mh) - 1.0) > ASPECT_TOLERANCE:
            raise NodeInputError(node, "image", f"the image is {iw}x{ih} but the mask {mw}x{mh} "
                                 "(another aspect ratio)", "connect the frames the mask was "
                                 "made for, or resize one to the other")
        try:
            stab = MaskStabilizer(strength=strength, motion_threshold=motion_threshold,
                                  radius=motion_radius)
        except ValueError as exc:
            name = str(exc).split()[0]
            raise NodeInputError(node, "motion_radius" if name == "radius" else name, str(exc),
                                 "change the option as the message says") from exc
        out = torch.empty_like(mask)
        with Progress(mask.shape[0], node) as bar:
            for i in range(mask.shape[0]):
                frame = frame_to_rgb_uint8(image[i])  # gray / alpha handled
                if (ih, iw) != (mh, mw):
                    t = torch.from_numpy(frame).permute(2, 0, 1)[None].float()
                    t = F.interpolate(t, size=(mh, mw), mode="bilinear", align_corners=False)
                    frame = t[0].permute(1, 2, 0).clamp(0, 255).numpy() / 255.0
                res = stab.update(mask[i].cpu().numpy(), frame)
                out[i] = torch.from_numpy(res).to(out.device)
                bar.update()
        return (out,)


NODE_CLASS_MAPPINGS = {
    "DanceReenactSmoothPose": SmoothPose,
    "DanceReenactRetargetPose": RetargetPose,
    "DanceReenactBestAppearanceFrame": BestAppearanceFrame,
    "DanceReenactStabilizeMask": StabilizeMask,
}
NODE_DISPLAY_NAME_MAPPINGS = {
    "DanceReenactSmoothPose": "Smooth Pose · Less jitter (Dance Reenact)",
    "DanceReenactRetargetPose":
        "Retarget Pose · Driver's motion on the target's body (Dance Reenact)",
    "DanceReenactBestAppearanceFrame":
        "Best Appearance Frame · Pick the target frame (Dance Reenact)",
    "DanceReenactStabilizeMask": "Stabilize Mask · Remove flicker (Dance Reenact)",
}
