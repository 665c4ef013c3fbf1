"""Mask Blend (paper eq. 7): ``f0 = z*m + b*(1-m)`` over a still or a video background.

Caching: this node defines no ``IS_CHANGED``, so ComfyUI re-runs it only when one of its own
inputs changes, and re-runs an upstream node only when THAT node's inputs change. Swapping the
background image/video therefore re-runs this blend (and what follows it) and nothing upstream:
P2B, B2F and the appearance encoding stay cached. Keep it that way: an ``IS_CHANGED`` here would
not invalidate upstream either, but it must not be added to the upstream stages.
"""

from __future__ import annotations

from typing import Any

import torch

from ..models.compositing.blend import FIT_MODES, LENGTH_MODES, blend_frames
from .runtime import NodeInputError, Progress
from .sockets import IMAGE, MASK, check_image, check_mask

CATEGORY = "dance_reenact/compose"


class MaskBlend:
    """Composite the generated person over any background through the blending mask."""

    @classmethod
    def INPUT_TYPES(cls) -> dict:
        return {
            "required": {
                "image": (IMAGE, {"tooltip": "The generated frames z (B2F)."}),
                "mask": (MASK, {"tooltip": "The blending masks m (B2F)."}),
                "background": (IMAGE, {"tooltip": "A still or a video, any size."}),
                "length_mode": (list(LENGTH_MODES), {"default": "loop", "tooltip":
                                "Background video shorter than the frames: loop it or hold its "
                                "last frame; trim cuts the output to the shorter one."}),
                "fit": (list(FIT_MODES), {"default": "cover", "tooltip":
                        "Background of another size: cover (crop), contain (black borders), "
                        "stretch."}),
                "erode": ("INT", {"default": 0, "min": -64, "max": 64, "tooltip":
                          "Shrink the mask by this many pixels (negative grows it)."}),
                "feather": ("FLOAT", {"default": 0.0, "min": 0.0, "max": 64.0, "step": 0.5,
                                      "tooltip": "Soften the mask edge (Gaussian sigma, px)."}),
            },
            "optional": {
                "foreground_outputs": ("BOOLEAN", {"default": True, "tooltip":
                                       "Fill the foreground_rgba and alpha outputs. Off: they "
                                       "are one black frame each, which saves two video-sized "
                                       "outputs ComfyUI would keep in memory (turn it off when "
                                       "nothing is connected to them)."}),
            },
        }

    RETURN_TYPES = (IMAGE, IMAGE, MASK)
    RETURN_NAMES = ("image", "foreground_rgba", "alpha")
    OUTPUT_TOOLTIPS = (
        'The rendered person over the background: f0 = z*m + b*(1-m).',
        'The person with the mask as alpha (RGBA), for compositing elsewhere.',
        'The alpha used for the blend.',
    )
    FUNCTION = "blend"
    CATEGORY = CATEGORY
    DESCRIPTION = ("f0 = z*m + b*(1-m): blend the generated person over a still or a video "
                   "background (looped, held or trimmed to length; fitted by cover/contain/"
                   "stretch). Also outputs the foreground with alpha (RGBA) and the final mask. "
                   "Changing only the background re-runs only this node.")

    def blend(self, image: Any, mask: Any, background: Any, length_mode: str = "loop",
              fit: str = "cover", erode: int = 0, feather: float = 0.0,
              foreground_outputs: bool = True,
              ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        node = "Mask Blend"
        z = check_image(image, node, "image")
        m = check_mask(mask, node, "mask")
        b = check_image(background, node, "background")
        if z.shape[-1] != 3:
            z = z[..., :3] if z.shape[-1] == 4 else z[..., :1].expand(-1, -1, -1, 3)
        if tuple(m.shape[1:]) != tuple(z.shape[1:3]):
            raise NodeInputError(node, "mask", f"the mask is {m.shape[2]}x{m.shape[1]} but the "
                                 f"image is {z.shape[2]}x{z.shape[1]}",
                                 "connect the mask made with this image (B2F's two outputs)")
        if z.shape[0] != m.shape[0] and 1 not in (z.shape[0], m.shape[0]):
            raise NodeInputError(node, "image/mask", f"the image has {z.shape[0]} frames and "
                                 f"the mask {m.shape[0]}", "connect outputs of the same run")
        if length_mode not in LENGTH_MODES or fit not in FIT_MODES:
            raise NodeInputError(node, "length_mode/fit", f"unknown option {length_mode!r}/"
                                 f"{fit!r}", f"use one of {LENGTH_MODES} / {FIT_MODES}")
        total = max(z.shape[0], m.shape[0])
        with Progress(total, node) as bar:
            comp, rgba, alpha = blend_frames(z, m, b, length_mode=length_mode, fit=fit,
                                             erode=int(erode), feather=float(feather),
                                             on_frame=lambda done, tot: bar.update(),
                                             extras=bool(foreground_outputs))
        return comp, rgba, alpha


NODE_CLASS_MAPPINGS = {"DanceReenactMaskBlend": MaskBlend}
NODE_DISPLAY_NAME_MAPPINGS = {
    "DanceReenactMaskBlend": "Mask Blend · Person over a background (Dance Reenact)",
}
