"""Temporal tools beyond the paper: keypoint smoothing with gap filling, stable blend masks.

Keypoint smoothing (SPEC §5). Detectors jitter from frame to frame and drop keypoints for a few
frames (MediaPipe finds hands in only a fraction of dance frames); the P2B/B2F stages turn that
jitter into flicker. :func:`smooth_keypoints` works on one person's (T, K, 3) track:

1. **Validity.** A keypoint is *valid* in a frame when its confidence is at least
   ``conf_threshold`` and its coordinates are finite.
2. **Gap filling.** A run of invalid frames of length ``<= max_gap`` with valid frames on both
   sides is filled by linear interpolation of x, y and of the confidence between the two
   bounding frames. Longer runs, and runs at the start or end of the sequence (nothing to
   interpolate towards), stay as they were: missing keypoints stay missing, low-confidence
   ones keep their values.
3. **Filtering** of each coordinate over every contiguous run of valid (or filled) frames:
   ``savgol`` — Savitzky–Golay (``scipy.signal.savgol_filter``, ``window`` frames, polynomial
   ``order``; a run shorter than the window uses the largest odd window that fits, a run of at
   most ``order`` frames is left as is); ``one_euro`` — the One-Euro filter (Casiez et al.,
   CHI 2012) with ``min_cutoff`` (Hz), ``beta`` and ``d_cutoff`` (Hz) at ``fps``, causal,
   restarted at the start of each run. Its speed term uses the keypoint's 2-D speed in
   *person heights per second* (coordinates are divided by the person's size first), so
   ``beta`` does not depend on the resolution; ``none`` — no filtering (gap filling only).
4. **Staying close.** A keypoint that was valid in the input moves by at most
   ``max_deviation`` × the person's size (median over frames of the body's bounding-box
   height or width, whichever is larger); 0 turns the clamp off.

Blend-mask stabilisation: :class:`MaskStabilizer`, a motion-gated running average (see there).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.ndimage import maximum_filter
from scipy.signal import savgol_filter

from ..core.schema import NUM_BODY, Person
from .pose_sequence import parse_sequence, stack_points, unstack_points

logger = logging.getLogger(__name__)

SMOOTHING_METHODS: tuple[str, ...] = ("savgol", "one_euro", "none")
PERSON_MODES: tuple[str, ...] = ("largest", "index", "all")


@dataclass(frozen=True)
class SmoothingOptions:
    """Options of :func:`smooth_keypoints` (see the module docstring for their meaning)."""

    method: str = "savgol"
    window: int = 7
    order: int = 2
    min_cutoff: float = 1.0
    beta: float = 10.0
    d_cutoff: float = 1.0
    fps: float = 30.0
    max_gap: int = 5
    conf_threshold: float = 0.2
    max_deviation: float = 0.05

    def validate(self) -> None:
        """Raise ValueError naming the first bad option."""
        if self.method not in SMOOTHING_METHODS:
            raise ValueError(f"method {self.method!r} is unknown; use one of "
                             f"{', '.join(SMOOTHING_METHODS)}")
        if self.method == "savgol":
            if self.window < 3 or self.window % 2 == 0:
                raise ValueError(f"window must be an odd number >= 3, got {self.window}")
            if not 0 <= self.order < self.window:
                raise ValueError(f"order must be in 0..window-1 ({self.window - 1}), "
                                 f"got {self.order}")
        if self.method == "one_euro":
            for name in ("min_cutoff", "d_cutoff", "fps"):
                if not getattr(self, name) > 0:
                    raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
            if self.beta < 0:
                raise ValueError(f"beta must be >= 0, got {self.beta}")
        if self.max_gap < 0:
            raise ValueError(f"max_gap must be >= 0, got {self.max_gap}")
        if self.max_deviation < 0:
            raise ValueError(f"max_deviation must be >= 0, got {self.max_deviation}")
        if self.conf_threshold < 0:
            raise ValueError(f"conf_threshold must be >= 0, got {self.conf_threshold}")


@dataclass
class SmoothingReport:
    """What smoothing did: keypoint-frames filled, and invalid ones left (gaps too long or at
    the ends of the sequence)."""

    filled: int = 0
    left_invalid: int = 0
    frames: int = 0
    collapsed: list[int] = field(default_factory=list)

    def __str__(self) -> str:
        text = (f"{self.frames} frames; {self.filled} missing/low-confidence keypoints filled, "
                f"{self.left_invalid} left as they were (gaps too long or at the ends)")
        if self.collapsed:
            shown = ", ".join(map(str, self.collapsed[:12]))
            text += (f"; WARNING: the person collapses to a few pixels in {len(self.collapsed)} "
                     f"frame(s) ({shown}{', ...' if len(self.collapsed) > 12 else ''})")
        return text


def valid_mask(points: np.ndarray, conf_threshold: float) -> np.ndarray:
    """(T, K, 3) -> (T, K) bool: finite coordinates and confidence >= threshold (and > 0)."""
    finite = np.isfinite(points).all(axis=-1)
    conf = np.where(finite, points[..., 2], 0.0)
    return finite & (conf > 0) & (conf >= conf_threshold)


def _runs(flags: np.ndarray) -> list[tuple[int, int]]:
    """[start, stop) of each run of True in a 1-D bool array."""
    padded = np.concatenate([[False], flags, [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2])]


def fill_gaps(points: np.ndarray, valid: np.ndarray, max_gap: int) -> tuple[np.ndarray, np.ndarray]:
    """Linearly interpolate invalid runs of at most ``max_gap`` frames between valid frames.

    Args:
        points: (T, K, 3) x, y, confidence.
        valid: (T, K) bool.
    Returns:
        (points with the short gaps filled (x, y and confidence interpolated), (T, K) bool of
        the filled entries).
    """
    out = np.array(points, dtype=np.float64, copy=True)
    filled = np.zeros(valid.shape, dtype=bool)
    if max_gap <= 0:
        return out, filled
    for k in range(valid.shape[1]):
        idx = np.flatnonzero(valid[:, k])
        if len(idx) < 2:
            continue
        gaps = np.diff(idx) - 1
        for j in np.flatnonzero((gaps >= 1) & (gaps <= max_gap)):
            a, b = int(idx[j]), int(idx[j + 1])
            w = (np.arange(a + 1, b) - a)[:, None] / float(b - a)
            out[a + 1:b, k] = out[a, k] * (1 - w) + out[b, k] * w
            filled[a + 1:b, k] = True
    return out, filled


def person_scale(points: np.ndarray, valid: np.ndarray) -> float:
    """A person's size in pixels: the median over frames of the larger side of the bounding
    box of the valid body keypoints (all keypoints if no frame has two body keypoints)."""
    sizes = []
    for use_body in (True, False):
        for t in range(points.shape[0]):
            sel = valid[t, :NUM_BODY] if use_body else valid[t]
            pts = (points[t, :NUM_BODY] if use_body else points[t])[sel, :2]
            if len(pts) >= 2:
                sizes.append(float((pts.max(0) - pts.min(0)).max()))
        if sizes:
            break
    return max(float(np.median(sizes)) if sizes else 1.0, 1.0)


class OneEuroFilter:
    """The One-Euro filter (Casiez, Roussel & Vogel, CHI 2012) over K 2-D points at once.

    Per point: ``dx̂ = lowpass(dx/dt, d_cutoff)``, ``cutoff = min_cutoff + beta·|dx̂|``,
    ``x̂ = lowpass(x, cutoff)`` with ``alpha = 1 / (1 + 1/(2π·cutoff·dt))``. ``|dx̂|`` is the
    2-D speed of the point in the units of the input per second. A point that is not valid in a
    frame resets its state, so the next valid frame starts afresh.
    """

    def __init__(self, fps: float, min_cutoff: float = 1.0, beta: float = 0.0,
                 d_cutoff: float = 1.0) -> None:
        self.dt = 1.0 / float(fps)
        self.min_cutoff, self.beta, self.d_cutoff = float(min_cutoff), float(beta), float(d_cutoff)
        self._x: np.ndarray | None = None
        self._dx: np.ndarray | None = None
        self._has: np.ndarray | None = None

    def _alpha(self, cutoff: np.ndarray | float) -> np.ndarray | float:
        return 1.0 / (1.0 + 1.0 / (2.0 * math.pi * np.asarray(cutoff) * self.dt))

    def reset(self) -> None:
        self._x = self._dx = self._has = None

    def __call__(self, x: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
        """Filter one frame. x: (K, 2); valid: (K,) bool (default all). Returns (K, 2);
        invalid points are returned unchanged."""
        x = np.asarray(x, dtype=np.float64)
        valid = np.ones(len(x), bool) if valid is None else np.asarray(valid, bool)
        if self._x is None or self._x.shape != x.shape:
            self._x, self._dx = x.copy(), np.zeros_like(x)
            self._has = np.zeros(len(x), bool)
        assert self._dx is not None and self._has is not None
        out = x.copy()
        cont = valid & self._has
        if cont.any():
            dx = (x[cont] - self._x[cont]) / self.dt
            dx_hat = self._alpha(self.d_cutoff) * dx + (1 - self._alpha(self.d_cutoff)) * \
                self._dx[cont]
            speed = np.linalg.norm(dx_hat, axis=-1, keepdims=True)
            a = self._alpha(self.min_cutoff + self.beta * speed)
            out[cont] = a * x[cont] + (1 - a) * self._x[cont]
            self._dx[cont] = dx_hat
        start = valid & ~self._has
        self._dx[start] = 0.0
        self._x[valid] = out[valid]
        self._has = valid.copy()
        return out


def _savgol_run(x: np.ndarray, window: int, order: int) -> np.ndarray:
    n = len(x)
    w = min(window, n if n % 2 else n - 1)
    if w <= order:
        return x
    return savgol_filter(x, w, order, axis=0, mode="interp")


def smooth_keypoints(points: np.ndarray, options: SmoothingOptions | None = None,
                     ) -> tuple[np.ndarray, SmoothingReport]:
    """Fill short gaps and smooth one person's keypoint track (module docstring, steps 1-4).

    Args:
        points: (T, K, 3) x, y (pixels), confidence; NaN/inf entries count as missing.
        options: :class:`SmoothingOptions` (defaults: Savitzky–Golay, window 7, order 2).
    Returns:
        ((T, K, 3) smoothed track, :class:`SmoothingReport`). Entries that are neither valid
        nor filled are returned as they came in (NaN ones as missing: 0, 0, 0).
    """
    options = options or SmoothingOptions()
    options.validate()
    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 3 or points.shape[-1] != 3:
        raise ValueError(f"points must have shape (T, K, 3), got {points.shape}")
    points = np.where(np.isfinite(points).all(-1, keepdims=True), points, 0.0)
    valid = valid_mask(points, options.conf_threshold)
    report = SmoothingReport(frames=points.shape[0])
    out, filled = fill_gaps(points, valid, options.max_gap)
    usable = valid | filled
    report.filled = int(filled.sum())
    # keypoints seen in at least one frame that are still invalid somewhere
    seen = (points[..., 2] > 0).any(axis=0)
    report.left_invalid = int((~usable[:, seen]).sum())
    scale = person_scale(points, valid)
    xy = out[..., :2].copy()
    if options.method == "savgol":
        for k in range(points.shape[1]):
            for a, b in _runs(usable[:, k]):
                xy[a:b, k] = _savgol_run(out[a:b, k, :2], options.window, options.order)
    elif options.method == "one_euro":  # in person heights: beta is resolution-free
        filt = OneEuroFilter(options.fps, options.min_cutoff, options.beta, options.d_cutoff)
        for t in range(points.shape[0]):
            xy[t] = filt(out[t, :, :2] / scale, usable[t]) * scale
    if options.max_deviation > 0:
        limit = options.max_deviation * scale
        delta = xy - points[..., :2]
        norm = np.linalg.norm(delta, axis=-1, keepdims=True)
        shrink = np.where(norm > limit, limit / np.maximum(norm, 1e-12), 1.0)
        xy = np.where(valid[..., None], points[..., :2] + delta * shrink, xy)
    out[..., :2] = np.where(usable[..., None], xy, points[..., :2])
    return out, report


class NoPersonError(ValueError):
    """No frame of the sequence has a person: there is nothing to hold or interpolate."""


@dataclass
class GapFillReport:
    """What :func:`fill_missing_people` did: frames without a person that were interpolated
    between neighbours, and those held (before the first / after the last detection)."""

    frames: int = 0
    interpolated: list[int] = field(default_factory=list)
    held: list[int] = field(default_factory=list)

    @property
    def missing(self) -> list[int]:
        return sorted(self.interpolated + self.held)

    def __str__(self) -> str:
        if not self.missing:
            return f"{self.frames} frames, a person in every one"
        def few(ts: list[int]) -> str:
            return ", ".join(map(str, ts[:12])) + (", ..." if len(ts) > 12 else "")
        parts = []
        if self.interpolated:
            parts.append(f"{len(self.interpolated)} interpolated ({few(self.interpolated)})")
        if self.held:
            parts.append(f"{len(self.held)} held from the nearest detection ({few(self.held)})")
        return (f"{self.frames} frames, no person found in {len(self.missing)}: "
                + "; ".join(parts))


def fill_missing_people(people: Sequence[Person | None]) -> tuple[list[Person | None],
                                                                   GapFillReport]:
    """Give every frame without a person one from its neighbours, so a video never stops.

    A frame between two frames with a person gets each keypoint linearly interpolated
    between the nearest frames that have it (:func:`fill_gaps`, the Smooth Pose gap fill,
    with no length limit); frames before the first / after the last detection hold that
    detection. Frames with a person are returned unchanged (the same objects).

    Raises:
        NoPersonError: no frame has a person.
    """
    people = list(people)
    report = GapFillReport(frames=len(people))
    present = np.array([p is not None and p.bbox() is not None for p in people], dtype=bool)
    if not present.any():
        raise NoPersonError(f"no person in any of the {len(people)} frame(s)")
    if present.all():
        return people, report
    idx = np.flatnonzero(present)
    first, last = int(idx[0]), int(idx[-1])
    pts = stack_points([p if ok else None for p, ok in zip(people, present)])
    filled_pts, filled = fill_gaps(pts, pts[..., 2] > 0, max_gap=len(people))
    out: list[Person | None] = list(people)
    for t in np.flatnonzero(~present):
        t = int(t)
        if t < first or t > last:
            src = people[first if t < first else last]
            assert src is not None
            out[t] = Person.from_points(src.all_points())
            report.held.append(t)
        else:
            row = np.where(filled[t][:, None], filled_pts[t], 0.0).astype(np.float32)
            out[t] = Person.from_points(row)
            report.interpolated.append(t)
    return out, report


def smooth_pose_sequence(value: Any, options: SmoothingOptions | None = None, *,
                         person: str = "largest", index: int = 0,
                         ) -> tuple[list[dict[str, Any]], SmoothingReport]:
    """Smooth a POSE_KEYPOINT sequence (see :func:`smooth_keypoints`).

    Args:
        value: POSE_KEYPOINT list of frames (normalised or pixels; canvases may differ in size
            but not in aspect ratio, see :mod:`.pose_sequence`).
        person: ``largest`` — per frame the largest person, smoothed as one track, other people
            dropped; ``index`` — the ``index``-th person of every frame; ``all`` — every person,
            tracked by their position in the frame's list (person i of frame t continues person
            i of frame t-1). There is no identity tracking: if the detector reorders people, or
            two people of similar size swap being the largest, the tracks swap too.
    Returns:
        (POSE_KEYPOINT frames in the input's convention and canvas sizes, report summed over
        people).
    """
    if person not in PERSON_MODES:
        raise ValueError(f"person mode {person!r} is unknown; use one of {', '.join(PERSON_MODES)}")
    seq = parse_sequence(value)
    if person == "all":
        slots = max((len(found) for found in seq.people), default=0)
        tracks = [seq.select("index", i) for i in range(slots)]
    else:
        tracks = [seq.select(person, index)]
        if person == "index" and all(p is None for p in tracks[0]) and any(seq.people):
            most = max(len(found) for found in seq.people)
            raise ValueError(f"person index {index} is out of range: frames have at most "
                             f"{most} people")
    total = SmoothingReport(frames=len(seq), collapsed=list(seq.collapsed))
    out_people: list[list[Person]] = [[] for _ in range(len(seq))]
    for track in tracks:
        if all(p is None for p in track):
            continue
        pts, rep = smooth_keypoints(stack_points(track), options)
        total.filled += rep.filled
        total.left_invalid += rep.left_invalid
        for t, p in enumerate(unstack_points(pts)):
            if p is not None:
                out_people[t].append(p)
    if not any(out_people):
        logger.warning("no person in any frame of the POSE_KEYPOINT sequence: nothing smoothed")
    return seq.to_frames(out_people), total


# --------------------------------------------------------------------------------------------
# Blend-mask stabilisation
# --------------------------------------------------------------------------------------------


class MaskStabilizer:
    """Motion-gated running average of a per-frame blend mask (streaming, one frame at a time).

    For each pixel, ``motion = max over a (2·radius+1)² window of mean_c |frame_t - frame_t-1|``
    (images in 0..1), ``static = clip(1 - motion / motion_threshold, 0, 1)`` and

        out_t = mask_t + strength · static · (out_t-1 - mask_t)

    so where the image barely changes the mask is an exponential average of the recent masks
    (segmentation flicker cancels), and where the image moves the new mask is taken as is (the
    edge follows the object). The first frame, a frame after :meth:`reset`, a frame of another
    size, and every frame when ``enabled`` is False are returned unchanged.
    """

    def __init__(self, *, strength: float = 0.8, motion_threshold: float = 0.04,
                 radius: int = 2, enabled: bool = True) -> None:
        if not 0.0 <= strength < 1.0:
            raise ValueError(f"strength must be in [0, 1), got {strength}")
        if not motion_threshold > 0:
            raise ValueError(f"motion_threshold must be > 0, got {motion_threshold}")
        if radius < 0:
            raise ValueError(f"radius must be >= 0, got {radius}")
        self.strength, self.motion_threshold = float(strength), float(motion_threshold)
        self.radius, self.enabled = int(radius), bool(enabled)
        self._prev_frame: np.ndarray | None = None
        self._prev_out: np.ndarray | None = None

    def reset(self) -> None:
        self._prev_frame = self._prev_out = None

    @staticmethod
    def _as_float_image(frame: np.ndarray) -> np.ndarray:
        frame = np.asarray(frame)
        f = frame.astype(np.float32) / 255.0 if frame.dtype == np.uint8 else \
            frame.astype(np.float32)
        return f[..., None] if f.ndim == 2 else f

    def static_weight(self, frame: np.ndarray) -> np.ndarray | None:
        """(H, W) weight in 0..1 (1 = static) of ``frame`` against the previous frame, or None
        without a previous frame of the same size. Does not change the state."""
        f = self._as_float_image(frame)
        if self._prev_frame is None or self._prev_frame.shape != f.shape:
            return None
        motion = np.abs(f - self._prev_frame).mean(axis=-1)
        if self.radius > 0:
            motion = maximum_filter(motion, size=2 * self.radius + 1, mode="nearest")
        return np.clip(1.0 - motion / self.motion_threshold, 0.0, 1.0)

    def update(self, mask: np.ndarray, frame: np.ndarray) -> np.ndarray:
        """Stabilise one frame's mask.

        Args:
            mask: (H, W) float in 0..1.
            frame: (H, W, C) or (H, W) image of the same frame, uint8 or float in 0..1.
        Returns:
            (H, W) float32 stabilised mask.
        """
        mask = np.asarray(mask, dtype=np.float32)
        f = self._as_float_image(frame)
        if mask.ndim != 2 or f.shape[:2] != mask.shape:
            raise ValueError(f"mask {mask.shape} and frame {f.shape[:2]} must be (H, W) of the "
                             "same size")
        if not self.enabled:
            return mask
        static = self.static_weight(f)
        if static is None or self._prev_out is None or self._prev_out.shape != mask.shape:
            out = mask.copy()
        else:
            out = mask + self.strength * static * (self._prev_out - mask)
        self._prev_frame, self._prev_out = f, out
        return out.astype(np.float32)


def stabilize_masks(masks: Sequence[np.ndarray], frames: Sequence[np.ndarray],
                    **kwargs: Any) -> list[np.ndarray]:
    """Run a fresh :class:`MaskStabilizer` (``kwargs`` are its options) over a sequence."""
    if len(masks) != len(frames):
        raise ValueError(f"{len(masks)} masks but {len(frames)} frames")
    stab = MaskStabilizer(**kwargs)
    return [stab.update(m, f) for m, f in zip(masks, frames)]
