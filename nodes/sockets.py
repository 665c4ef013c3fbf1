"""Socket payloads (SPEC §2) and conversions between ComfyUI's IMAGE/MASK and numpy frames.

Custom sockets carry small frozen dataclasses; large per-pixel data stays compact (PARSING is
uint8 labels, never one-hot). IMAGE is float ``[B, H, W, C]`` in 0..1 and MASK float
``[B, H, W]``, as in ComfyUI.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch

from ..models.core.schema import DEFAULT_SCHEMA, PART_CROP_GROUPS, LabelSchema
from ..models.stages import FaceOptions, TargetPhoto
from .runtime import NodeInputError

# Socket type names. POSE_KEYPOINT is shared with comfyui_controlnet_aux on purpose.
IMAGE = "IMAGE"
MASK = "MASK"
POSE_KEYPOINT = "POSE_KEYPOINT"
PARSING = "PARSING"
DENSEPOSE = "DENSEPOSE"
PARTS = "PARTS"
APPEARANCE = "APPEARANCE"
P2B_MODEL = "P2B_MODEL"
B2F_MODEL = "B2F_MODEL"
FACEREFINE_MODEL = "FACEREFINE_MODEL"


@dataclass(frozen=True)
class Parsing:
    """labels: (B, H, W) uint8 in [0, schema.num_labels); a batch is a video."""

    labels: torch.Tensor
    schema: LabelSchema = DEFAULT_SCHEMA

    def __post_init__(self) -> None:
        if self.labels.dtype != torch.uint8 or self.labels.ndim != 3:
            raise ValueError(f"Parsing.labels must be uint8 (B, H, W), got "
                             f"{self.labels.dtype} {tuple(self.labels.shape)}")
        if self.labels.numel() and int(self.labels.max()) >= self.schema.num_labels:
            raise ValueError(f"Parsing has label {int(self.labels.max())}, outside the "
                             f"{self.schema.num_labels}-label schema")

    def __len__(self) -> int:
        return int(self.labels.shape[0])


@dataclass(frozen=True)
class DensePose:
    """Per pixel: part index I (B, H, W) uint8 in 0..24 (0 = background), U and V float in 0..1."""

    index: torch.Tensor
    u: torch.Tensor
    v: torch.Tensor

    def __post_init__(self) -> None:
        if self.index.dtype != torch.uint8 or self.index.ndim != 3:
            raise ValueError(f"DensePose.index must be uint8 (B, H, W), got "
                             f"{self.index.dtype} {tuple(self.index.shape)}")
        if self.u.shape != self.index.shape or self.v.shape != self.index.shape:
            raise ValueError("DensePose U and V must have the shape of I")

    def __len__(self) -> int:
        return int(self.index.shape[0])

    def iuv(self, i: int) -> torch.Tensor:
        """Frame i as float (3, H, W): I/24, U, V (the paper's 3-channel DensePose input)."""
        return torch.stack([self.index[i].float() / 24.0, self.u[i].float(), self.v[i].float()])


@dataclass(frozen=True)
class Parts:
    """crops: (B, 5, 224, 224, 3) float 0..1; present: (B, 5) bool; names of the 5 groups;
    ``targets``: what the crops were cut from, one :class:`TargetPhoto` per frame (the
    weightless B2F renders these)."""

    crops: torch.Tensor
    present: torch.Tensor
    names: tuple[str, ...] = tuple(name for name, _ in PART_CROP_GROUPS)
    label_groups: tuple[tuple[int, ...], ...] = tuple(ids for _, ids in PART_CROP_GROUPS)
    targets: tuple[TargetPhoto, ...] = field(default=(), compare=False)


@dataclass(frozen=True)
class Appearance:
    """The target's appearance, explicitly one or both of:

    - ``embedding``: the appearance code ``e_z`` (D,) or (B, D) for a trained B2F, made by
      the ``encoder_id`` encoder; None from the weightless encoder;
    - ``targets``: the target photos themselves (:class:`TargetPhoto`), for the warp B2F.
    """

    encoder_id: str
    embedding: torch.Tensor | None = None
    targets: tuple[TargetPhoto, ...] = field(default=(), compare=False)

    def __post_init__(self) -> None:
        if self.embedding is None and not self.targets:
            raise ValueError("an Appearance needs an embedding or target photos")

    def __len__(self) -> int:
        """How many targets it holds (one per frame of a target batch)."""
        if self.embedding is not None:
            return 1 if self.embedding.ndim == 1 else int(self.embedding.shape[0])
        return len(self.targets)


@dataclass(frozen=True)
class P2BModel:
    """A loaded P2B: ``backend`` ``warp`` (weightless, ``module`` None) or ``network``;
    ``source``: where the weights came from."""

    backend: str
    module: torch.nn.Module | None = None
    source: str = ""
    stage: ClassVar[str] = "p2b"


@dataclass(frozen=True)
class B2FModel:
    """A loaded B2F: ``warp`` (weightless; ``feather``: its mask feather in px) or
    ``network``."""

    backend: str
    module: torch.nn.Module | None = None
    source: str = ""
    feather: float = 1.0
    stage: ClassVar[str] = "b2f"


@dataclass(frozen=True)
class FaceRefineModel:
    """A loaded FaceRefine: ``weightless`` (landmark-aligned paste) or ``network``; both find
    and paste faces as ``options`` say."""

    backend: str
    module: torch.nn.Module | None = None
    source: str = ""
    options: FaceOptions = FaceOptions()
    stage: ClassVar[str] = "face_refine"


ModelHandle = P2BModel | B2FModel | FaceRefineModel  # one handle type per stage


# --------------------------------------------------------------------------------------------
# IMAGE / MASK <-> numpy
# --------------------------------------------------------------------------------------------

def check_image(image: Any, node: str, name: str) -> torch.Tensor:
    """Validate an IMAGE socket value and return it as float (B, H, W, C) with C in 1..4."""
    if not isinstance(image, torch.Tensor):
        raise NodeInputError(node, name, f"expected an IMAGE tensor, got {type(image).__name__}",
                             "connect an IMAGE output (e.g. Load Image)")
    if image.ndim == 3:
        image = image.unsqueeze(0)
    if image.ndim != 4 or image.shape[-1] not in (1, 2, 3, 4):
        raise NodeInputError(node, name, f"expected [batch, height, width, channels], got "
                             f"shape {tuple(image.shape)}", "connect an IMAGE output")
    if image.shape[0] == 0 or image.shape[1] == 0 or image.shape[2] == 0:
        raise NodeInputError(node, name, f"the image is empty (shape {tuple(image.shape)})",
                             "connect a non-empty image or video")
    if image.dtype == torch.bool:
        raise NodeInputError(node, name, "the image is a bool tensor (a mask?); IMAGE values "
                             "are float 0..1", "connect an IMAGE, or convert the mask with a "
                             "Mask To Image node")
    if not image.is_floating_point():
        lo, hi = (int(v) for v in torch.aminmax(image))
        raise NodeInputError(node, name, f"the image is {str(image.dtype).removeprefix('torch.')}"
                             f" with values {lo}..{hi}; IMAGE values are float 0..1",
                             "convert it to float and divide by 255 (ComfyUI's Load Image "
                             "does this)")
    # aminmax propagates NaN and shows inf: no video-sized bool tensor from isfinite()
    lo, hi = (float(v) for v in torch.aminmax(image.detach()))
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise NodeInputError(node, name, "the image contains NaN or infinite values",
                             "fix the node that produced it")
    check_unit_range(image, node, name, "image", lo_hi=(lo, hi))
    return image


RANGE_EPS = 1e-3  # float rounding of a resize or colour conversion, not another convention


def check_unit_range(values: torch.Tensor, node: str, name: str, what: str, *,
                     lo_hi: tuple[float, float] | None = None) -> None:
    """Raise a NodeInputError when float ``values`` leave [0, 1] by more than RANGE_EPS,
    naming the range seen and the likely convention (0..255 or -1..1). ``lo_hi``: the
    values' (min, max) when the caller already has them."""
    if values.numel() == 0:
        return
    # in the values' own dtype: a float() copy of a half-precision video is a full video
    lo, hi = lo_hi if lo_hi is not None else \
        (float(v) for v in torch.aminmax(values.detach()))
    if lo >= -RANGE_EPS and hi <= 1 + RANGE_EPS:
        return
    if lo >= -RANGE_EPS and hi <= 255 + RANGE_EPS:
        fix = "the values look like 0..255: divide by 255"
    elif lo >= -1 - RANGE_EPS and hi <= 1 + RANGE_EPS:
        fix = "the values look like -1..1: map them with (x + 1) / 2"
    else:
        fix = "rescale the values to 0..1 in the node that produced them"
    raise NodeInputError(node, name, f"the {what} values range from {lo:.4g} to {hi:.4g}, "
                         f"outside 0..1", fix)


def frame_to_rgb_uint8(frame: torch.Tensor) -> np.ndarray:
    """One IMAGE frame (H, W, C) -> uint8 RGB (H, W, 3); gray is repeated, alpha composited
    over white, float values clamped to 0..1."""
    f = frame.detach().float().cpu().clamp(0, 1)
    c = f.shape[-1]
    if c == 1:
        f = f.expand(-1, -1, 3)
    elif c == 2:  # gray + alpha
        gray, alpha = f[..., :1], f[..., 1:2]
        f = (gray * alpha + (1 - alpha)).expand(-1, -1, 3)
    elif c == 4:
        rgb, alpha = f[..., :3], f[..., 3:4]
        f = rgb * alpha + (1 - alpha)
    return (f * 255.0 + 0.5).to(torch.uint8).numpy()


def iter_rgb_frames(image: torch.Tensor) -> Iterator[np.ndarray]:
    """Stream an IMAGE batch as uint8 RGB frames, one at a time (no full-video copy)."""
    for i in range(image.shape[0]):
        yield frame_to_rgb_uint8(image[i])


def rgb_uint8_to_image(frames: np.ndarray | list[np.ndarray]) -> torch.Tensor:
    """uint8 RGB (B, H, W, 3) or a list of (H, W, 3) -> IMAGE float (B, H, W, 3).

    A list is written frame by frame into the output (no stacked uint8 copy of the video)."""
    if isinstance(frames, list):
        return rgb_frames_to_image(len(frames), frames.__getitem__)
    arr = frames[None] if frames.ndim == 3 else frames
    return torch.from_numpy(np.ascontiguousarray(arr)).float().div_(255.0)


def rgb_frames_to_image(n: int, frame_at: Callable[[int], np.ndarray]) -> torch.Tensor:
    """IMAGE float (n, H, W, 3) from ``frame_at(i)`` -> uint8 RGB (H, W, 3), each frame made
    and converted straight into the output: no list or stack of the whole video (previews
    of a long video would otherwise cost a quarter of the IMAGE again, twice)."""
    if n < 1:
        raise ValueError("no frames to convert")
    first = frame_at(0)
    out = torch.empty((n, *first.shape), dtype=torch.float32)
    for i in range(n):
        out[i] = torch.from_numpy(np.ascontiguousarray(first if i == 0 else frame_at(i)))
    return out.div_(255.0)


def check_mask(mask: Any, node: str, name: str) -> torch.Tensor:
    """Validate a MASK socket value -> float (B, H, W) in 0..1."""
    if not isinstance(mask, torch.Tensor):
        raise NodeInputError(node, name, f"expected a MASK tensor, got {type(mask).__name__}",
                             "connect a MASK output")
    if mask.ndim == 2:
        mask = mask.unsqueeze(0)
    if mask.ndim == 4 and mask.shape[-1] == 1:
        mask = mask[..., 0]
    if mask.ndim != 3 or 0 in mask.shape:
        raise NodeInputError(node, name, f"expected [batch, height, width], got "
                             f"{tuple(mask.shape)}", "connect a MASK output")
    mask = mask.float()
    lo, hi = (float(v) for v in torch.aminmax(mask.detach()))  # NaN propagates, inf shows
    if not (math.isfinite(lo) and math.isfinite(hi)):
        bad = int((~torch.isfinite(mask)).flatten(1).any(1).nonzero()[0])
        raise NodeInputError(node, name, f"the mask contains NaN or infinite values (first in "
                             f"frame {bad})", "fix the node that produced it")
    # a mask already in 0..1 is returned as is (the caller must not write into it)
    return mask if 0.0 <= lo and hi <= 1.0 else mask.clamp(0, 1)


MAX_CANVAS = 1 << 16


def check_pose_frames(value: Any, node: str, name: str) -> list[dict]:
    """A POSE_KEYPOINT value as a non-empty list of frames (a single dict is one frame),
    each a dict whose ``canvas_width``/``canvas_height`` are positive whole numbers.

    Raises:
        NodeInputError naming the frame and the bad value (None, text, NaN, inf, <= 0).
    """
    if isinstance(value, Mapping):
        value = [value]
    if not isinstance(value, (list, tuple)) or len(value) == 0:
        raise NodeInputError(node, name, "expected a non-empty POSE_KEYPOINT list of frames",
                             "connect the POSE_KEYPOINT output of OpenPose, DWPose or a "
                             "pose-loading node")
    fix = ("connect a POSE_KEYPOINT in the OpenPose layout (each frame a dict with 'people', "
           "'canvas_width' and 'canvas_height' in pixels)")
    for i, frame in enumerate(value):
        if not isinstance(frame, Mapping):
            raise NodeInputError(node, name, f"frame {i} is {type(frame).__name__}, not a "
                                 "pose dict", fix)
        for key in ("canvas_width", "canvas_height"):
            v = frame.get(key)
            ok = isinstance(v, numbers.Real) and not isinstance(v, bool) \
                and math.isfinite(v) and 0 < v <= MAX_CANVAS and float(v) == int(v)
            if not ok:
                raise NodeInputError(node, name, f"frame {i} has {key}={v!r}; it must be a "
                                     f"whole number of pixels in 1..{MAX_CANVAS}", fix)
    return list(value)


def check_parsing(parsing: Any, node: str, name: str) -> Parsing:
    if not isinstance(parsing, Parsing):
        raise NodeInputError(node, name, f"expected PARSING, got {type(parsing).__name__}",
                             "connect the PARSING output of Human Parse or P2B")
    return parsing


def check_same_length(node: str, **batches: int) -> int:
    """All named batch lengths must agree (1 broadcasts); returns the common length."""
    lengths = {k: v for k, v in batches.items() if v != 1}
    if len(set(lengths.values())) > 1:
        listing = ", ".join(f"{k}={v}" for k, v in batches.items())
        raise NodeInputError(node, "/".join(batches), f"batches have different lengths "
                             f"({listing})", "trim or loop the inputs to the same frame count "
                             "(a length of 1 is used for every frame)")
    return max(batches.values()) if batches else 0
