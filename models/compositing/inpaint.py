"""Inpainting: a clean background from a still (PatchMatch, OpenCV, big-LaMa) or from a video
(median, optionally registered for a moving camera).

Backends:

- ``patchmatch`` (the default): PatchMatch (Barnes et al. 2009) through the ``pypatchmatch``
  wheel (MIT; a prebuilt native library with OpenCV linked in, loaded by ctypes: nothing is
  compiled or downloaded at run time). It copies whole patches of the image into the hole, so
  texture continues instead of being smeared; ``source_mask`` restricts where patches come
  from. Without the wheel (Python 3.10, or a platform without one) it falls back to Telea
  with a warning. ``docs/inpainting.md`` compares the backends.
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
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

logger = logging.getLogger(__name__)

BACKENDS: tuple[str, ...] = ("patchmatch", "opencv_telea", "opencv_ns", "video_median", "lama")
STILL_BACKENDS: tuple[str, ...] = ("patchmatch", "opencv_telea", "opencv_ns")  # no weights
DEFAULT_BACKEND = "patchmatch"
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


_PATCHMATCH: object | None = None
_PATCHMATCH_WHY = ""


def _patchmatch_lib() -> object | None:
    """The ``patchmatch`` module of the ``pypatchmatch`` wheel (>= 2), or None.

    Versions before 2 compile C++ with ``make`` when imported: they are never imported.
    """
    global _PATCHMATCH, _PATCHMATCH_WHY
    if _PATCHMATCH is not None or _PATCHMATCH_WHY:
        return _PATCHMATCH
    from importlib import metadata

    try:
        version = metadata.version("pypatchmatch")
    except metadata.PackageNotFoundError:
        _PATCHMATCH_WHY = "the pypatchmatch package is not installed (pip install pypatchmatch)"
        return None
    if int(version.split(".")[0]) < 2:
        _PATCHMATCH_WHY = (f"pypatchmatch {version} compiles code when imported; "
                           "pip install 'pypatchmatch>=2.2' (a prebuilt wheel)")
        return None
    try:
        import patchmatch
    except Exception as exc:  # a broken install must not break the other backends
        _PATCHMATCH_WHY = f"pypatchmatch failed to import ({exc})"
        return None
    if not getattr(patchmatch, "patchmatch_available", False):
        _PATCHMATCH_WHY = "pypatchmatch has no native library for this platform"
        return None
    _PATCHMATCH = patchmatch
    return patchmatch


def patchmatch_available() -> bool:
    """Whether the ``patchmatch`` backend runs natively (else it falls back to Telea)."""
    return _patchmatch_lib() is not None


def inpaint_patchmatch(rgb: np.ndarray, mask: np.ndarray, *,
                       source_mask: np.ndarray | None = None, patch_size: int = 3,
                       seed: int = 0) -> np.ndarray:
    """Fill the masked pixels of one frame by PatchMatch (patches copied from the image).

    Args:
        rgb: uint8 (H, W, 3). mask: (H, W), nonzero = fill.
        source_mask: optional (H, W), nonzero = pixels the fill may copy from (e.g. the pixels
            of one parsing label). Pixels outside it and outside ``mask`` are neither used nor
            changed. None = every unmasked pixel.
        patch_size: patch radius (patches are ``2 * patch_size + 1`` pixels wide).
        seed: seed of the randomized search (equal inputs give equal results).
    Returns: uint8 (H, W, 3); unmasked pixels are bit-identical to ``rgb``.
    Raises: ValueError when ``source_mask`` leaves no pixel outside the hole to copy from.
    """
    m = mask > 0
    if not m.any():
        return rgb.copy()
    src = ~m if source_mask is None else (np.asarray(source_mask) > 0) & ~m
    if not src.any():
        raise ValueError("nothing to fill from: no source pixel outside the hole")
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    lib = _patchmatch_lib()
    if lib is None:
        logger.warning("patchmatch is unavailable (%s): filling with Telea instead",
                       _PATCHMATCH_WHY)
        # Telea reads the hole's border: treat every non-source pixel as hole, so only
        # source pixels feed the fill, then keep the original outside ``mask``.
        out = inpaint_opencv(rgb, ~src, method="telea")
        return np.where(m[..., None], out, rgb)
    global_mask = None if source_mask is None else (~(src | m)).astype(np.uint8)
    lib.set_random_seed(int(seed))  # type: ignore[attr-defined]
    out = lib.inpaint(rgb, m.astype(np.uint8), global_mask=global_mask,  # type: ignore
                      patch_size=int(patch_size))
    return np.where(m[..., None], out, rgb)


def inpaint_still(rgb: np.ndarray, mask: np.ndarray, backend: str = DEFAULT_BACKEND, *,
                  radius: int = 5) -> np.ndarray:
    """One frame with a weightless backend of :data:`STILL_BACKENDS`.

    Args: rgb uint8 (H, W, 3); mask (H, W), nonzero = fill; radius: the OpenCV radius.
    Returns: uint8 (H, W, 3); unmasked pixels are bit-identical to ``rgb``.
    """
    if backend == "patchmatch":
        return inpaint_patchmatch(rgb, mask)
    if backend in ("opencv_telea", "opencv_ns"):
        return inpaint_opencv(rgb, mask, method=backend.split("_")[1], radius=radius)
    raise ValueError(f"unknown still backend {backend!r}: use one of {STILL_BACKENDS}")


def median_plate(read_rows: RowReader, read_mask_rows: RowReader, num_frames: int,
                 height: int, width: int, *, block_bytes: int = 64 << 20,
                 fill_radius: int = 5, fill_backend: str = "opencv_telea"
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Temporal median clean plate, streamed by blocks of rows.

    Args:
        read_rows: ``(frame, r0, r1) -> uint8 (r1 - r0, W, 3)`` rows of one frame.
        read_mask_rows: ``(frame, r0, r1) -> (r1 - r0, W)`` mask rows (nonzero = person).
        num_frames, height, width: the video's size.
        block_bytes: memory budget of one block of rows (all frames).
        fill_radius: OpenCV radius for pixels masked in every frame.
        fill_backend: how those pixels are filled (one of :data:`STILL_BACKENDS`).
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
    if never.any() and not never.all():
        plate = inpaint_still(plate, never, fill_backend, radius=fill_radius)
    return plate, never


class Registrar:
    """Homographies that map frames onto a reference frame (ORB features + RANSAC), for a
    clean plate from a panning / zooming camera.

    Features are taken from the background only (``keep`` masks) on a copy of the frames
    scaled to ``side`` pixels (longest side; small frames are enlarged at most 4x, which gives
    ORB's 31-pixel patches room). A registration is *unreliable*, and ``None`` is
    returned, when fewer than ``min_inliers`` matches (or under 30 % of the matches) agree,
    or the homography scales the frame by more than 2x or tilts it strongly.
    """

    def __init__(self, reference: np.ndarray, keep: np.ndarray | None = None, *,
                 side: int = 640, min_inliers: int = 20) -> None:
        """reference: uint8 (H, W, 3); keep: (H, W), nonzero = background (feature area)."""
        h, w = reference.shape[:2]
        self.hw = (h, w)
        self.scale = min(4.0, float(side) / max(h, w))
        self.min_inliers = int(min_inliers)
        self.orb = cv2.ORB_create(nfeatures=2000, fastThreshold=10)
        self.matcher = cv2.BFMatcher(cv2.NORM_HAMMING)
        self.ref_kp, self.ref_desc = self._features(reference, keep)

    def _features(self, rgb: np.ndarray, keep: np.ndarray | None) -> tuple:
        h, w = self.hw
        size = (max(1, round(w * self.scale)), max(1, round(h * self.scale)))
        gray = cv2.resize(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), size,
                          interpolation=cv2.INTER_AREA if self.scale < 1 else cv2.INTER_LINEAR)
        m = None
        if keep is not None:
            m = cv2.resize((keep > 0).astype(np.uint8) * 255, size,
                           interpolation=cv2.INTER_NEAREST)
        return self.orb.detectAndCompute(gray, m)

    def __call__(self, rgb: np.ndarray, keep: np.ndarray | None = None) -> np.ndarray | None:
        """The (3, 3) homography taking ``rgb``'s pixels onto the reference's (full-size
        coordinates), or None when the registration is unreliable."""
        kp, desc = self._features(rgb, keep)
        if desc is None or self.ref_desc is None or len(kp) < self.min_inliers:
            return None
        good = []
        for pair in self.matcher.knnMatch(desc, self.ref_desc, k=2):
            if len(pair) == 2 and pair[0].distance < 0.8 * pair[1].distance:
                good.append(pair[0])
        if len(good) < self.min_inliers:
            return None
        src = np.float32([kp[g.queryIdx].pt for g in good])
        dst = np.float32([self.ref_kp[g.trainIdx].pt for g in good])
        hom, inl = cv2.findHomography(src, dst, cv2.RANSAC, 2.0)
        if hom is None or inl is None:
            return None
        n_in = int(inl.sum())
        if n_in < self.min_inliers or n_in < 0.3 * len(good):
            return None
        det = float(np.linalg.det(hom[:2, :2]))
        if not 0.5 < det < 2.0 or np.abs(hom[2, :2]).max() * max(self.hw) * self.scale > 0.5:
            return None
        s = np.diag([self.scale, self.scale, 1.0])
        return np.linalg.inv(s) @ hom @ s


def _near_identity(hom: np.ndarray, h: int, w: int, tol: float = 0.25) -> bool:
    """Whether ``hom`` moves every corner of an (h, w) frame by less than ``tol`` pixels."""
    corners = np.float32([[0, 0], [w, 0], [0, h], [w, h]])[:, None]
    moved = cv2.perspectiveTransform(corners, hom)
    return float(np.abs(moved - corners).max()) < tol


def registered_median_plate(reference: tuple[np.ndarray, np.ndarray],
                            others: Iterable[tuple[np.ndarray, np.ndarray]], *,
                            register: bool = True, fill_backend: str = DEFAULT_BACKEND,
                            block_bytes: int = 64 << 20,
                            ) -> tuple[np.ndarray, np.ndarray, int]:
    """Median clean plate of a few frames, each registered onto a reference frame first.

    Args:
        reference: (uint8 (H, W, 3), person mask (H, W), nonzero = exclude) of the frame whose
            view the plate shows.
        others: more such pairs (streamed; each is warped and kept, so pass a bounded
            sample, e.g. <= 48 frames). A frame whose registration is unreliable is used as
            it is (a still camera needs none).
        register: False = assume a still camera (no warping).
        fill_backend: fills pixels that no frame shows (one of :data:`STILL_BACKENDS`).
    Returns:
        (plate uint8 (H, W, 3), never_seen bool (H, W), frames registered (warped)).
    Raises: ValueError when the person covers every pixel of every frame.
    """
    ref_rgb, ref_mask = reference
    h, w = ref_rgb.shape[:2]
    frames, covered = [np.ascontiguousarray(ref_rgb)], [np.asarray(ref_mask) > 0]
    reg = Registrar(ref_rgb, ~covered[0]) if register else None
    warped = 0
    for rgb, mask in others:
        if rgb.shape[:2] != (h, w):
            raise ValueError(f"a frame is {rgb.shape[:2]}, the reference {(h, w)}")
        m = np.asarray(mask) > 0
        hom = reg(rgb, ~m) if reg is not None else None
        if hom is not None and not _near_identity(hom, h, w):
            rgb = cv2.warpPerspective(rgb, hom, (w, h), flags=cv2.INTER_LINEAR,
                                      borderMode=cv2.BORDER_REPLICATE)
            # out of the frame after warping, or under the person: not seen here
            inside = cv2.warpPerspective(np.full((h, w), 255, np.uint8), hom, (w, h),
                                         flags=cv2.INTER_LINEAR) == 255
            m = cv2.warpPerspective(m.astype(np.uint8), hom, (w, h),
                                    flags=cv2.INTER_NEAREST) > 0
            m |= ~inside
            warped += 1
        frames.append(rgb)
        covered.append(m)
    logger.info("clean plate: %d frames, %d registered onto the reference", len(frames),
                warped)
    plate, never = median_plate(lambda t, a, b: frames[t][a:b],
                                lambda t, a, b: covered[t][a:b], len(frames), h, w,
                                block_bytes=block_bytes, fill_backend=fill_backend)
    if never.all():
        raise ValueError("the person covers every pixel in every frame: no background")
    return plate, never, warped


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
    from ..io.weights import resolve

    return LamaInpainter(resolve(name_or_spec), device)  # type: ignore[arg-type]


MAX_FILL_SIDE = 1536  # a 6000x4000 still took 268 s at full size; the fill is smooth anyway


def fill_reduced(rgb: np.ndarray, mask: np.ndarray,
                 fill: Callable[[np.ndarray, np.ndarray], np.ndarray],
                 max_side: int = MAX_FILL_SIDE) -> np.ndarray:
    """Run ``fill(rgb, mask)`` on a copy reduced to ``max_side`` pixels when the frame is
    larger, and paste the upscaled fill into the masked pixels only (the rest stays
    bit-identical). rgb: uint8 (h, w, 3); mask: bool (h, w). Returns uint8 (h, w, 3)."""
    h, w = mask.shape[:2]
    if max(h, w) <= max_side:
        return fill(rgb, mask)
    s = max_side / float(max(h, w))
    size = (max(1, round(w * s)), max(1, round(h * s)))
    small = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    small_mask = cv2.resize(mask.astype(np.float32), size, interpolation=cv2.INTER_AREA) > 0
    up = cv2.resize(fill(small, small_mask), (w, h), interpolation=cv2.INTER_LINEAR)
    return np.where(mask[..., None] > 0, up, rgb)


def _grown(m: np.ndarray, by: float) -> np.ndarray:
    """A bool mask grown by ``by`` pixels (a distance transform: the cost does not depend on
    how far it grows)."""
    far = cv2.distanceTransform((~m).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    return far <= by


def _plate_segmenter(segment: bool) -> Any:
    """MediaPipe's person segmentation for the plate's masks, or None (not asked for, or
    MediaPipe missing: keypoint masks only)."""
    if not segment:
        return None
    try:
        from ..perception.mediapipe_holistic import HolisticDetector

        # complexity 1: the model the wheel ships (0 and 2 would download)
        return HolisticDetector(static_image_mode=True, with_mask=True)
    except (ImportError, RuntimeError) as exc:
        logger.info("driver plate: no person segmentation (%s)", exc)
        return None


class _DriverMasks:
    """Where the driver covers frame ``i``: keypoint mask grown by ``margin`` x the person's
    size, joined with the segmentation of the frame grown by 3 % of it."""

    def __init__(self, people: Sequence[Any], h: int, w: int, margin: float,
                 segmenter: Any) -> None:
        self.people, self.h, self.w = people, h, w
        self.margin, self.segmenter = margin, segmenter

    def __call__(self, i: int, frame: np.ndarray | None = None) -> np.ndarray:
        from ..perception.base import mask_from_keypoints

        p = self.people[i]
        box = p.bbox() if p is not None else None
        if box is None:
            return np.zeros((self.h, self.w), bool)
        size = max(box[3] - box[1], box[2] - box[0])
        m = _grown(mask_from_keypoints(p, self.h, self.w) > 0.5, max(6.0, self.margin * size))
        if self.segmenter is not None and frame is not None:
            for d in self.segmenter(frame):
                if d.mask is not None:
                    m |= _grown(d.mask > 0.5, max(3.0, 0.03 * size))
        return m


def driver_clean_plate(driver_frames: Callable[[], Iterator[np.ndarray]],
                       people: Sequence[Any], h: int, w: int, *, max_frames: int = 48,
                       register: bool = True, margin: float = 0.15,
                       segment: bool = True) -> np.ndarray:
    """The driver video's clean plate, streamed: memory does not grow with the video.

    At most ``max_frames`` frames, spread evenly over the video (``len(people)`` frames), are
    decoded and kept; the middle one of them is the reference. Each is registered onto the
    reference (ORB + RANSAC homography; identity when unreliable), so a panning or zooming
    camera still gives a sharp plate in the reference's view. Per pixel, the median is taken
    over the frames where the driver does not cover it: the person mask is drawn from the
    keypoints and grown by ``margin`` x the person's height, joined (``segment``, when
    MediaPipe is installed) with the person's segmentation in that frame grown by 3 % of its
    height, so a loose dress or hair far from the keypoints leaves no ghost. Pixels no frame
    shows are inpainted with the default backend (PatchMatch).
    The video is read twice: up to the reference frame, then up to the last sampled frame.
    ``driver_frames`` returns a fresh iterator of uint8 (h, w, 3) frames; ``people``: the
    driver's keypoints (``schema.Person`` or None) per frame.

    Returns: uint8 (h, w, 3).
    Raises:
        ValueError: no frames, fewer frames than poses, or no plate (the message says why).
    """
    n = len(people)
    if n == 0:
        raise ValueError("the driver video has no frames")
    picks = np.unique(np.linspace(0, n - 1, max(1, min(n, max_frames))).round().astype(int))
    ref_idx = int(picks[len(picks) // 2])
    wanted = set(int(i) for i in picks) - {ref_idx}
    reference = next((f for i, f in enumerate(driver_frames()) if i == ref_idx), None)
    if reference is None:  # pass 1 read up to the reference frame only
        raise ValueError(f"the driver video gave fewer frames than its {n} poses")
    segmenter = _plate_segmenter(segment)
    person_mask = _DriverMasks(people, h, w, margin, segmenter)

    def others() -> Iterator[tuple[np.ndarray, np.ndarray]]:  # pass 2: the sample
        for i, f in enumerate(driver_frames()):
            if i > picks[-1]:
                break
            if i in wanted:
                yield f, person_mask(i, f)

    try:
        plate, never, _ = registered_median_plate(
            (reference, person_mask(ref_idx, reference)), others(), register=register)
    finally:
        if segmenter is not None:
            segmenter.close()
    if never.any():
        logger.info("driver plate: %.1f%% never uncovered, inpainted", 100 * never.mean())
    return plate
