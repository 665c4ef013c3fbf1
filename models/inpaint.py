"""Inpainting: a clean background from a still (OpenCV, big-LaMa) or from a video (median).

Backends:

- ``opencv_telea`` / ``opencv_ns``: ``cv2.inpaint`` (Telea's fast marching / Navier-Stokes) per
  frame; only masked pixels change.
- ``video_median``: a clean plate from a video with the person masked out: per pixel, the
  median of the frames where that pixel is *not* masked; pixels masked in every frame are then
  filled by Telea inpainting on the plate. It reads the video in blocks of rows, so memory is
  bounded by ``block_bytes`` whatever the frame count (a 300-frame 512x320 video needs a few
  tens of MB on top of the input).
- ``lama``: big-LaMa, a TorchScript file from the weight registry (``big_lama``). Contract:
  ``model(image [1,3,H,W] in 0..1, mask [1,1,H,W] in {0,1}) -> image [1,3,H,W] in 0..1``,
  H and W padded to multiples of 8. TorchScript runs code when loaded: the registry pins its
  sha256 and nothing else is loaded under that name.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import torch

logger = logging.getLogger(__name__)

BACKENDS: tuple[str, ...] = ("opencv_telea", "opencv_ns", "video_median", "lama")
RowReader = Callable[[int, int, int], np.ndarray]


def dilate_mask(mask: np.ndarray, pixels: int) -> np.ndarray:
    """Grow a binary (H, W) mask by ``pixels`` (elliptic kernel). Returns bool (H, W)."""
    m = (mask > 0).astype(np.uint8)
    if pixels > 0:
        k = 2 * pixels + 1
        m = cv2.dilate(m, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k)))
    return m.astype(bool)


def inpaint_opencv(rgb: np.ndarray, mask: np.ndarray, *, method: str = "telea",
                   radius: int = 5) -> np.ndarray:
    """Fill the masked pixels of one frame with ``cv2.inpaint``.

    Args:
        rgb: uint8 (H, W, 3). mask: (H, W), nonzero = fill.
        method: ``telea`` or ``ns``.
    Returns: uint8 (H, W, 3); unmasked pixels are bit-identical to ``rgb``.
    """
    m = (mask > 0).astype(np.uint8)
    if not m.any():
        return rgb.copy()
    flag = {"telea": cv2.INPAINT_TELEA, "ns": cv2.INPAINT_NS}[method]
    out = cv2.inpaint(np.ascontiguousarray(rgb), m * 255, float(max(1, radius)), flag)
    return np.where(m[..., None] > 0, out, rgb)


def median_plate(read_rows: RowReader, read_mask_rows: RowReader, num_frames: int,
                 height: int, width: int, *, block_bytes: int = 64 << 20,
                 fill_radius: int = 5) -> tuple[np.ndarray, np.ndarray]:
    """Temporal median clean plate, streamed by blocks of rows.

    Args:
        read_rows: ``(frame, r0, r1) -> uint8 (r1 - r0, W, 3)`` rows of one frame.
        read_mask_rows: ``(frame, r0, r1) -> (r1 - r0, W)`` mask rows (nonzero = person).
        num_frames, height, width: the video's size.
        block_bytes: memory budget of one block of rows (all frames).
        fill_radius: Telea radius for pixels masked in every frame.
    Returns:
        (plate uint8 (H, W, 3), never_seen bool (H, W): pixels that were inpainted).
    """
    per_row = max(1, num_frames * width * 3 * 2)
    rows = int(max(1, min(height, block_bytes // per_row)))
    plate = np.zeros((height, width, 3), np.uint8)
    never = np.zeros((height, width), bool)
    for r0 in range(0, height, rows):
        r1 = min(height, r0 + rows)
        vals = np.empty((num_frames, r1 - r0, width, 3), np.uint16)
        covered = np.empty((num_frames, r1 - r0, width), bool)
        for t in range(num_frames):
            vals[t] = read_rows(t, r0, r1)
            covered[t] = read_mask_rows(t, r0, r1) > 0
        vals[np.broadcast_to(covered[..., None], vals.shape)] = np.iinfo(np.uint16).max
        vals.sort(axis=0)
        k = num_frames - covered.sum(0)  # frames where the pixel is background
        lo = np.clip((k - 1) // 2, 0, num_frames - 1)
        hi = np.clip(k // 2, 0, num_frames - 1)
        a = np.take_along_axis(vals, lo[None, ..., None].repeat(3, -1), 0)[0]
        b = np.take_along_axis(vals, hi[None, ..., None].repeat(3, -1), 0)[0]
        med = (a.astype(np.uint32) + b + 1) // 2
        seen = k > 0
        plate[r0:r1] = np.where(seen[..., None], np.minimum(med, 255), 0).astype(np.uint8)
        never[r0:r1] = ~seen
        del vals, covered
    if never.any():
        plate = inpaint_opencv(plate, never, method="telea", radius=fill_radius)
    return plate, never


class LamaInpainter:
    """big-LaMa TorchScript (registry ``big_lama``): ``__call__(rgb, mask) -> rgb``.

    Pre/post-processing as IOPaint's ``LaMa.forward`` and ``InpaintModel._pad_forward``
    (Sanster/IOPaint ``iopaint/model/lama.py``, ``iopaint/model/base.py``,
    ``iopaint/helper.py``): the frame and the mask padded at the bottom/right to multiples of
    8 with ``np.pad(mode="symmetric")`` (the edge pixel repeated, unlike ``reflect``), the
    image RGB float 0..1, the mask 1 where to fill; the result cropped back and converted by
    ``clip(x * 255).astype(uint8)`` (truncation, not rounding). Only masked pixels change.
    """

    PAD_MOD = 8

    def __init__(self, path: str | Path, device: torch.device | str = "cpu") -> None:
        self.device = torch.device(device)
        try:
            self.model = torch.jit.load(str(path), map_location=self.device).eval()
        except Exception as exc:
            raise RuntimeError(f"{path} is not a loadable TorchScript LaMa model ({exc}); "
                               "delete it and fetch it again") from exc

    @torch.inference_mode()
    def __call__(self, rgb: np.ndarray, mask: np.ndarray) -> np.ndarray:
        """uint8 (H, W, 3) + (H, W) mask -> uint8 (H, W, 3); only masked pixels change."""
        m = (mask > 0)
        if not m.any():
            return rgb.copy()
        h, w = m.shape
        pad = ((0, (-h) % self.PAD_MOD), (0, (-w) % self.PAD_MOD))
        img_np = np.pad(np.ascontiguousarray(rgb), pad + ((0, 0),), mode="symmetric")
        msk_np = np.pad(m, pad, mode="symmetric").astype(np.float32)
        img = torch.from_numpy(img_np).permute(2, 0, 1)[None].float() / 255
        msk = torch.from_numpy(msk_np)[None, None]
        out = self.model(img.to(self.device), msk.to(self.device))
        if not isinstance(out, torch.Tensor) or tuple(out.shape) != tuple(img.shape):
            raise RuntimeError(f"the LaMa model returned {getattr(out, 'shape', type(out))}, "
                               f"expected an image of shape {tuple(img.shape)}")
        res = (out[0, :, :h, :w].float() * 255).clamp(0, 255).byte().permute(1, 2, 0)
        return np.where(m[..., None], res.cpu().numpy(), rgb)


def load_lama(name_or_spec: object = "big_lama", device: torch.device | str = "cpu"
              ) -> LamaInpainter:
    """Resolve big-LaMa through the weight registry (download if allowed) and load it."""
    from .weights import resolve

    return LamaInpainter(resolve(name_or_spec), device)  # type: ignore[arg-type]
