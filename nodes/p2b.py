"""P2B nodes: a loader (Hub / local file / weightless warp) and P2B itself.

P2B turns the target's parsing p* into one parsing per driver frame, in the driver's pose, at
the driver frame's size and position (paper §3.1; SPEC §3-§4).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import torch

from ..models.core.schema import NUM_LABELS, Person, sequence_is_normalized
from ..models.networks.p2b import DriverFrame, predict_parsing
from ..models.stages import P2BWarp, person_in_frame
from .runtime import (
    LOADER_BACKENDS,
    NO_FILE,
    NodeInputError,
    Progress,
    load_stage_network,
    local_choices,
    normalize_backend,
    validate_loader_backend,
)
from .sockets import (
    DENSEPOSE,
    IMAGE,
    P2B_MODEL,
    PARSING,
    POSE_KEYPOINT,
    DensePose,
    P2BModel,
    Parsing,
    check_image,
    check_parsing,
    check_pose_frames,
    check_same_length,
    frame_to_rgb_uint8,
)

logger = logging.getLogger(__name__)

CATEGORY = "dance_reenact/p2b"
BACKENDS = LOADER_BACKENDS
_NO_FILE = NO_FILE


class P2BLoader:
    """Load P2B: our safetensors from the Hub or the models folder, or the weightless warp."""

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        return {
            "required": {
                "backend": (list(BACKENDS), {"default": "warp", "tooltip":
                            "warp: no weights, the target's parsing on a skinned mesh "
                            "posed like the driver (keeps the body shape). hub: a P2B "
                            "checkpoint from a Hugging Face repo. local: a file in "
                            "models/dance_reenact."}),
            },
            "optional": {
                "repo_id": ("STRING", {"default": "", "tooltip": "hub: owner/name"}),
                "filename": ("STRING", {"default": "p2b_generator.safetensors",
                                        "tooltip": "hub: file inside the repo"}),
                "revision": ("STRING", {"default": "main",
                                        "tooltip": "hub: commit hash (best), branch or tag"}),
                "sha256": ("STRING", {"default": "", "tooltip":
                                      "hub: expected sha256 (empty: trust the Hub's checksum)"}),
                "local_file": (local_choices(), {"default": _NO_FILE, "tooltip":
                               "local: a .safetensors written by `reenact train p2b`"}),
            },
        }

    RETURN_TYPES = (P2B_MODEL,)
    RETURN_NAMES = ("p2b_model",)
    OUTPUT_TOOLTIPS = ("The P2B model (or the weightless warp) for the P2B node.",)

    @classmethod
    def VALIDATE_INPUTS(cls, backend: str) -> bool | str:  # noqa: N802 - ComfyUI's name
        return validate_loader_backend(backend)
    FUNCTION = "load"
    CATEGORY = CATEGORY
    DESCRIPTION = ("Load the pose-to-body network (P2B) from the Hub or a local file, or pick "
                   "the weightless warp backend.")

    def load(self, backend: str = "warp", repo_id: str = "",
             filename: str = "p2b_generator.safetensors", revision: str = "main",
             sha256: str = "", local_file: str = _NO_FILE) -> tuple[P2BModel]:
        node = "P2B Loader"
        backend = normalize_backend(backend)
        if backend == "warp":
            return (P2BModel("warp", source="weightless warp"),)
        module, source = load_stage_network(
            node, backend, arch="P2BGenerator", what="P2B", repo_id=repo_id, filename=filename,
            revision=revision, sha256=sha256, local_file=local_file,
            train_cmd="reenact train p2b")
        return (P2BModel("network", module, source),)


def _pose_frames(value: Any, node: str, name: str) -> list[dict]:
    return check_pose_frames(value, node, name)


def _person_in(frame: Any, height: int, width: int, node: str, name: str,
               normalized: bool | None = None) -> Person | None:
    """The largest person of a POSE_KEYPOINT frame, scaled to (height, width) pixels
    (``normalized``: the sequence's convention, decided once for all its frames)."""
    try:
        return person_in_frame(frame, height, width, normalized=normalized, what=name)
    except ValueError as exc:
        raise NodeInputError(node, name, str(exc), "connect a POSE_KEYPOINT in the OpenPose "
                             "layout (body 18, face 70, hands 21)") from exc


def _target_labels(target_parsing: Any) -> np.ndarray:
    """The ONE target photo's parsing as uint8 (h, w), checked: one frame, the 22-label
    schema, someone in it."""
    node = "P2B"
    parsing = check_parsing(target_parsing, node, "target_parsing")
    if len(parsing) != 1:
        raise NodeInputError(node, "target_parsing", f"got {len(parsing)} parsings; P2B "
                             "takes the ONE target photo's parsing",
                             "parse the single target photo (or pick one frame)")
    labels = parsing.labels[0].cpu().numpy()
    top = int(labels.max()) if labels.size else 0
    if parsing.schema.num_labels != NUM_LABELS or top >= NUM_LABELS:
        raise NodeInputError(node, "target_parsing", f"labels up to {top} in a "
                             f"{parsing.schema.num_labels}-label schema; P2B reads the "
                             f"{NUM_LABELS}-label schema (0..{NUM_LABELS - 1})",
                             "connect the PARSING of Human Parse (or map your labels)")
    if not (labels > 0).any():
        raise NodeInputError(node, "target_parsing", "the parsing has no person (all "
                             "background)", "parse a photo that shows the target")
    return labels


def _driver_inputs(driver_pose: Any, driver_stick: Any, driver_densepose: Any
                   ) -> tuple[list | None, torch.Tensor | None, DensePose | None, int, int, int]:
    """The driver inputs checked against each other: (poses, stick, dense, frames, height,
    width)."""
    node = "P2B"
    poses = _pose_frames(driver_pose, node, "driver_pose") if driver_pose is not None \
        else None
    stick = check_image(driver_stick, node, "driver_stick") if driver_stick is not None \
        else None
    dense = driver_densepose
    if dense is not None and not isinstance(dense, DensePose):
        raise NodeInputError(node, "driver_densepose", f"expected DENSEPOSE, got "
                             f"{type(dense).__name__}", "connect the DensePose node")
    if poses is None and stick is None:
        raise NodeInputError(node, "driver_pose/driver_stick", "no driver pose given",
                             "connect the driver's POSE_KEYPOINT or stick-figure IMAGE")
    lengths = {}
    if poses is not None:
        lengths["driver_pose"] = len(poses)
    if stick is not None:
        lengths["driver_stick"] = int(stick.shape[0])
    if dense is not None:
        lengths["driver_densepose"] = len(dense)
    if len(set(lengths.values())) > 1:
        listing = ", ".join(f"{k}={v}" for k, v in lengths.items())
        raise NodeInputError(node, "/".join(lengths), f"driver batches have different "
                             f"lengths ({listing})", "give every driver input one entry "
                             "per frame of the same video (trim or re-run the stage)")
    n = check_same_length(node, **lengths)
    if stick is not None:
        height, width = int(stick.shape[1]), int(stick.shape[2])
    elif dense is not None:
        height, width = int(dense.index.shape[1]), int(dense.index.shape[2])
    else:
        height = int(poses[0].get("canvas_height") or 0)  # type: ignore[index]
        width = int(poses[0].get("canvas_width") or 0)  # type: ignore[index]
    if dense is not None and tuple(dense.index.shape[1:]) != (height, width):
        raise NodeInputError(node, "driver_densepose", f"DensePose is "
                             f"{dense.index.shape[2]}x{dense.index.shape[1]} but the driver "
                             f"frames are {width}x{height}", "compute DensePose on the same "
                             "driver frames")

    return poses, stick, dense, n, height, width


class P2B:
    """Target parsing + driver poses (+ DensePose) -> the target's parsing in each driver pose."""

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        return {
            "required": {
                "p2b_model": (P2B_MODEL,),
                "target_parsing": (PARSING, {"tooltip": "The target photo's parsing (1 image)."}),
            },
            "optional": {
                "target_pose": (POSE_KEYPOINT, {"tooltip":
                                "The target photo's keypoints (needed by the warp backend)."}),
                "driver_pose": (POSE_KEYPOINT, {"tooltip":
                                "Driver keypoints per frame (warp needs them; the network "
                                "draws its stick figure from them at working resolution)."}),
                "driver_stick": (IMAGE, {"tooltip":
                                 "Driver stick figures per frame (instead of driver_pose)."}),
                "driver_densepose": (DENSEPOSE, {"tooltip":
                                     "Driver DensePose per frame (needed by the network)."}),
                "missing_person": (["hold", "empty", "error"], {"default": "hold", "tooltip":
                                   "A driver frame with nobody in it: repeat the previous "
                                   "frame, output an empty parsing, or stop with an error. "
                                   "A driver with nobody in any frame always stops."}),
                "batch_size": ("INT", {"default": 4, "min": 1, "max": 64,
                                       "tooltip": "Frames per network call."}),
            },
        }

    RETURN_TYPES = (PARSING, "STRING")
    RETURN_NAMES = ("parsing", "report")
    OUTPUT_TOOLTIPS = (
        "The target's body layout (parsing) in the driver's pose, per driver frame.",
        "What was done: backend, driver frames without a person and whether they hold the "
        "previous frame or stay empty; connect a Preview Any node to read it.",
    )
    FUNCTION = "run"
    CATEGORY = CATEGORY
    DESCRIPTION = ("Pose-to-body: the target's parsing moved into every driver pose, at the "
                   "driver frame's size and position (learned P2B or weightless warp).")

    def run(self, p2b_model: Any, target_parsing: Any, target_pose: Any = None,
            driver_pose: Any = None, driver_stick: Any = None, driver_densepose: Any = None,
            missing_person: str = "hold", batch_size: int = 4) -> tuple[Parsing, str]:
        node = "P2B"
        if not isinstance(p2b_model, P2BModel):
            raise NodeInputError(node, "p2b_model", f"expected a P2B model, got "
                                 f"{type(p2b_model).__name__}", "connect the P2B Loader")
        labels = _target_labels(target_parsing)
        if missing_person not in ("error", "empty", "hold"):
            raise NodeInputError(node, "missing_person", f"unknown choice {missing_person!r}",
                                 "choose error, empty or hold")

        poses, stick, dense, n, height, width = _driver_inputs(driver_pose, driver_stick,
                                                               driver_densepose)
        driver_normalized = sequence_is_normalized(poses) if poses is not None else None

        def driver_person(i: int) -> Person | None:
            if poses is None:
                return None
            return _person_in(poses[i], height, width, node, "driver_pose", driver_normalized)

        if poses is not None and missing_person == "hold" \
                and all(driver_person(i) is None for i in range(n)):
            raise NodeInputError(node, "driver_pose", f"no person in any of the {n} driver "
                                 "frames: there is nothing to hold", "connect the poses of a "
                                 "driver video in which the pose detector finds the dancer")
        out = torch.zeros((n, height, width), dtype=torch.uint8)
        self._missed: list[int] = []
        if p2b_model.backend == "warp":
            if poses is None:
                raise NodeInputError(node, "driver_pose", "the warp backend needs the driver's "
                                     "keypoints (a stick figure image is not enough)",
                                     "connect the driver's POSE_KEYPOINT")
            if target_pose is None:
                raise NodeInputError(node, "target_pose", "the warp backend needs the target's "
                                     "keypoints", "connect the target photo's POSE_KEYPOINT")
            tframes = _pose_frames(target_pose, node, "target_pose")
            target = _person_in(tframes[0], labels.shape[0], labels.shape[1], node,
                                "target_pose")
            if target is None:
                raise NodeInputError(node, "target_pose", "no person in the target's keypoints",
                                     "run OpenPose on the target photo")
            self._run_warp(labels, target, driver_person, n, (height, width), out,
                           missing_person)
        elif p2b_model.module is not None:
            if dense is None:
                raise NodeInputError(node, "driver_densepose", "the P2B network needs the "
                                     "driver's DensePose", "connect the DensePose node's output "
                                     "for the driver video")
            self._run_network(p2b_model.module, labels, driver_person, stick, dense, n,
                              (height, width), out, missing_person, batch_size)
        else:
            raise NodeInputError(node, "p2b_model", f"backend {p2b_model.backend!r} has no "
                                 "network", "reload the model with the P2B Loader")
        kind = "weightless warp" if p2b_model.backend == "warp" else \
            f"network ({p2b_model.source or p2b_model.backend})"
        report = f"{kind}: {n} driver frame(s) at {width}x{height}"
        missed = self._missed
        if missed:
            shown = ", ".join(map(str, missed[:12])) + (", ..." if len(missed) > 12 else "")
            how = "hold the previous frame" if missing_person == "hold" else "stay empty"
            report += f"; no driver person in {len(missed)} frame(s) ({shown}): they {how}"
        else:
            report += "; a driver person in every frame"
        return Parsing(out), report

    def _missing(self, i: int, policy: str, out: torch.Tensor) -> None:
        self._missed.append(i)
        if policy == "error":
            raise NodeInputError("P2B", "driver_pose", f"driver frame {i} shows no person",
                                 "fix the pose/DensePose of that frame, or set missing_person "
                                 "to 'empty' or 'hold'")
        if policy == "hold" and i > 0:
            out[i] = out[i - 1]

    def _run_warp(self, labels: np.ndarray, target: Person, driver_person: Any, n: int,
                  hw: tuple[int, int], out: torch.Tensor, policy: str) -> None:
        people = [driver_person(i) for i in range(n)]
        try:
            warp = P2BWarp(labels, target, people, hw)  # once per target, reused every frame
        except ValueError as exc:
            raise NodeInputError("P2B", "target_pose", str(exc), "run OpenPose on the target "
                                 "photo (its body keypoints are needed)") from exc
        with Progress(n, "P2B (warp)") as bar:
            for i, person in enumerate(people):
                if person is None:
                    self._missing(i, policy, out)
                else:
                    out[i] = torch.from_numpy(warp(i, person))
                bar.update()

    def _run_network(self, model: torch.nn.Module, labels: np.ndarray, driver_person: Any,
                     stick: torch.Tensor | None, dense: DensePose, n: int, hw: tuple[int, int],
                     out: torch.Tensor, policy: str, batch_size: int) -> None:
        device = next(model.parameters()).device
        pending: list[tuple[int, DriverFrame]] = []

        def flush() -> None:
            if not pending:
                return
            preds = predict_parsing(model, labels, [f for _, f in pending],  # type: ignore[arg-type]
                                    device=device, batch_size=batch_size)
            for (i, _), pred in zip(pending, preds):
                out[i] = torch.from_numpy(pred)
            pending.clear()

        with Progress(n, "P2B") as bar:
            for i in range(n):
                person = driver_person(i)
                st = frame_to_rgb_uint8(stick[i]) if stick is not None else None
                index = dense.index[i].cpu().numpy()
                frame = DriverFrame(hw[0], hw[1], person, st, index,
                                    dense.u[i].float().cpu().numpy(),
                                    dense.v[i].float().cpu().numpy())
                shown = (person is not None) or bool((index > 0).any()) or \
                    (st is not None and bool(st.any()))
                if not shown:
                    flush()
                    self._missing(i, policy, out)
                else:
                    pending.append((i, frame))
                    if len(pending) >= batch_size:
                        flush()
                bar.update()
            flush()


NODE_CLASS_MAPPINGS = {
    "DanceReenactP2BLoader": P2BLoader,
    "DanceReenactP2B": P2B,
}
NODE_DISPLAY_NAME_MAPPINGS = {
    "DanceReenactP2BLoader": "P2B Loader · Body-layout model (Dance Reenact)",
    "DanceReenactP2B": "P2B · Body layout in the driver's pose (Dance Reenact)",
}
