"""The weightless B2F backend (SPEC §4): the target's pixels warped into the driver's pose.

Per driver frame:

1. the target's pixels are warped part by part with the SAME per-part transforms as the P2B
   warp backend (:func:`warp.part_transforms`: driver directions, target limb lengths) and the
   same part assignment (:func:`warp.assign_parts`), composited in depth order;
2. the frame's PARSING (P2B's output) says which label every person pixel should show. Where
   the warped pixels do not carry that label (a hole, or a part that moved differently), the
   pixel is filled from the nearest warped pixel OF THE SAME LABEL (same part: a sleeve from
   the sleeve, skin from skin); a label with no warped pixel at all takes the mean colour of
   that label in the target photo;
3. labels the target photo does not show at all (the legs of a waist-up photo) are left out:
   no invented pixels, mask 0 there, and the count is reported (SPEC §4 default);
4. the mask is the parsing's person mask minus those absent labels, feathered.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ..compositing.blend import gaussian_blur
from ..core.schema import NUM_LABELS, Person
from .warp import assign_parts, part_masks, part_transforms, warp_by_parts


@dataclass
class WarpFrame:
    """image: uint8 (H, W, 3) (zeros outside the person); mask: float32 (H, W) in 0..1;
    absent_pixels: person pixels of labels the target does not show (left out of the mask)."""

    image: np.ndarray
    mask: np.ndarray
    absent_pixels: int


@dataclass
class TargetParts:
    """Per-target work shared by every driver frame: the part of each target pixel and the
    source mask of each part (:func:`warp.part_masks`)."""

    part_map: np.ndarray
    masks: dict[str, np.ndarray]


def prepare_target(target_labels: np.ndarray, target_person: Person) -> TargetParts:
    """Assign the target's pixels to body parts once (reused for every driver frame)."""
    part_map = assign_parts(target_labels, target_person)
    return TargetParts(part_map=part_map, masks=part_masks(part_map, target_person))


def nearest_fill(image: np.ndarray, src: np.ndarray, dst: np.ndarray) -> None:
    """In place: every ``dst`` pixel takes the value of the nearest ``src`` pixel
    (bool masks (H, W); nothing happens when ``src`` is empty)."""
    if not src.any() or not dst.any():
        return
    ys, xs = np.nonzero(src | dst)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    s, d = src[y0:y1, x0:x1], dst[y0:y1, x0:x1]
    _, nearest = cv2.distanceTransformWithLabels(np.where(s, 0, 1).astype(np.uint8),
                                                 cv2.DIST_L2, 5,
                                                 labelType=cv2.DIST_LABEL_PIXEL)
    sy, sx = np.nonzero(s)  # raster order = OpenCV's label order (1-based)
    idx = nearest[d] - 1
    sub = image[y0:y1, x0:x1]
    sub[d] = sub[sy[idx], sx[idx]]


def fill_from_same_label(image: np.ndarray, have: np.ndarray, want: np.ndarray,
                         labels_have: np.ndarray, labels_want: np.ndarray,
                         fallback: dict[int, np.ndarray]) -> np.ndarray:
    """Fill the ``want`` pixels that are not ``have``-with-the-same-label from the nearest
    ``have`` pixel carrying the label the pixel wants.

    Args:
        image: (H, W, 3) warped image (a filled copy is returned).
        have: bool (H, W) where the warp drew something; labels_have: their labels.
        want: bool (H, W) pixels to output; labels_want: the label each should show.
        fallback: label -> RGB used when no warped pixel of that label exists.
    """
    out = image.copy()
    ok = have & (labels_have == labels_want)
    todo = want & ~ok
    for lab in np.unique(labels_want[todo]):
        hole = todo & (labels_want == lab)
        src = ok & (labels_have == lab)
        if src.any():
            nearest_fill(out, src, hole)
        else:
            out[hole] = fallback.get(int(lab), np.zeros(3)).astype(out.dtype)
    return out


def warp_frame(target_image: np.ndarray, target_labels: np.ndarray, target_person: Person,
               driver_labels: np.ndarray, driver_person: Person, *,
               feather: float = 2.0, prepared: TargetParts | None = None) -> WarpFrame:
    """Render one driver frame from the target photo, no network.

    Args:
        target_image: uint8 (h, w, 3) target photo; target_labels: uint8 (h, w) its parsing;
        target_person: its keypoints (pixels of the photo).
        driver_labels: uint8 (H, W) the target's parsing in the driver pose (P2B output);
        driver_person: the driver's keypoints in that frame's pixels.
        feather: Gaussian sigma (px) of the mask edge.
        prepared: :func:`prepare_target` of this target (a video: compute once, pass always).
    Returns:
        :class:`WarpFrame` at (H, W).
    """
    h, w = driver_labels.shape
    tp = prepared or prepare_target(target_labels, target_person)
    transforms = part_transforms(target_person, driver_person)
    rgb, drawn = warp_by_parts(target_image, tp.part_map, transforms, (h, w),
                               masks=tp.masks, nearest=False)
    lab_w, _ = warp_by_parts(target_labels, tp.part_map, transforms, (h, w),
                             masks=tp.masks, nearest=True)
    counts = np.bincount(target_labels.ravel(), minlength=NUM_LABELS)
    shown = counts > 0
    shown[0] = False
    person = driver_labels > 0
    absent = person & ~shown[driver_labels]
    want = person & ~absent
    fallback = {}
    for lab in np.unique(driver_labels[want]):
        sel = target_labels == lab
        fallback[int(lab)] = target_image[sel].reshape(-1, 3).mean(0)
    img = fill_from_same_label(rgb, drawn > 0, want, lab_w, driver_labels, fallback)
    img[~want] = 0
    mask = want.astype(np.float32)
    if feather > 0:
        import torch

        mask = np.clip(gaussian_blur(torch.from_numpy(mask), float(feather)).numpy(), 0, 1)
        mask[mask < 1e-3] = 0.0
        # the soft edge reaches a little outside the person: extend the colours under it
        nearest_fill(img, want, (mask > 0) & ~want)
    return WarpFrame(image=img, mask=mask.astype(np.float32), absent_pixels=int(absent.sum()))
