"""Body-to-Frame stage nodes: Part Cropper, Appearance Encoder, B2F loader and B2F (paper §3.2).

Part Cropper -> PARTS (five 224x224 crops) -> Appearance Encoder -> APPEARANCE (``e_z``,
computed once per target) -> B2F (+ the P2B PARSING per driver frame) -> IMAGE ``z`` + MASK
``m`` at the driver frame's size, ready for Mask Blend.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import torch

from ..models.core.cache import model_cache
from ..models.core.inference import batch_size_for
from ..models.core.schema import Person, sequence_is_normalized
from ..models.geometry.mesh_warp import describe_legs_left_out
from ..models.io.weights import WeightError
from ..models.networks.appearance import (
    ENCODER_ID,
    crops_to_tensor,
    load_pretrained_encoder,
)
from ..models.networks.b2f import B2FGenerator, run_b2f_frames
from ..models.networks.parts import CROP_SIZE, crop_parts, preview_grid
from ..models.stages import B2FWarp, TargetPhoto, person_in_frame
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
    APPEARANCE,
    B2F_MODEL,
    IMAGE,
    MASK,
    PARSING,
    PARTS,
    POSE_KEYPOINT,
    Appearance,
    B2FModel,
    Parts,
    check_image,
    check_parsing,
    check_pose_frames,
    frame_to_rgb_uint8,
    rgb_uint8_to_image,
)

logger = logging.getLogger(__name__)

CATEGORY = "dance_reenact/b2f"
MIN_SIDE = 32
WEIGHTLESS_ID = "weightless"


def _resize_labels(labels: np.ndarray, height: int, width: int, node: str,
                   name: str) -> np.ndarray:
    """Nearest-resize a parsing to an image's size when only the scale differs."""
    import cv2

    h, w = labels.shape
    if (h, w) == (height, width):
        return labels
    if abs(h / w - height / width) > 0.02 * (height / width):
        raise NodeInputError(node, name, f"the parsing is {w}x{h} but the image is "
                             f"{width}x{height} (another aspect ratio)",
                             "connect the parsing made from this same image")
    return cv2.resize(labels, (width, height), interpolation=cv2.INTER_NEAREST)


def _pose_people(pose: Any, n: int, node: str, name: str, width: int, height: int
                 ) -> list[Person | None]:
    """One person per frame (the largest) from a POSE_KEYPOINT, scaled to (width, height);
    a list of length 1 is repeated; None entries where no person was found."""
    if pose is None:
        return [None] * n
    frames = check_pose_frames(pose, node, name)
    if len(frames) not in (1, n):
        raise NodeInputError(node, name, f"it has {len(frames)} frames but the parsing has "
                             f"{n}", "use the pose of the same video (same frame count)")
    normalized = sequence_is_normalized(frames)  # once for the clip, not per frame
    people: list[Person | None] = []
    for frame in frames:
        try:
            people.append(person_in_frame(frame, height, width, normalized=normalized,
                                          what=name))
        except ValueError as exc:
            raise NodeInputError(node, name, str(exc),
                                 "connect a POSE_KEYPOINT in the OpenPose layout") from exc
    return people * n if len(people) == 1 else people


# --------------------------------------------------------------------------------------------
# Part Cropper
# --------------------------------------------------------------------------------------------

class PartCropper:
    """The paper's l(I, p): five 224x224 crops of the target by its parsing."""

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        return {
            "required": {
                "image": (IMAGE, {"tooltip": "The target photo (a batch crops each frame)."}),
                "parsing": (PARSING, {"tooltip": "The target's parsing (Human Parse)."}),
            },
            "optional": {
                "pose_keypoint": (POSE_KEYPOINT, {"tooltip": "The target's keypoints; the "
                                  "weightless B2F backend needs them."}),
                "min_pixels": ("INT", {"default": 16, "min": 1, "max": 100000, "tooltip":
                               "A part covering fewer pixels is reported missing."}),
            },
        }

    RETURN_TYPES = (PARTS, IMAGE, "STRING")
    RETURN_NAMES = ("parts", "preview", "missing")
    OUTPUT_TOOLTIPS = (
        "The target's face, hair, upper and lower body crops (PARTS).",
        'The crops side by side.',
        'The parts that were not found, in words; connect a Preview Any node to read it.',
    )
    FUNCTION = "crop"
    CATEGORY = CATEGORY
    DESCRIPTION = ("Cut the target photo into the five appearance crops of the paper (face+hair, "
                   "upper clothes, lower clothes, shoes+socks, skin), 224x224 each, pixels "
                   "outside each part blanked. Parts the photo does not show give a blank crop "
                   "and are listed in 'missing'.")

    def crop(self, image: Any, parsing: Any, pose_keypoint: Any = None,
             min_pixels: int = 16) -> tuple[Parts, torch.Tensor, str]:
        node = "Part Cropper"
        image = check_image(image, node, "image")
        parsing = check_parsing(parsing, node, "parsing")
        b, h, w = image.shape[0], image.shape[1], image.shape[2]
        if min(h, w) < MIN_SIDE:
            raise NodeInputError(node, "image", f"the image is {w}x{h}, too small to crop "
                                 f"body parts from", f"use a photo at least {MIN_SIDE}x"
                                 f"{MIN_SIDE} (a few hundred pixels tall is best)")
        if len(parsing) not in (1, b):
            raise NodeInputError(node, "parsing", f"it has {len(parsing)} frames but the image "
                                 f"has {b}", "parse the same image batch")
        people = _pose_people(pose_keypoint, b, node, "pose_keypoint", w, h)
        crops = torch.zeros(b, 5, CROP_SIZE, CROP_SIZE, 3)
        present = torch.zeros(b, 5, dtype=torch.bool)
        targets, previews, missing_txt = [], [], []
        for i in range(b):
            rgb = frame_to_rgb_uint8(image[i])
            labels = parsing.labels[i if len(parsing) > 1 else 0].cpu().numpy()
            labels = _resize_labels(labels, h, w, node, "parsing")
            if not labels.any():
                raise NodeInputError(node, "parsing", f"frame {i} has no person labels "
                                     "(everything is background)", "check that Human Parse "
                                     "found the person in the target photo")
            pc = crop_parts(rgb, labels, min_pixels=min_pixels)
            crops[i] = torch.from_numpy(pc.crops)
            present[i] = torch.from_numpy(pc.present)
            previews.append(preview_grid(pc.crops, pc.present))
            targets.append(TargetPhoto(rgb, labels, people[i]))
            if pc.missing:
                missing_txt.append(f"frame {i}: " + ", ".join(pc.missing))
        missing = "; ".join(missing_txt) or "none"
        if missing_txt:
            logger.info("Part Cropper: missing parts (blank crops): %s", missing)
        parts = Parts(crops=crops, present=present, targets=tuple(targets))
        return parts, rgb_uint8_to_image(previews), missing


# --------------------------------------------------------------------------------------------
# Appearance Encoder
# --------------------------------------------------------------------------------------------

ENCODER_KIND = "appearance_encoder"  # in the pack's model cache, keyed by device


class AppearanceEncoderNode:
    """e_z = [FaceNet(face crop), VGG19(4 crops)]; once per target, reused for every frame."""

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        return {
            "required": {
                "parts": (PARTS,),
                "backend": (["pretrained", "weightless"], {"default": "weightless", "tooltip":
                            "pretrained: facenet_vggface2 + vgg19 from the Hub (needed by a "
                            "trained B2F). weightless: no download; only the warp B2F "
                            "backend can use it."}),
            },
        }

    RETURN_TYPES = (APPEARANCE,)
    RETURN_NAMES = ("appearance",)
    OUTPUT_TOOLTIPS = (
        "The target's appearance, computed once and reused for every frame.",
    )
    FUNCTION = "encode"
    CATEGORY = CATEGORY
    DESCRIPTION = ("Encode the target's appearance once: a VGGFace2 face embedding of the face "
                   "crop and ImageNet VGG19 features of the four other crops (2560 values), "
                   "plus the target image, parsing and keypoints for the weightless B2F.")

    def encode(self, parts: Any, backend: str = "weightless") -> tuple[Appearance]:
        node = "Appearance Encoder"
        if not isinstance(parts, Parts):
            raise NodeInputError(node, "parts", f"expected PARTS, got {type(parts).__name__}",
                                 "connect the PARTS output of Part Cropper")
        if backend == "weightless":
            if not parts.targets:
                raise NodeInputError(node, "parts", "these PARTS carry no target photo",
                                     "connect the PARTS output of Part Cropper")
            return (Appearance(encoder_id=WEIGHTLESS_ID, targets=parts.targets),)
        if backend != "pretrained":
            raise NodeInputError(node, "backend", f"unknown backend {backend!r}",
                                 "choose pretrained or weightless")
        device = get_device()
        try:
            encoder = model_cache().get_or_create(
                ENCODER_KIND, str(device), lambda: load_pretrained_encoder(device),
                device=device, kind_limit=1)
        except WeightError as exc:
            raise NodeInputError(node, "backend", str(exc), "place the files as the message "
                                 "says, or use backend=weightless with the warp B2F") from exc
        with torch.inference_mode():
            e_z = encoder(crops_to_tensor(parts.crops).to(device), parts.present.to(device))
        return (Appearance(encoder_id=ENCODER_ID, embedding=e_z.cpu(), targets=parts.targets),)


# --------------------------------------------------------------------------------------------
# B2F loader
# --------------------------------------------------------------------------------------------

class B2FLoader:
    """B2F weights from the Hub, a local file, or the weightless warp backend."""

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        return {
            "required": {
                "backend": (list(LOADER_BACKENDS), {"default": "warp", "tooltip":
                            "warp: no weights (the target's pixels warped part by part). hub: "
                            "a repo id + filename of B2F weights you trained. local: a file in "
                            "models/dance_reenact."}),
            },
            "optional": {
                "repo_id": ("STRING", {"default": "", "tooltip": "owner/name on the Hub."}),
                "filename": ("STRING", {"default": "b2f.safetensors"}),
                "revision": ("STRING", {"default": "main"}),
                "sha256": ("STRING", {"default": "", "tooltip": "Optional pin of the file."}),
                "local_file": (local_choices(), {"default": NO_FILE, "tooltip":
                               "local: a .safetensors written by `reenact train b2f`"}),
                "feather": ("FLOAT", {"default": 1.0, "min": 0.0, "max": 32.0, "step": 0.5,
                                      "tooltip": "warp: Gaussian feather of the mask, px."}),
            },
        }

    RETURN_TYPES = (B2F_MODEL,)
    RETURN_NAMES = ("b2f_model",)
    OUTPUT_TOOLTIPS = ("The B2F model (or the weightless warp) for the B2F node.",)

    @classmethod
    def VALIDATE_INPUTS(cls, backend: str) -> bool | str:  # noqa: N802 - ComfyUI's name
        return validate_loader_backend(backend)
    FUNCTION = "load"
    CATEGORY = CATEGORY
    DESCRIPTION = ("Load B2F: a trained network (Hub repo or local safetensors) or the "
                   "weightless 'warp' backend that needs no download.")

    def load(self, backend: str = "warp", repo_id: str = "", filename: str = "b2f.safetensors",
             revision: str = "main", sha256: str = "", local_file: str = NO_FILE,
             feather: float = 1.0) -> tuple[B2FModel]:
        node = "B2F Loader"
        backend = normalize_backend(backend)
        if backend == "warp":
            return (B2FModel("warp", source="weightless", feather=float(feather)),)
        net, source = load_stage_network(
            node, backend, arch="B2FGenerator", what="B2F", repo_id=repo_id, filename=filename,
            revision=revision, sha256=sha256, local_file=local_file,
            train_cmd="reenact train b2f")
        return (B2FModel("network", module=net, source=source),)


# --------------------------------------------------------------------------------------------
# B2F
# --------------------------------------------------------------------------------------------

class B2F:
    """PARSING in the driver's pose + APPEARANCE -> the target's frame z and blending mask m."""

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        return {
            "required": {
                "b2f_model": (B2F_MODEL,),
                "parsing": (PARSING, {"tooltip": "The target's parsing in each driver pose "
                            "(P2B's output), at the driver frame's size."}),
                "appearance": (APPEARANCE,),
            },
            "optional": {
                "driver_pose": (POSE_KEYPOINT, {"tooltip": "The driver's keypoints: face "
                                "labels for the network; required by the warp backend."}),
            },
        }

    RETURN_TYPES = (IMAGE, MASK, "STRING")
    RETURN_NAMES = ("image", "mask", "report")
    OUTPUT_TOOLTIPS = (
        'The target rendered in each driver pose (z).',
        'Where the rendered person is (m), 1 inside.',
        'Frames that were held or empty and why, in words; connect a Preview Any node to read it.',
    )
    FUNCTION = "generate"
    CATEGORY = CATEGORY
    DESCRIPTION = ("Render the target in each driver pose: RGB z and blending mask m, at the "
                   "driver frame's size and position (crop around the person, run at 512x320, "
                   "paste back). Frames without a person give an empty mask.")

    def generate(self, b2f_model: Any, parsing: Any, appearance: Any,
                 driver_pose: Any = None) -> tuple[torch.Tensor, torch.Tensor, str]:
        node = "B2F"
        if not isinstance(b2f_model, B2FModel):
            raise NodeInputError(node, "b2f_model", "expected a B2F_MODEL",
                                 "connect the B2F Loader")
        parsing = check_parsing(parsing, node, "parsing")
        if not isinstance(appearance, Appearance):
            raise NodeInputError(node, "appearance", f"expected APPEARANCE, got "
                                 f"{type(appearance).__name__}",
                                 "connect the Appearance Encoder")
        n, h, w = parsing.labels.shape
        if min(h, w) < MIN_SIDE:
            raise NodeInputError(node, "parsing", f"frames are {w}x{h}, too small to render "
                                 "a person", f"use frames at least {MIN_SIDE}x{MIN_SIDE}")
        n_targets = len(appearance)
        if n_targets not in (1, n):
            raise NodeInputError(node, "appearance", f"it holds {n_targets} targets but the "
                                 f"parsing has {n} frames", "encode ONE target photo (or one "
                                 "per frame)")
        drivers = _pose_people(driver_pose, n, node, "driver_pose", w, h)
        if b2f_model.backend == "warp":
            return self._warp(b2f_model, parsing, appearance, drivers, driver_pose)
        if b2f_model.module is None:
            raise NodeInputError(node, "b2f_model", f"backend {b2f_model.backend!r} has no "
                                 "network", "reload the model with the B2F Loader")
        return self._network(b2f_model, parsing, appearance, drivers)

    def _network(self, handle: B2FModel, parsing: Any, appearance: Appearance,
                 drivers: list[Person | None]) -> tuple[torch.Tensor, torch.Tensor, str]:
        node = "B2F"
        net = handle.module
        assert isinstance(net, B2FGenerator)
        if appearance.embedding is None:
            raise NodeInputError(node, "appearance", f"it was made by the "
                                 f"{appearance.encoder_id} encoder (no e_z) but this B2F is a "
                                 "trained network", "set the Appearance Encoder to "
                                 "'pretrained', or load B2F with backend=warp")
        e_z = appearance.embedding
        if e_z.ndim == 1:
            e_z = e_z[None]
        if e_z.shape[1] != net.config["embed_dim"]:
            raise NodeInputError(node, "appearance", f"e_z has {e_z.shape[1]} values but this "
                                 f"B2F expects {net.config['embed_dim']}", "use the encoder "
                                 "the network was trained with")
        device = next(net.parameters()).device
        n, h, w = parsing.labels.shape
        z_out = torch.zeros(n, h, w, 3)
        m_out = torch.zeros(n, h, w)
        empty = 0
        with torch.inference_mode():
            x0_all = net.project(e_z.to(device))  # once per target, not per frame
            batch = batch_size_for(device)  # 1 frame per call on CPU, a batch on CUDA
            with Progress(n, node) as bar:
                for start in range(0, n, batch):
                    idx = range(start, min(n, start + batch))
                    x0 = x0_all[start:idx.stop] if x0_all.shape[0] > 1 else x0_all
                    frames = [(parsing.labels[i].cpu().numpy(),
                               drivers[i].face if drivers[i] is not None else None)
                              for i in idx]
                    for i, res in zip(idx, run_b2f_frames(net, x0, frames, device=device)):
                        if res is None:
                            empty += 1
                        else:
                            z_out[i], m_out[i] = res[0].cpu(), res[1].cpu()
                        bar.update()
        if empty == n:
            raise NodeInputError(node, "parsing", "no frame has any person label",
                                 "check the P2B output (every frame is background)")
        report = f"{n} frames; {empty} without a person (empty mask)"
        return z_out, m_out, report

    def _warp(self, handle: B2FModel, parsing: Any, appearance: Appearance,
              drivers: list[Person | None], driver_pose: Any
              ) -> tuple[torch.Tensor, torch.Tensor, str]:
        node = "B2F"
        targets = appearance.targets
        if not targets:
            raise NodeInputError(node, "appearance", "it carries no target image/parsing",
                                 "connect an Appearance Encoder fed by Part Cropper")
        if driver_pose is None:
            raise NodeInputError(node, "driver_pose", "the warp backend needs the driver's "
                                 "keypoints", "connect the driver POSE_KEYPOINT (OpenPose)")
        if any(t.person is None for t in targets):
            raise NodeInputError(node, "appearance", "the target has no keypoints",
                                 "connect the target's POSE_KEYPOINT to Part Cropper")
        n, h, w = parsing.labels.shape
        z_out = torch.zeros(n, h, w, 3)
        m_out = torch.zeros(n, h, w)
        empty, absent_px, no_pose = 0, 0, 0
        renderers: dict[int, B2FWarp] = {}  # per target, built once for the whole video
        with Progress(n, node) as bar:
            for i in range(n):
                k = i if len(targets) > 1 else 0
                labels = parsing.labels[i].cpu().numpy()
                if not labels.any():
                    empty += 1
                elif drivers[i] is None:
                    no_pose += 1
                else:
                    if k not in renderers:
                        try:
                            renderers[k] = B2FWarp(targets[k], drivers, (h, w),
                                                   feather=handle.feather, device=get_device())
                        except ValueError as exc:
                            raise NodeInputError(node, "appearance", f"the target: {exc}",
                                                 "give Part Cropper the target's "
                                                 "POSE_KEYPOINT with its body found") from exc
                    res = renderers[k](i, labels, drivers[i])
                    z_out[i] = torch.from_numpy(res.image).float() / 255.0
                    m_out[i] = torch.from_numpy(res.mask)
                    absent_px += res.absent_pixels
                bar.update()
        if empty == n:
            raise NodeInputError(node, "parsing", "no frame has any person label",
                                 "check the P2B output (every frame is background)")
        report = (f"{n} frames; {empty} without a person; {no_pose} without driver keypoints "
                  f"(empty mask); {absent_px} pixels of parts the target photo does not show "
                  "left out of the mask")
        legs = [n for k in sorted(renderers) for n in renderers[k].rig.legs_left_out]
        if legs:
            report += f"; {describe_legs_left_out(legs)}, so the figure ends there"
        return z_out, m_out, report


NODE_CLASS_MAPPINGS = {
    "DanceReenactPartCropper": PartCropper,
    "DanceReenactAppearanceEncoder": AppearanceEncoderNode,
    "DanceReenactB2FLoader": B2FLoader,
    "DanceReenactB2F": B2F,
}
NODE_DISPLAY_NAME_MAPPINGS = {
    "DanceReenactPartCropper": "Part Cropper · Target's face, hair, clothes (Dance Reenact)",
    "DanceReenactAppearanceEncoder": "Appearance Encoder · Target's look, once (Dance Reenact)",
    "DanceReenactB2FLoader": "B2F Loader · Renderer model (Dance Reenact)",
    "DanceReenactB2F": "B2F · Render the target in that pose (Dance Reenact)",
}
