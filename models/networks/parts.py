"""PartCropper ``l(I, p)`` (paper §3.2): five 224x224 appearance crops of the target photo.

The five groups are :data:`schema.PART_CROP_GROUPS`: face+hair, upper-body clothes, lower-body
clothes, shoes+socks, skin. Each crop is the bounding box of its labels, made square by padding
the shorter side around the box's centre (the aspect of the part is kept, nothing is stretched),
with every pixel outside the segment blanked to black, resized to ``size`` x ``size``. A group
whose labels cover fewer than ``min_pixels`` pixels is *missing*: its crop is all black and its
flag in ``present`` is False (a waist-up photo has no shoes; that is not an error).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ..core.schema import PART_CROP_GROUPS, group_mask
from ..geometry.crop import CropBox, crop_to_box

CROP_SIZE = 224


@dataclass
class PartCrops:
    """crops: float32 (5, S, S, 3) in 0..1; present: bool (5,); boxes: per group the square
    (x0, y0, x1, y1) crop box in image pixels (exclusive end; may reach outside the image) or
    None when the group is missing; names: the group names."""

    crops: np.ndarray
    present: np.ndarray
    boxes: list[tuple[int, int, int, int] | None]
    names: tuple[str, ...]

    @property
    def missing(self) -> list[str]:
        return [n for n, p in zip(self.names, self.present) if not p]


def square_box(ys: np.ndarray, xs: np.ndarray, margin: float = 0.05) -> tuple[int, int, int, int]:
    """The square box around pixel coordinates, centred on their bounding box.

    Returns (x0, y0, x1, y1), exclusive end; it may extend beyond the image.
    """
    y0, y1 = int(ys.min()), int(ys.max()) + 1
    x0, x1 = int(xs.min()), int(xs.max()) + 1
    side = max(y1 - y0, x1 - x0)
    side = max(1, int(round(side * (1.0 + 2.0 * margin))))
    cy, cx = (y0 + y1) / 2.0, (x0 + x1) / 2.0
    by0 = int(round(cy - side / 2.0))
    bx0 = int(round(cx - side / 2.0))
    return bx0, by0, bx0 + side, by0 + side


def crop_parts(image: np.ndarray, labels: np.ndarray, *, size: int = CROP_SIZE,
               min_pixels: int = 16, margin: float = 0.05) -> PartCrops:
    """The paper's ``l(I, p)``.

    Args:
        image: uint8 RGB (H, W, 3), the target photo.
        labels: uint8 (H, W), its parsing in the 22-label schema (same H, W).
        size: side of each square crop (224 in the paper).
        min_pixels: a group covering fewer pixels is reported missing.
        margin: extra border around each bounding box, as a fraction of its side.
    Returns:
        :class:`PartCrops` with crops (5, size, size, 3) float32 in 0..1.
    """
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"image must be uint8 (H, W, 3), got {image.dtype} {image.shape}")
    if labels.shape != image.shape[:2]:
        raise ValueError(f"labels {labels.shape} and image {image.shape[:2]} differ in size")
    names = tuple(name for name, _ in PART_CROP_GROUPS)
    crops = np.zeros((len(names), size, size, 3), dtype=np.float32)
    present = np.zeros(len(names), dtype=bool)
    boxes: list[tuple[int, int, int, int] | None] = []
    for k, (_, ids) in enumerate(PART_CROP_GROUPS):
        mask = group_mask(labels, ids)
        if int(mask.sum()) < min_pixels:
            boxes.append(None)
            continue
        ys, xs = np.nonzero(mask)
        box = square_box(ys, xs, margin)
        blanked = np.where(mask[..., None], image, 0).astype(np.uint8)
        patch = crop_to_box(blanked, CropBox(*box), None)
        interp = cv2.INTER_AREA if patch.shape[0] > size else cv2.INTER_LINEAR
        crops[k] = cv2.resize(patch, (size, size), interpolation=interp).astype(np.float32) / 255
        present[k] = True
        boxes.append(box)
    return PartCrops(crops=crops, present=present, boxes=boxes, names=names)


def preview_grid(crops: np.ndarray, present: np.ndarray, *, gap: int = 4) -> np.ndarray:
    """One row of the crops with a gap; a missing crop gets a red diagonal cross.

    Args:
        crops: float (5, S, S, 3) in 0..1; present: bool (5,).
    Returns:
        uint8 RGB (S, 5*S + 4*gap, 3).
    """
    n, s = crops.shape[0], crops.shape[1]
    out = np.full((s, n * s + (n - 1) * gap, 3), 255, dtype=np.uint8)
    for k in range(n):
        tile = (np.clip(crops[k], 0, 1) * 255 + 0.5).astype(np.uint8)
        if not present[k]:
            tile = np.ascontiguousarray(tile)
            cv2.line(tile, (0, 0), (s - 1, s - 1), (200, 0, 0), max(1, s // 64))
            cv2.line(tile, (0, s - 1), (s - 1, 0), (200, 0, 0), max(1, s // 64))
        out[:, k * (s + gap):k * (s + gap) + s] = tile
    return out
