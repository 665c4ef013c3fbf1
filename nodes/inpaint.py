"""Inpaint node: remove the person from a still or a video (PatchMatch, OpenCV, temporal median,
LaMa)."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import torch

from ..models.compositing.inpaint import (
    BACKENDS,
    DEFAULT_BACKEND,
    MAX_FILL_SIDE,
    dilate_mask,
    fill_reduced,
    inpaint_still,
    load_lama,
    median_plate,
)
from ..models.io import weights
from .runtime import NodeInputError, Progress, check_interrupt, get_device
from .sockets import (
    IMAGE,
    MASK,
    PARSING,
    check_image,
    check_mask,
    check_parsing,
    check_same_length,
    frame_to_rgb_uint8,
    rgb_uint8_to_image,
)

logger = logging.getLogger(__name__)
CATEGORY = "dance_reenact/background"
NODE = "Inpaint"


class _Masks:
    """Per-frame person masks from a MASK and/or a PARSING (union), grown by ``dilate``,
    computed on demand (whole frames or blocks of rows) so a video never needs them all."""

    def __init__(self, mask: torch.Tensor | None, labels: torch.Tensor | None,
                 dilate: int) -> None:
        self.mask, self.labels, self.dilate = mask, labels, int(dilate)

    def _raw(self, t: int, a0: int, a1: int) -> np.ndarray:
        m = None
        if self.mask is not None:
            m = (self.mask[t if len(self.mask) > 1 else 0, a0:a1] > 0.5).cpu().numpy()
        if self.labels is not None:
            p = (self.labels[t if len(self.labels) > 1 else 0, a0:a1] > 0).cpu().numpy()
            m = p if m is None else (m | p)
        assert m is not None
        return m

    def rows(self, t: int, r0: int, r1: int) -> np.ndarray:
        """bool (r1 - r0, W): rows r0..r1 of frame t's grown mask."""
        h = int((self.mask if self.mask is not None else self.labels).shape[1])  # type: ignore
        d = self.dilate
        a0, a1 = max(0, r0 - d), min(h, r1 + d)
        m = dilate_mask(self._raw(t, a0, a1), d)
        return m[r0 - a0: r1 - a0]

    def frame(self, t: int, h: int) -> np.ndarray:
        return self.rows(t, 0, h)


class Inpaint:
    """Fill the person (MASK or PARSING) with background: PatchMatch or OpenCV per frame, a
    temporal median clean plate for a video, or big-LaMa."""

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        return {
            "required": {
                "image": (IMAGE, {"tooltip": "A still or a video (batch)."}),
                "backend": (list(BACKENDS), {"default": DEFAULT_BACKEND, "tooltip":
                            "patchmatch: per frame, copies texture from around the hole "
                            "(sharp; ~0.4 s for a 350x350 frame, a few s at 1080p). "
                            "opencv_telea/opencv_ns: per frame, fast but smooth. video_median: "
                            "clean plate from the frames where each pixel is uncovered (needs "
                            ">= 2 frames). lama: big-LaMa through the weight registry."}),
                "dilate": ("INT", {"default": 8, "min": 0, "max": 256, "tooltip":
                           "Grow the person mask by this many pixels (covers halos/shadows)."}),
                "radius": ("INT", {"default": 5, "min": 1, "max": 64, "tooltip":
                           "OpenCV inpainting radius (also fills never-uncovered pixels of "
                           "the median plate)."}),
                "output": (["video", "plate"], {"default": "video", "tooltip":
                           "video_median only: 'video' gives every frame with the person "
                           "replaced by the plate; 'plate' gives the single clean plate."}),
            },
            "optional": {
                "mask": (MASK, {"tooltip": "What to remove (1 = person). One mask or one per "
                         "frame."}),
                "parsing": (PARSING, {"tooltip": "Alternatively: a parsing; every non-"
                            "background label is removed. Union with mask if both."}),
            },
        }

    RETURN_TYPES = (IMAGE, "STRING")
    RETURN_NAMES = ("image", "report")
    OUTPUT_TOOLTIPS = (
        "The image or video with the masked person filled in (the background plate).",
        "What was done: backend, frames whose mask was empty (returned unchanged), how much "
        "of a median plate was never uncovered, a reduced fill for large frames; connect a "
        "Preview Any node to read it.",
    )
    FUNCTION = "inpaint"
    CATEGORY = CATEGORY
    DESCRIPTION = ("Remove the person from a photo or a video: PatchMatch or OpenCV "
                   "inpainting, a temporal median clean plate, or big-LaMa. Only masked pixels "
                   "change.")

    def inpaint(self, image: Any, backend: str = DEFAULT_BACKEND, dilate: int = 8,
                radius: int = 5, output: str = "video", mask: Any = None,
                parsing: Any = None) -> tuple[torch.Tensor, str]:
        image = check_image(image, NODE, "image")
        b, h, w = (int(s) for s in image.shape[:3])
        if backend not in BACKENDS:
            raise NodeInputError(NODE, "backend", f"unknown backend {backend!r}",
                                 f"pick one of {', '.join(BACKENDS)}")
        if mask is None and parsing is None:
            raise NodeInputError(NODE, "mask/parsing", "nothing says what to remove",
                                 "connect a MASK (1 = person) or a PARSING of the image")
        m_t = lab_t = None
        if mask is not None:
            m_t = check_mask(mask, NODE, "mask")
            if tuple(m_t.shape[1:]) != (h, w):
                raise NodeInputError(NODE, "mask", f"the mask is {tuple(m_t.shape[1:])} (HxW) "
                                     f"but the image is {(h, w)}", "resize the mask to the "
                                     "image, or make it from this image")
            check_same_length(NODE, image=b, mask=len(m_t))
        if parsing is not None:
            parsing = check_parsing(parsing, NODE, "parsing")
            if tuple(parsing.labels.shape[1:]) != (h, w):
                raise NodeInputError(NODE, "parsing", f"the parsing is "
                                     f"{tuple(parsing.labels.shape[1:])} but the image is "
                                     f"{(h, w)}", "parse this image (same size)")
            check_same_length(NODE, image=b, parsing=len(parsing))
            lab_t = parsing.labels
        masks = _Masks(m_t, lab_t, dilate)
        self._notes: list[str] = []
        if backend == "video_median":
            out = self._median(image, masks, radius, output)
        else:
            out = self._per_frame(image, masks, backend, radius)
            if max(h, w) > MAX_FILL_SIDE:
                self._notes.append(f"filled at {MAX_FILL_SIDE} px on the long side and "
                                   "scaled up (only the masked pixels change)")
        report = "; ".join([f"{backend}: {b} frame(s) at {w}x{h}, mask grown by {dilate} px"]
                           + self._notes)
        return out, report

    @staticmethod
    def _keep_unmasked(frame: torch.Tensor, rgb_new: np.ndarray, m: np.ndarray) -> torch.Tensor:
        """The new pixels where masked; the input's own values (bit-identical) elsewhere."""
        src = frame.float()
        if src.shape[-1] != 3:  # gray / RGBA: the RGB conversion is the "original"
            src = torch.from_numpy(frame_to_rgb_uint8(frame)).float() / 255
        return torch.where(torch.from_numpy(m)[..., None], torch.from_numpy(rgb_new).float()
                           / 255, src)

    def _per_frame(self, image: torch.Tensor, masks: _Masks, backend: str,
                   radius: int) -> torch.Tensor:
        b, h, w = (int(s) for s in image.shape[:3])
        lama = None
        if backend == "lama":
            try:
                lama = load_lama("big_lama", get_device())
            except (weights.WeightError, RuntimeError) as exc:
                raise NodeInputError(NODE, "backend", f"big-LaMa is not available: {exc}",
                                     "place the file as the message says, or use "
                                     "patchmatch (no download)") from exc

        def still_fill(rgb: np.ndarray, m: np.ndarray) -> np.ndarray:
            return inpaint_still(rgb, m, backend, radius=radius)

        out = torch.empty((b, h, w, 3), dtype=torch.float32)
        empty = 0
        with Progress(b, NODE) as bar:
            for t in range(b):
                m = masks.frame(t, h)
                if m.all():
                    raise NodeInputError(NODE, "mask", f"the mask covers all of frame {t}: "
                                         "there is no background left to fill from",
                                         "mask only the person (check the mask is not "
                                         "inverted), or lower dilate")
                if not m.any():
                    empty += 1
                rgb = frame_to_rgb_uint8(image[t])
                check_interrupt()
                if lama is not None:
                    new = fill_reduced(rgb, m, lama)
                else:
                    new = fill_reduced(rgb, m, still_fill)
                out[t] = self._keep_unmasked(image[t], new, m)
                bar.update()
        if empty:
            logger.warning("Inpaint: the mask is empty in %d of %d frames; they are returned "
                           "unchanged", empty, b)
            self._notes.append(f"the mask is empty in {empty} of {b} frame(s): returned "
                               "unchanged")
        return out

    def _median(self, image: torch.Tensor, masks: _Masks, radius: int,
                output: str) -> torch.Tensor:
        b, h, w = (int(s) for s in image.shape[:3])
        if b < 2:
            raise NodeInputError(NODE, "image", "video_median needs a video, but the image "
                                 "has 1 frame", "connect a video batch (>= 2 frames), or use "
                                 "patchmatch / lama for a still")
        try:
            plate, never = median_plate(
                lambda t, r0, r1: frame_to_rgb_uint8(image[t, r0:r1]),
                masks.rows, b, h, w, fill_radius=radius)
        except ValueError as exc:
            raise NodeInputError(NODE, "mask", str(exc), "mask only the person") from exc
        if never.all():
            raise NodeInputError(NODE, "mask", "every pixel is masked in every frame: there "
                                 "is no background to build a plate from",
                                 "mask only the person (check the mask is not inverted)")
        if never.any():
            logger.info("Inpaint: %.1f%% of the plate was never uncovered and was inpainted",
                        100.0 * never.mean())
            self._notes.append(f"{100.0 * never.mean():.1f}% of the plate was never uncovered "
                               "by the person and was inpainted")
        else:
            self._notes.append("every plate pixel was seen uncovered in some frame")
        if output == "plate":
            return rgb_uint8_to_image(plate)
        out = torch.empty((b, h, w, 3), dtype=torch.float32)
        with Progress(b, NODE) as bar:
            for t in range(b):
                m = masks.frame(t, h)
                out[t] = self._keep_unmasked(image[t], plate, m)
                bar.update()
        return out


NODE_CLASS_MAPPINGS = {"DanceReenactInpaint": Inpaint}
NODE_DISPLAY_NAME_MAPPINGS = {
    "DanceReenactInpaint": "Inpaint · Background without the person (Dance Reenact)",
}
