"""FaceRefine nodes: load a FaceRefine model (network or weightless), refine the faces of f0."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import torch

from ..models.compositing.face import LANDMARK_BACKENDS, MIN_FACE_PX
from ..models.io import weights
from ..models.stages import FaceOptions, FaceRefiner
from .runtime import (
    LOADER_BACKENDS,
    NO_FILE,
    NodeInputError,
    Progress,
    get_device,
    load_stage_network,
    local_choices,
    normalize_backend,
    validate_loader_backend,
)
from .sockets import (
    FACEREFINE_MODEL,
    IMAGE,
    PARSING,
    FaceRefineModel,
    check_image,
    check_parsing,
    check_same_length,
    frame_to_rgb_uint8,
)

logger = logging.getLogger(__name__)
CATEGORY = "dance_reenact/face"


class LoadFaceRefine:
    """FaceRefine model: a trained FaceRefineNet (Hub repo or local file) or the weightless
    backend (the target's face aligned, colour-matched and blended)."""

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        return {
            "required": {
                "backend": (list(LOADER_BACKENDS), {"default": "warp", "tooltip":
                            "warp: no weights, the target's face aligned by landmarks, "
                            "colour-matched and blended in. hub / local: a FaceRefineNet "
                            ".safetensors trained with `reenact train face` (a Hub repo, or a "
                            "file in models/dance_reenact)."}),
                "landmarks": (list(LANDMARK_BACKENDS), {"default": "mediapipe", "tooltip":
                              "mediapipe: face mesh inside the mediapipe wheel (offline). "
                              "fan68: FAN ONNX through the weight registry + OpenCV face box."}),
                "blend": (["feather", "seamless"], {"default": "feather", "tooltip":
                          "warp only: feathered alpha, or Poisson (seamless) cloning "
                          "that keeps the frame's shading."}),
                "color_match": ("BOOLEAN", {"default": True, "tooltip": "warp only: "
                                "match the pasted face's Lab mean/std to the frame's."}),
                "feather": ("INT", {"default": 0, "min": 0, "max": 128, "tooltip":
                            "warp only: feather radius in pixels; 0 = 6% of face width."}),
            },
            "optional": {
                "local_file": (local_choices(), {"default": NO_FILE, "tooltip": "local: a "
                               ".safetensors in the models folder "
                               "(ComfyUI/models/dance_reenact)."}),
                "repo_id": ("STRING", {"default": "", "tooltip": "Hub repo, owner/name."}),
                "filename": ("STRING", {"default": "face_refine.safetensors"}),
                "revision": ("STRING", {"default": "main"}),
                "sha256": ("STRING", {"default": "", "tooltip": "Optional pin; empty = the "
                           "checksum the Hub reports for the revision."}),
            },
        }

    RETURN_TYPES = (FACEREFINE_MODEL,)
    RETURN_NAMES = ("face_model",)
    OUTPUT_TOOLTIPS = ("The FaceRefine model (or the weightless paste) and its landmark and "
                       "blend settings, for the FaceRefine node.",)

    @classmethod
    def VALIDATE_INPUTS(cls, backend: str) -> bool | str:  # noqa: N802 - ComfyUI's name
        return validate_loader_backend(backend)
    FUNCTION = "load"
    CATEGORY = CATEGORY
    DESCRIPTION = ("Load FaceRefine: a trained FaceRefineNet from the Hub or a local file, or "
                   "the weightless backend that pastes the target's face by landmarks.")

    def load(self, backend: str = "warp", landmarks: str = "mediapipe",
             blend: str = "feather", color_match: bool = True, feather: int = 0,
             local_file: str = NO_FILE, repo_id: str = "", filename: str = "",
             revision: str = "main", sha256: str = "") -> tuple[FaceRefineModel]:
        node = "Load FaceRefine"
        source = normalize_backend(backend)  # "weightless"/"local_file" of saved workflows
        fan_path = None
        if landmarks == "fan68":
            try:
                fan_path = str(weights.resolve("fan68"))
            except weights.WeightError as exc:
                raise NodeInputError(node, "landmarks", str(exc),
                                     "place the file as the message says, or use "
                                     "landmarks=mediapipe (offline)") from exc
        elif landmarks != "mediapipe":
            raise NodeInputError(node, "landmarks", f"unknown backend {landmarks!r}",
                                 f"pick one of {', '.join(LANDMARK_BACKENDS)}")
        options = FaceOptions(landmarks=landmarks, fan_path=fan_path,
                              feather=int(feather) or None, color_match=bool(color_match),
                              seamless=blend == "seamless")
        if source == "warp":
            return (FaceRefineModel("weightless", source="weightless", options=options),)
        net, path = load_stage_network(
            node, source, arch="FaceRefineNet", what="FaceRefine", repo_id=repo_id,
            filename=filename, revision=revision, sha256=sha256, local_file=local_file,
            train_cmd="reenact train face")
        return (FaceRefineModel("network", net, path, options),)


def why_no_face(rgb: np.ndarray) -> tuple[str, str]:
    """(problem, fix) when no face landmarks were found on the target photo: the likely real
    cause (an empty or mis-scaled image, a tiny photo, several people) rather than a bare
    "no face"."""
    from ..models.compositing.face import haar_face_boxes

    h, w = rgb.shape[:2]
    mean, std = float(rgb.mean()), float(rgb.std())
    if std < 4.0:
        return (f"no face was found in the target photo: it is almost uniform (mean "
                f"{mean:.0f}/255, spread {std:.1f}), so its values were probably scaled "
                "twice or clipped (e.g. 0..1 data divided by 255 again, or 0..255 data "
                "clipped to white)", "connect the photo as a 0..1 IMAGE straight from "
                "Load Image")
    if min(h, w) < 64:
        return (f"no face was found in the target photo: it is only {w}x{h} pixels",
                "use a larger photo (the face at least ~64 px wide)")
    boxes = haar_face_boxes(rgb)
    if len(boxes) > 1:
        return (f"no face landmarks were found in the target photo, though {len(boxes)} "
                "face-like regions appear: it shows several people or faces too small to "
                "fit", "crop the photo to the one target person")
    return ("no face was found in the target photo", "use a photo where the face is visible, "
            "roughly frontal and at least ~64 px wide")


def _frame_list(idx: list[int], limit: int = 8) -> str:
    shown = ", ".join(str(i) for i in idx[:limit])
    return shown + (f", ... ({len(idx)} in all)" if len(idx) > limit else "")


def refine_report(total: int, refined: int, none: list[int], small: list[int],
                  kept: list[int], min_face_px: int) -> str:
    """One short paragraph an artist reads in a Preview Any node."""
    parts = [f"FaceRefine: refined the face in {refined} of {total} frames."]
    if none:
        parts.append(f"No face found in frame(s) {_frame_list(none)}: passed through.")
    if small:
        parts.append(f"Face under min_face_px={min_face_px} px in frame(s) "
                     f"{_frame_list(small)}: passed through (lower min_face_px to try).")
    if kept:
        parts.append(f"Face landmarks off the rendered head or nothing to paste in frame(s) "
                     f"{_frame_list(kept)}: kept as rendered.")
    return " ".join(parts)


class FaceRefine:
    """Refine the face in every frame of f0 with the target's face."""

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        return {
            "required": {
                "face_model": (FACEREFINE_MODEL,),
                "frames": (IMAGE, {"tooltip": "f0: the blended frames (a batch is a video)."}),
                "target": (IMAGE, {"tooltip": "The target photo (its first frame is used)."}),
            },
            "optional": {
                "parsing": (PARSING, {"tooltip": "Parsing of the frames (e.g. from P2B): the "
                            "blend is limited to the face label, grown by a few pixels, and "
                            "the face is looked for there first."}),
                "min_face_px": ("INT", {"default": MIN_FACE_PX, "min": 8, "max": 512,
                                "tooltip": "Faces smaller than this (pixels, the larger side "
                                "of the face's landmark box) pass through unchanged and are "
                                f"listed in the report. {MIN_FACE_PX} is the smallest size "
                                "the landmarks stay accurate at (small faces are upscaled "
                                "before landmarking)."}),
            },
        }

    RETURN_TYPES = (IMAGE, "INT", "STRING")
    RETURN_NAMES = ("frames", "frames_without_face", "report")
    OUTPUT_TOOLTIPS = (
        "The frames with the target's face refined in; frames without a usable face are "
        "passed through unchanged.",
        "How many frames passed through because no face (or only a face under min_face_px) "
        "was found.",
        "What happened, in words: how many faces were refined and which frames were passed "
        "through and why. Connect a Preview Any node to read it.")
    FUNCTION = "refine"
    CATEGORY = CATEGORY
    DESCRIPTION = ("Refine the face of each frame with the target's face (FaceRefineNet or the "
                   "weightless paste). Small faces are found on an upscaled crop. Frames with "
                   "no usable face, or a target photo without one, pass through unchanged "
                   "and the report says which: the graph never stops for a missing face.")

    def refine(self, face_model: Any, frames: Any, target: Any, parsing: Any = None,
               min_face_px: int = MIN_FACE_PX) -> tuple[torch.Tensor, int, str]:
        node = "FaceRefine"
        if not isinstance(face_model, FaceRefineModel):
            raise NodeInputError(node, "face_model", "expected a FACEREFINE_MODEL",
                                 "connect the output of Load FaceRefine")
        frames = check_image(frames, node, "frames")
        target = check_image(target, node, "target")
        b, h, w = (int(s) for s in frames.shape[:3])
        labels = None
        if parsing is not None:
            parsing = check_parsing(parsing, node, "parsing")
            check_same_length(node, frames=b, parsing=len(parsing))
            if tuple(parsing.labels.shape[1:]) != (h, w):
                got = tuple(parsing.labels.shape[1:])
                raise NodeInputError(node, "parsing", f"parsing is {got} but the frames are "
                                     f"{(h, w)}", "give the parsing of "
                                     "these frames (same size), e.g. P2B's output")
            labels = parsing.labels
        target_rgb = frame_to_rgb_uint8(target[0])
        try:
            refiner = FaceRefiner(target_rgb, face_model.options, module=face_model.module,
                                  min_face_px=min_face_px, device=get_device())
        except (RuntimeError, ValueError, weights.WeightError) as exc:
            raise NodeInputError(node, "face_model", f"the landmark detector could not start "
                                 f"({exc})", "install the offline extra for mediapipe, or "
                                 "re-fetch the fan68 file") from exc

        def passthrough(i: int) -> torch.Tensor:
            src = frames[i].float()
            if src.shape[-1] == 3:
                return src
            return torch.from_numpy(frame_to_rgb_uint8(frames[i])).float() / 255

        with refiner:
            if not refiner.target_found:
                found_t = refiner.target_face
                if found_t.status == "small":
                    why = (f"the target photo's face is {found_t.size:.0f} px, under "
                           f"min_face_px={min_face_px}")
                else:
                    why = why_no_face(target_rgb)[0]
                report = (f"FaceRefine: skipped, {why}; all {b} frames passed through "
                          "unchanged (use a photo with a larger face, or lower min_face_px).")
                logger.warning(report)
                if frames.dtype == torch.float32 and frames.shape[-1] == 3:
                    return frames, b, report  # unchanged: no copy of the video
                out = torch.empty((b, h, w, 3), dtype=torch.float32)
                for i in range(b):  # gray / RGBA: converted frame by frame into the output
                    out[i] = passthrough(i)
                return out, b, report
            out = torch.empty((b, h, w, 3), dtype=torch.float32)
            by_status: dict[str, list[int]] = {"none": [], "small": [], "kept": []}
            with Progress(b, node) as bar:
                for i in range(b):
                    rgb = frame_to_rgb_uint8(frames[i])
                    lab = None if labels is None else \
                        labels[i if len(labels) > 1 else 0].cpu().numpy()
                    res, status = refiner(rgb, lab)
                    orig = passthrough(i)
                    if res is None:
                        by_status[status].append(i)
                        out[i] = orig
                    else:  # only the changed pixels: the rest stays bit-identical
                        changed = torch.from_numpy((res != rgb).any(-1))
                        out[i] = torch.where(changed[..., None],
                                             torch.from_numpy(res).float() / 255, orig)
                    bar.update()
        none, small, kept = by_status["none"], by_status["small"], by_status["kept"]
        missing = len(none) + len(small)
        report = refine_report(b, b - missing - len(kept), none, small, kept, min_face_px)
        if missing or kept:
            logger.info(report)
        return out, missing, report


NODE_CLASS_MAPPINGS = {
    "DanceReenactLoadFaceRefine": LoadFaceRefine,
    "DanceReenactFaceRefine": FaceRefine,
}
NODE_DISPLAY_NAME_MAPPINGS = {
    "DanceReenactLoadFaceRefine": "Load FaceRefine · Face model (Dance Reenact)",
    "DanceReenactFaceRefine": "FaceRefine · Put the target's face in (Dance Reenact)",
}
