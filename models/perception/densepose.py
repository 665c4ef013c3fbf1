"""DensePose I, U, V: the TorchScript R50-FPN comfyui_controlnet_aux uses, and a weightless
approximation from body keypoints + a person mask.

Both give per pixel the part index I (uint8 0..24, 0 = background, the 24 parts of
``schema.DENSEPOSE_PART_NAMES``) and chart coordinates U, V (float32 0..1).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from ..core.schema import BODY, DENSEPOSE_PART, NUM_DENSEPOSE_PARTS, Person

logger = logging.getLogger(__name__)


@dataclass
class DensePoseMap:
    """One frame: ``index`` uint8 (H, W) 0..24, ``u`` and ``v`` float32 (H, W) 0..1."""

    index: np.ndarray
    u: np.ndarray
    v: np.ndarray

    @classmethod
    def empty(cls, height: int, width: int) -> DensePoseMap:
        return cls(np.zeros((height, width), np.uint8), np.zeros((height, width), np.float32),
                   np.zeros((height, width), np.float32))


# --------------------------------------------------------------------------------------------
# Weightless: which limb segment a pixel belongs to
# --------------------------------------------------------------------------------------------

# name -> (joint a, joint b, front part, back part, radius in shoulder widths)
_LIMBS: tuple[tuple[str, str, str, str, str, float], ...] = (
    ("r_upper_arm", "right_shoulder", "right_elbow", "upper_arm_right_front",
     "upper_arm_right_back", 0.20),
    ("l_upper_arm", "left_shoulder", "left_elbow", "upper_arm_left_front",
     "upper_arm_left_back", 0.20),
    ("r_lower_arm", "right_elbow", "right_wrist", "lower_arm_right_front",
     "lower_arm_right_back", 0.17),
    ("l_lower_arm", "left_elbow", "left_wrist", "lower_arm_left_front",
     "lower_arm_left_back", 0.17),
    ("r_upper_leg", "right_hip", "right_knee", "upper_leg_right_front",
     "upper_leg_right_back", 0.30),
    ("l_upper_leg", "left_hip", "left_knee", "upper_leg_left_front",
     "upper_leg_left_back", 0.30),
    ("r_lower_leg", "right_knee", "right_ankle", "lower_leg_right_front",
     "lower_leg_right_back", 0.22),
    ("l_lower_leg", "left_knee", "left_ankle", "lower_leg_left_front",
     "lower_leg_left_back", 0.22),
)
WEIGHTLESS_MAX_SIDE = 1024  # larger frames are labelled at this size and resized back


def _facing_camera(body: np.ndarray, thr: float) -> bool:
    """True when the person shows their front: their right side is on the image's left."""
    for r, l in (("right_shoulder", "left_shoulder"), ("right_hip", "left_hip"),
                 ("right_eye", "left_eye"), ("right_ear", "left_ear")):
        a, b = body[BODY[r]], body[BODY[l]]
        if a[2] > thr and b[2] > thr and abs(a[0] - b[0]) > 1e-3:
            return bool(a[0] < b[0])
    return True


# (a, b, radius, front part, back part) of one body segment; part -1: the head (split later)
_Segment = tuple[np.ndarray, np.ndarray, float, int, int]


def _body_scale(pts: np.ndarray, rs: np.ndarray | None, ls: np.ndarray | None,
                rh: np.ndarray | None, lh: np.ndarray | None) -> float:
    """The person's size in pixels: the shoulder width, else 1.4 hip widths, else a third of
    the keypoints' extent; at least 4."""
    if rs is not None and ls is not None:
        scale = float(np.hypot(*(rs - ls)))
    elif rh is not None and lh is not None:
        scale = float(np.hypot(*(rh - lh))) * 1.4
    else:
        ext = pts.max(0) - pts.min(0)
        scale = float(max(ext.max(), 8.0)) / 3.0
    return max(scale, 4.0)


def _torso_top(neck: np.ndarray | None, rs: np.ndarray | None,
               ls: np.ndarray | None) -> np.ndarray | None:
    """The top of the torso: the neck, else the mid-shoulder, else None."""
    if neck is not None:
        return neck
    return (rs + ls) / 2 if rs is not None and ls is not None else None


def _torso_segment(top: np.ndarray, hips: list[np.ndarray], nose: np.ndarray | None,
                   scale: float) -> _Segment:
    """Neck -> mid-hip, or straight down (away from the nose) 1.5 scales when no hip shows."""
    if hips:
        bottom = np.mean(hips, axis=0)
    else:
        up = (nose - top) if nose is not None else np.array([0.0, -1.0])
        up = up / max(np.hypot(*up), 1e-6)
        bottom = top - up * 1.5 * scale
    return (top, bottom, 0.55 * scale, DENSEPOSE_PART["torso_front"],
            DENSEPOSE_PART["torso_back"])


def _hand_segments(person: Person, p: Callable[[str], np.ndarray | None], thr: float,
                   scale: float) -> list[_Segment]:
    """Each hand from its wrist to twice the hand keypoints' centre (at least 3 shown), else
    0.7 of the forearm further on; no hand without a wrist (or without both)."""
    segs = []
    for side, part in (("right", "right_hand"), ("left", "left_hand")):
        w, e = p(f"{side}_wrist"), p(f"{side}_elbow")
        hand = getattr(person, f"{side}_hand")
        hp = hand[hand[:, 2] > thr, :2]
        if w is None:
            continue
        if len(hp) >= 3:
            tip = w + 2.0 * (hp.mean(0) - w)
        elif e is not None:
            tip = w + 0.7 * (w - e)
        else:
            continue
        segs.append((w, tip, 0.16 * scale, DENSEPOSE_PART[part], DENSEPOSE_PART[part]))
    return segs


def _foot_segments(p: Callable[[str], np.ndarray | None], scale: float) -> list[_Segment]:
    """Each foot from its ankle 0.3 of the shin further on."""
    segs = []
    for side, part in (("right", "right_foot"), ("left", "left_foot")):
        a, k = p(f"{side}_ankle"), p(f"{side}_knee")
        if a is not None and k is not None:
            segs.append((a, a + 0.3 * (a - k), 0.16 * scale, DENSEPOSE_PART[part],
                         DENSEPOSE_PART[part]))
    return segs


def _head_segment(nose: np.ndarray, top: np.ndarray | None, scale: float) -> _Segment:
    """From 0.3 of the way up the neck (torso top, else half a scale under the nose) -> nose
    to 0.6 beyond the nose; parts -1 (split right/left by its axis later)."""
    base = top if top is not None else nose + np.array([0.0, 0.5 * scale])
    axis = nose - base
    if np.hypot(*axis) < 1e-3:
        axis = np.array([0.0, -0.5 * scale])
    return (base + 0.3 * axis, nose + 0.6 * axis, 0.42 * scale, -1, -1)


def _segments(person: Person, thr: float) -> list[_Segment]:
    """(a, b, radius, front part, back part) for each body segment whose joints exist; the
    parts already swapped for a person seen from behind."""
    kp = person.body
    ok = kp[:, 2] > thr

    def p(name: str) -> np.ndarray | None:
        i = BODY[name]
        return kp[i, :2].astype(np.float64) if ok[i] else None

    pts = kp[ok, :2]
    if len(pts) == 0:
        return []
    rs, ls, rh, lh = p("right_shoulder"), p("left_shoulder"), p("right_hip"), p("left_hip")
    neck, nose = p("neck"), p("nose")
    scale = _body_scale(pts, rs, ls, rh, lh)
    segs: list[_Segment] = []
    for _, ja, jb, fpart, bpart, r in _LIMBS:
        a, b = p(ja), p(jb)
        if a is not None and b is not None:
            segs.append((a, b, r * scale, DENSEPOSE_PART[fpart], DENSEPOSE_PART[bpart]))
    top = _torso_top(neck, rs, ls)
    if top is not None:
        segs.append(_torso_segment(top, [h for h in (rh, lh) if h is not None], nose, scale))
    segs += _hand_segments(person, p, thr, scale)
    segs += _foot_segments(p, scale)
    if nose is not None:
        segs.append(_head_segment(nose, top, scale))
    front = _facing_camera(kp, thr)
    return [(a, b, r, f if front else bk, bk if front else f) for a, b, r, f, bk in segs]


def densepose_from_keypoints(person: Person | None, mask: np.ndarray | None, height: int,
                             width: int, *, threshold: float = 0.05) -> DensePoseMap:
    """Approximate DensePose I, U, V from one person's keypoints and a person mask.

    Every masked pixel goes to the body segment (limb, torso, head, hand, foot) nearest to it
    relative to the segment's thickness; I is that segment's DensePose part (front or back by
    whether the person faces the camera; the head split into its right/left half), U runs
    along the segment (0 at its first joint, 1 at its second), V across it (0.5 on its axis).

    Args:
        person: keypoints in pixels of the frame, or None.
        mask: float (H, W) person mask in 0..1 (pixels > 0.5 are the person), or None to use
            a mask drawn from the keypoints.
    Returns:
        :class:`DensePoseMap` of shape (height, width); all zeros without a person.
    """
    if person is None:
        return DensePoseMap.empty(height, width)
    if mask is None:
        from .base import mask_from_keypoints

        mask = mask_from_keypoints(person, height, width, threshold=threshold)
    mask = np.asarray(mask, dtype=np.float32)
    if mask.shape != (height, width):
        raise ValueError(f"mask has shape {mask.shape}, expected {(height, width)}")
    scale = 1.0
    if max(height, width) > WEIGHTLESS_MAX_SIDE:
        scale = WEIGHTLESS_MAX_SIDE / max(height, width)
        sh, sw = max(1, round(height * scale)), max(1, round(width * scale))
        small = densepose_from_keypoints(person.scaled(scale, scale),
                                         cv2.resize(mask, (sw, sh), interpolation=cv2.INTER_AREA),
                                         sh, sw, threshold=threshold)
        return DensePoseMap(
            cv2.resize(small.index, (width, height), interpolation=cv2.INTER_NEAREST),
            cv2.resize(small.u, (width, height), interpolation=cv2.INTER_LINEAR),
            cv2.resize(small.v, (width, height), interpolation=cv2.INTER_LINEAR))
    out = DensePoseMap.empty(height, width)
    segs = _segments(person, threshold)
    ys, xs = np.nonzero(mask > 0.5)
    if not segs or len(ys) == 0:
        return out
    pix = np.stack([xs, ys], axis=1).astype(np.float64) + 0.5
    best = np.full(len(pix), np.inf)
    winner = np.zeros(len(pix), np.int32)
    u = np.zeros(len(pix), np.float32)
    v = np.zeros(len(pix), np.float32)
    side = np.zeros(len(pix), bool)  # True: on the image's left of the segment's axis
    for k, (a, b, r, _, _) in enumerate(segs):
        ab = b - a
        L2 = max(float(ab @ ab), 1e-9)
        rel = pix - a
        t = np.clip(rel @ ab / L2, 0.0, 1.0)
        d = np.hypot(*(pix - (a + t[:, None] * ab)).T) / r
        cross = (ab[0] * rel[:, 1] - ab[1] * rel[:, 0]) / math.sqrt(L2)
        take = d < best
        best[take] = d[take]
        winner[take] = k
        u[take] = t[take]
        v[take] = np.clip(0.5 + cross[take] / (2 * r), 0.0, 1.0)
        # For a segment pointing up the image (the head axis), cross < 0 is the image's left.
        side[take] = cross[take] < 0
    parts = np.array([pa for _, _, _, pa, _ in segs], dtype=np.int32)
    idx = parts[winner]
    head = idx < 0
    if head.any():
        # Facing the camera, the image's left half of the head is the subject's right.
        front = _facing_camera(person.body, threshold)
        right = side[head] if front else ~side[head]
        idx[head] = np.where(right, DENSEPOSE_PART["head_right"], DENSEPOSE_PART["head_left"])
    out.index[ys, xs] = idx.astype(np.uint8)
    out.u[ys, xs] = u
    out.v[ys, xs] = v
    return out


# --------------------------------------------------------------------------------------------
# TorchScript DensePose R50-FPN (LayerNorm/DensePose-TorchScript-with-hint-image)
# --------------------------------------------------------------------------------------------


def load_densepose_torchscript(path: str | Path, device: torch.device | str = "cpu"):
    """Load the TorchScript DensePose model.

    TorchScript files carry code that runs when loaded and called: only load files whose
    sha256 the registry pins (``weights.resolve("densepose_r50")`` checks it).
    """
    try:
        module = torch.jit.load(str(path), map_location="cpu")
    except Exception as exc:  # a truncated file or not TorchScript at all
        raise ValueError(f"{path} is not a loadable TorchScript DensePose model "
                         f"({type(exc).__name__}: {str(exc)[:200]})") from exc
    module.eval()
    return module.to(device)


class DensePoseTorchScript:
    """Run the TorchScript DensePose R50-FPN with comfyui_controlnet_aux's contract.

    The module takes a uint8 (3, H, W) RGB tensor (H, W multiples of 64) and returns
    ``(boxes (N, 4) xyxy, coarse_segm (N, 2, h, w), fine_segm (N, 25, h, w), u (N, 25, h, w),
    v (N, 25, h, w))``. Per box, the coarse/fine logits and U/V charts are resampled to the
    box, I = argmax(fine) where argmax(coarse) > 0, U/V taken from I's channel.

    Args:
        module: the loaded TorchScript (see :func:`load_densepose_torchscript`).
        resolution: short side the frame is resized to before detection (512 like
            comfyui_controlnet_aux's default).
    """

    def __init__(self, module, *, resolution: int = 512, device: torch.device | str = "cpu"):
        self.module = module
        self.resolution = int(resolution)
        self.device = torch.device(device)

    def __call__(self, rgb: np.ndarray) -> DensePoseMap:
        """uint8 RGB (H, W, 3) -> :class:`DensePoseMap` (H, W); empty when nobody is found."""
        h, w = rgb.shape[:2]
        k = self.resolution / min(h, w)
        k = min(k, 2048 / max(h, w))  # bound the long side
        rh, rw = max(1, round(h * k)), max(1, round(w * k))
        img = cv2.resize(rgb, (rw, rh), interpolation=cv2.INTER_AREA if k < 1
                         else cv2.INTER_CUBIC)
        ph, pw = -(-rh // 64) * 64, -(-rw // 64) * 64
        img = np.pad(img, ((0, ph - rh), (0, pw - rw), (0, 0)), mode="edge")
        x = torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1).to(self.device)
        with torch.inference_mode():
            outs = self.module(x)
        try:
            boxes, coarse, fine, u, v = outs
        except (TypeError, ValueError) as exc:
            raise ValueError("the DensePose TorchScript returned "
                             f"{type(outs).__name__}, expected (boxes, coarse_segm, fine_segm, "
                             "u, v)") from exc
        if fine.ndim != 4 or fine.shape[1] != NUM_DENSEPOSE_PARTS + 1 or boxes.ndim != 2:
            raise ValueError(f"the DensePose TorchScript returned fine_segm of shape "
                             f"{tuple(fine.shape)}, expected (N, 25, h, w)")
        index = torch.zeros((ph, pw), dtype=torch.uint8)
        uu = torch.zeros((ph, pw), dtype=torch.float32)
        vv = torch.zeros((ph, pw), dtype=torch.float32)
        for i in range(boxes.shape[0]):
            x0, y0, x1, y1 = (float(c) for c in boxes[i].detach().cpu())
            bx, by = int(x0), int(y0)
            bw, bh = max(int(x1 - x0), 1), max(int(y1 - y0), 1)
            size = (bh, bw)
            c = F.interpolate(coarse[i:i + 1].float(), size, mode="bilinear",
                              align_corners=False).argmax(1)[0]
            labels = F.interpolate(fine[i:i + 1].float(), size, mode="bilinear",
                                   align_corners=False).argmax(1)[0] * (c > 0).long()
            ub = F.interpolate(u[i:i + 1].float(), size, mode="bilinear", align_corners=False)[0]
            vb = F.interpolate(v[i:i + 1].float(), size, mode="bilinear", align_corners=False)[0]
            lab = labels.clamp(0, NUM_DENSEPOSE_PARTS)
            uvals = ub.gather(0, lab[None])[0]
            vvals = vb.gather(0, lab[None])[0]
            # Paste the box into the canvas (clipped); later boxes overwrite where they
            # found a part, as comfyui_controlnet_aux's visualiser paints them in order.
            cx0, cy0 = max(bx, 0), max(by, 0)
            cx1, cy1 = min(bx + bw, pw), min(by + bh, ph)
            if cx1 <= cx0 or cy1 <= cy0:
                continue
            sl = (slice(cy0 - by, cy1 - by), slice(cx0 - bx, cx1 - bx))
            lab_c = lab[sl].cpu()
            fg = lab_c > 0
            region = (slice(cy0, cy1), slice(cx0, cx1))
            index[region][fg] = lab_c[fg].to(torch.uint8)
            uu[region][fg] = uvals[sl].cpu().float()[fg]
            vv[region][fg] = vvals[sl].cpu().float()[fg]
        index_np = index[:rh, :rw].numpy()
        u_np = uu[:rh, :rw].clamp(0, 1).numpy()
        v_np = vv[:rh, :rw].clamp(0, 1).numpy()
        return DensePoseMap(
            cv2.resize(index_np, (w, h), interpolation=cv2.INTER_NEAREST),
            cv2.resize(u_np, (w, h), interpolation=cv2.INTER_LINEAR),
            cv2.resize(v_np, (w, h), interpolation=cv2.INTER_LINEAR))
