"""Crop to the person, work at the networks' resolution, paste back at full resolution.

The learned stages run at a fixed working size (512×320, height × width, as in the paper) but
users bring 1920×1080 drivers and 3000×4000 photos. The round trip is:

1. :func:`person_box` — a box around the person (confident keypoints and/or a mask), grown by
   ``margin`` on every side and then widened or heightened (never shrunk) around its centre to
   the working aspect ratio exactly, so resizing never distorts the person. The box may reach
   outside the frame: the crop is padded there.
2. :func:`crop_to_box` — cut the box out (padding outside the frame) and resize it to the
   working size.
3. :func:`paste_back` — resize a working-size result back to the box and blend it into the
   full-resolution frame through a mask; pixels outside the box (and where the mask is 0) are
   untouched, bit for bit.

Keypoints follow with :func:`points_to_crop` / :func:`points_from_crop` (pixel-centre
convention of ``cv2.resize``: ``x_crop = (x - x0 + 0.5) · out_w / box_w - 0.5``).
Images are numpy ``(H, W, C)`` or ``(H, W)`` arrays, uint8 or float.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from ..core.schema import Person

WORKING_HW: tuple[int, int] = (512, 320)


@dataclass(frozen=True)
class CropBox:
    """An integer pixel box ``[x0, x1) × [y0, y1)`` in full-frame coordinates; it may extend
    beyond the frame (that part is padding)."""

    x0: int
    y0: int
    x1: int
    y1: int

    def __post_init__(self) -> None:
        if self.x1 <= self.x0 or self.y1 <= self.y0:
            raise ValueError(f"empty crop box {self}")

    @property
    def width(self) -> int:
        return self.x1 - self.x0

    @property
    def height(self) -> int:
        return self.y1 - self.y0


def _points_bounds(points: Person | np.ndarray, threshold: float) -> np.ndarray | None:
    pts = points.all_points() if isinstance(points, Person) else np.asarray(points, np.float64)
    pts = pts.reshape(-1, pts.shape[-1])
    ok = np.isfinite(pts[:, :2]).all(-1)
    if pts.shape[-1] >= 3:
        ok &= pts[:, 2] > threshold
    if not ok.any():
        return None
    sel = pts[ok, :2]
    return np.array([sel[:, 0].min(), sel[:, 1].min(), sel[:, 0].max() + 1, sel[:, 1].max() + 1])


def person_box(image_hw: tuple[int, int], *, points: Person | np.ndarray | None = None,
               mask: np.ndarray | None = None, out_hw: tuple[int, int] = WORKING_HW,
               margin: float = 0.1, min_size: int = 16, threshold: float = 0.05) -> CropBox:
    """A box around the person with the aspect ratio of ``out_hw``.

    Args:
        image_hw: (H, W) of the full frame (used to centre a box when nothing else is known).
        points: keypoints (a Person, or (N, 2|3) pixels with confidence) — optional.
        mask: (H, W) person mask (> 0.5 = person) — optional. The box covers the union.
        out_hw: working size (height, width); the box gets exactly its aspect ratio up to the
            rounding of one pixel.
        margin: grown on every side, as a fraction of the person's larger side.
        min_size: the box is at least this many pixels high.
    Returns:
        :class:`CropBox`.
    Raises:
        ValueError: neither points nor mask show a person.
    """
    bounds = []
    if points is not None:
        b = _points_bounds(points, threshold)
        if b is not None:
            bounds.append(b)
    if mask is not None:
        m = np.asarray(mask) > 0.5
        if m.shape != tuple(image_hw):
            raise ValueError(f"mask {m.shape} does not match the frame {tuple(image_hw)}")
        ys, xs = np.nonzero(m)
        if len(xs):
            bounds.append(np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], float))
    if not bounds:
        raise ValueError("no person to crop: no confident keypoint and an empty mask")
    b = np.stack(bounds)
    x0, y0 = b[:, 0].min(), b[:, 1].min()
    x1, y1 = b[:, 2].max(), b[:, 3].max()
    pad = margin * max(x1 - x0, y1 - y0)
    x0, y0, x1, y1 = x0 - pad, y0 - pad, x1 + pad, y1 + pad
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    out_h, out_w = out_hw
    h = max(y1 - y0, (x1 - x0) * out_h / out_w, float(min_size))
    hi = int(math.ceil(h - 1e-9))
    wi = max(int(round(hi * out_w / out_h)), 1)
    bx0 = int(math.floor(cx - wi / 2 + 0.5))
    by0 = int(math.floor(cy - hi / 2 + 0.5))
    return CropBox(bx0, by0, bx0 + wi, by0 + hi)


def _interp(src_hw: tuple[int, int], dst_hw: tuple[int, int]) -> int:
    return cv2.INTER_AREA if dst_hw[0] < src_hw[0] and dst_hw[1] < src_hw[1] else cv2.INTER_LINEAR


def _resize(img: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    if img.shape[:2] == tuple(hw):
        return img.copy()
    squeeze = img.ndim == 3 and img.shape[2] == 1
    src = img[..., 0] if squeeze else img
    if src.dtype not in (np.uint8, np.float32):
        src = src.astype(np.float32)
    out = cv2.resize(src, (hw[1], hw[0]), interpolation=_interp(img.shape[:2], hw))
    out = out[..., None] if squeeze else out
    return out.astype(img.dtype) if out.dtype != img.dtype else out


def crop_to_box(image: np.ndarray, box: CropBox, out_hw: tuple[int, int] | None = WORKING_HW,
                *, pad: str = "constant", pad_value: float = 0.0) -> np.ndarray:
    """Cut ``box`` out of ``image`` and resize it to ``out_hw`` (None = the box's own size).

    Args:
        image: (H, W) or (H, W, C), uint8 or float.
        pad: ``constant`` (``pad_value``) or ``edge`` (replicate) where the box leaves the frame.
    Returns:
        (out_h, out_w[, C]) of the image's dtype.
    """
    if pad not in ("constant", "edge"):
        raise ValueError(f"pad must be 'constant' or 'edge', got {pad!r}")
    img = np.asarray(image)
    H, W = img.shape[:2]
    sx0, sy0 = max(box.x0, 0), max(box.y0, 0)
    sx1, sy1 = min(box.x1, W), min(box.y1, H)
    shape = (box.height, box.width) + img.shape[2:]
    if pad == "constant" or sx1 <= sx0 or sy1 <= sy0:
        crop = np.full(shape, pad_value, dtype=img.dtype)
        if sx1 > sx0 and sy1 > sy0:
            crop[sy0 - box.y0:sy1 - box.y0, sx0 - box.x0:sx1 - box.x0] = img[sy0:sy1, sx0:sx1]
    else:
        ys = np.clip(np.arange(box.y0, box.y1), 0, H - 1)
        xs = np.clip(np.arange(box.x0, box.x1), 0, W - 1)
        crop = img[ys[:, None], xs[None, :]]
    return crop if out_hw is None else _resize(crop, tuple(out_hw))


def paste_back(full: np.ndarray, crop_result: np.ndarray, box: CropBox,
               mask: np.ndarray | None = None) -> np.ndarray:
    """Blend a working-size result back into the full frame: ``full·(1-m) + result·m`` inside
    the box (result and mask resized to the box), ``full`` unchanged elsewhere.

    Args:
        full: (H, W[, C]) the full-resolution frame (not modified).
        crop_result: (h, w[, C]) the result at working size (any size: resized to the box).
        box: the box it was cropped from.
        mask: (h, w) blend weight in 0..1 at the result's size; None = 1 everywhere.
    Returns:
        a new (H, W[, C]) array of ``full``'s dtype (uint8 results are rounded).
    """
    full = np.asarray(full)
    res = np.asarray(crop_result)
    if res.ndim != full.ndim or res.shape[2:] != full.shape[2:]:
        raise ValueError(f"result {res.shape} and frame {full.shape} differ in channels")
    H, W = full.shape[:2]
    out = full.copy()
    sx0, sy0 = max(box.x0, 0), max(box.y0, 0)
    sx1, sy1 = min(box.x1, W), min(box.y1, H)
    if sx1 <= sx0 or sy1 <= sy0:
        return out
    res = _resize(res, (box.height, box.width))
    region = (slice(sy0 - box.y0, sy1 - box.y0), slice(sx0 - box.x0, sx1 - box.x0))
    src = res[region]
    if mask is None:
        out[sy0:sy1, sx0:sx1] = src.astype(full.dtype) if src.dtype == full.dtype else \
            _cast(src.astype(np.float64), full.dtype)
        return out
    m = np.asarray(mask, dtype=np.float32)
    if m.shape != np.asarray(crop_result).shape[:2]:
        raise ValueError(f"mask {m.shape} does not match the result "
                         f"{np.asarray(crop_result).shape[:2]}")
    m = np.clip(_resize(m, (box.height, box.width)), 0.0, 1.0)[region].astype(np.float64)
    if full.ndim == 3:
        m = m[..., None]
    dst = full[sy0:sy1, sx0:sx1].astype(np.float64)
    blended = dst * (1.0 - m) + src.astype(np.float64) * m
    # where m == 0 keep the original bits, where m == 1 the result's
    blended = np.where(m <= 0.0, dst, np.where(m >= 1.0, src.astype(np.float64), blended))
    out[sy0:sy1, sx0:sx1] = _cast(blended, full.dtype)
    return out


def _cast(x: np.ndarray, dtype: np.dtype) -> np.ndarray:
    if np.dtype(dtype) == np.uint8:
        return np.clip(np.round(x), 0, 255).astype(np.uint8)
    return x.astype(dtype)


def points_to_crop(points: np.ndarray, box: CropBox,
                   out_hw: tuple[int, int] = WORKING_HW) -> np.ndarray:
    """Full-frame pixel keypoints (..., 2|3) -> working-size crop pixels (confidence kept)."""
    pts = np.array(points, dtype=np.float64, copy=True)
    sx, sy = out_hw[1] / box.width, out_hw[0] / box.height
    pts[..., 0] = (pts[..., 0] - box.x0 + 0.5) * sx - 0.5
    pts[..., 1] = (pts[..., 1] - box.y0 + 0.5) * sy - 0.5
    return pts


def points_from_crop(points: np.ndarray, box: CropBox,
                     out_hw: tuple[int, int] = WORKING_HW) -> np.ndarray:
    """Inverse of :func:`points_to_crop`."""
    pts = np.array(points, dtype=np.float64, copy=True)
    sx, sy = out_hw[1] / box.width, out_hw[0] / box.height
    pts[..., 0] = (pts[..., 0] + 0.5) / sx - 0.5 + box.x0
    pts[..., 1] = (pts[..., 1] + 0.5) / sy - 0.5 + box.y0
    return pts
