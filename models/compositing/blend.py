"""MaskBlend (paper eq. 7): ``f0 = z * m + b * (1 - m)`` over a still or a video background.

Everything here works frame by frame into preallocated outputs: a still background is fitted
to the frame size ONCE and reused for every frame (never copied N times), a background video is
fitted one frame at a time. The mask may be eroded (or dilated) and feathered before blending;
with both at 0 the formula holds exactly.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

LENGTH_MODES: tuple[str, ...] = ("loop", "hold_last", "trim")
FIT_MODES: tuple[str, ...] = ("cover", "contain", "stretch")


def erode_mask(mask: torch.Tensor, pixels: int) -> torch.Tensor:
    """Grey-level erosion of a (..., H, W) mask by a square of radius ``pixels``;
    a negative radius dilates."""
    if pixels == 0:
        return mask
    r = abs(int(pixels))
    shape = mask.shape
    m = mask.reshape(-1, 1, shape[-2], shape[-1])
    if pixels > 0:
        m = -F.max_pool2d(-m, 2 * r + 1, stride=1, padding=r)
    else:
        m = F.max_pool2d(m, 2 * r + 1, stride=1, padding=r)
    return m.reshape(shape)


def gaussian_blur(mask: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur of a (..., H, W) tensor with replicate borders."""
    if sigma <= 0:
        return mask
    radius = max(1, int(math.ceil(3.0 * sigma)))
    x = torch.arange(-radius, radius + 1, dtype=mask.dtype, device=mask.device)
    k = torch.exp(-(x * x) / (2.0 * sigma * sigma))
    k = k / k.sum()
    shape = mask.shape
    m = mask.reshape(-1, 1, shape[-2], shape[-1])
    m = F.pad(m, (radius, radius, 0, 0), mode="replicate")
    m = F.conv2d(m, k.view(1, 1, 1, -1))
    m = F.pad(m, (0, 0, radius, radius), mode="replicate")
    m = F.conv2d(m, k.view(1, 1, -1, 1))
    return m.reshape(shape)


def prepare_mask(mask: torch.Tensor, *, erode: int = 0, feather: float = 0.0) -> torch.Tensor:
    """Erode (positive) / dilate (negative) by ``erode`` pixels, then feather with a Gaussian
    of sigma ``feather`` pixels. mask: (..., H, W) in 0..1; returns the same shape in 0..1."""
    m = erode_mask(mask.float(), erode)
    m = gaussian_blur(m, feather)
    return m.clamp(0.0, 1.0)


def to_rgb(frame: torch.Tensor) -> torch.Tensor:
    """An IMAGE frame (H, W, C) with C in 1..4 -> (H, W, 3) (gray repeated, alpha dropped)."""
    c = frame.shape[-1]
    if c == 3:
        return frame
    if c in (1, 2):
        return frame[..., :1].expand(-1, -1, 3)
    return frame[..., :3]


def fit_frame(frame: torch.Tensor, height: int, width: int, mode: str = "cover") -> torch.Tensor:
    """Fit a background frame (H', W', C) to (height, width, 3).

    cover: scale to cover the frame and centre-crop (no borders, edges cut);
    contain: scale to fit inside and pad with black (nothing cut);
    stretch: resize to exactly (height, width) (aspect changes).
    """
    if mode not in FIT_MODES:
        raise ValueError(f"unknown fit {mode!r}; use one of {', '.join(FIT_MODES)}")
    rgb = to_rgb(frame).float()
    h, w = rgb.shape[:2]
    if (h, w) == (height, width):
        return rgb
    x = rgb.permute(2, 0, 1).unsqueeze(0)
    if mode == "stretch":
        out = F.interpolate(x, size=(height, width), mode="bilinear", align_corners=False,
                            antialias=True)
        return out[0].permute(1, 2, 0).clamp(0, 1)
    scale = max(height / h, width / w) if mode == "cover" else min(height / h, width / w)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    if mode == "cover":
        nh, nw = max(nh, height), max(nw, width)
    else:
        nh, nw = min(nh, height), min(nw, width)
    x = F.interpolate(x, size=(nh, nw), mode="bilinear", align_corners=False, antialias=True)
    x = x[0].permute(1, 2, 0).clamp(0, 1)
    if mode == "cover":
        y0, x0 = (nh - height) // 2, (nw - width) // 2
        return x[y0:y0 + height, x0:x0 + width]
    out = torch.zeros(height, width, 3, dtype=x.dtype, device=x.device)
    y0, x0 = (height - nh) // 2, (width - nw) // 2
    out[y0:y0 + nh, x0:x0 + nw] = x
    return out


def output_length(n_frames: int, n_background: int, mode: str) -> int:
    """How many frames the blend outputs: the foreground's count, or with ``trim`` the
    shorter of the two (a single still never trims)."""
    if mode not in LENGTH_MODES:
        raise ValueError(f"unknown length mode {mode!r}; use one of {', '.join(LENGTH_MODES)}")
    if mode == "trim" and n_background > 1:
        return min(n_frames, n_background)
    return n_frames


def background_index(i: int, n_background: int, mode: str) -> int:
    """Which background frame goes under output frame ``i``."""
    if n_background == 1:
        return 0
    if mode == "loop":
        return i % n_background
    return min(i, n_background - 1)  # hold_last, and trim (where i < n_background anyway)


def blend_frame(z: torch.Tensor, m: torch.Tensor, background: torch.Tensor, *,
                erode: int = 0, feather: float = 0.0, out: torch.Tensor | None = None
                ) -> torch.Tensor:
    """One frame of the paper's f0 = z*m + b*(1-m), written into ``out`` (H, W, 3).

    Args:
        z: float (H, W, 3) 0..1; m: float (H, W) 0..1, eroded/feathered by
            :func:`prepare_mask`; background: float (H, W, 3) already fitted (:func:`fit_frame`).
    Returns:
        the mask used (H, W); the composite is written into ``out``."""
    mi = prepare_mask(m, erode=erode, feather=feather)
    mi3 = mi.unsqueeze(-1)
    if out is None:
        out = torch.empty_like(z, dtype=torch.float32)
    torch.add(z.float() * mi3, background * (1.0 - mi3), out=out)
    return mi


def blend_frames(z: torch.Tensor, m: torch.Tensor, background: torch.Tensor, *,
                 length_mode: str = "loop", fit: str = "cover", erode: int = 0,
                 feather: float = 0.0,
                 on_frame: Callable[[int, int], None] | None = None,
                 extras: bool = True,
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Composite ``z`` over ``background`` through ``m``, frame by frame.

    Args:
        z: foreground IMAGE (N, H, W, 3) float 0..1 (N may be 1: broadcast).
        m: mask (N, H, W) float 0..1 (N may be 1: broadcast).
        background: IMAGE (Nb, Hb, Wb, C): a still (Nb = 1) or a video of any length/size.
        length_mode: background shorter than the frames -> ``loop`` it or ``hold_last``;
            ``trim`` cuts the output to the shorter of the two.
        fit: how a background of another size is fitted (``cover``/``contain``/``stretch``).
        erode, feather: mask post-processing (:func:`prepare_mask`).
        on_frame: called as (done, total) after every frame (progress, cancellation).
        extras: also fill the foreground RGBA and the mask; False returns them as one black
            frame each ((1, H, W, 4), (1, H, W)) and saves two video-sized outputs.
    Returns:
        composite (T, H, W, 3), foreground RGBA (T, H, W, 4) = (z, mask), mask (T, H, W).
    """
    if z.ndim != 4 or z.shape[-1] != 3:
        raise ValueError(f"z must be (N, H, W, 3), got {tuple(z.shape)}")
    if m.ndim != 3 or m.shape[-2:] != z.shape[1:3]:
        raise ValueError(f"mask {tuple(m.shape)} does not match the image {tuple(z.shape)}")
    nz, nm, nb = z.shape[0], m.shape[0], background.shape[0]
    if nz != nm and 1 not in (nz, nm):
        raise ValueError(f"image has {nz} frames but mask has {nm}")
    n = max(nz, nm)
    total = output_length(n, nb, length_mode)
    h, w = z.shape[1], z.shape[2]
    device = z.device
    comp = torch.empty(total, h, w, 3, dtype=torch.float32, device=device)
    k = total if extras else 1
    rgba = torch.zeros(k, h, w, 4, dtype=torch.float32, device=device)
    alpha = torch.zeros(k, h, w, dtype=torch.float32, device=device)
    cached_idx, cached_bg = -1, None
    for i in range(total):
        bi = background_index(i, nb, length_mode)
        if bi != cached_idx:  # a still is fitted once; a video frame when it changes
            cached_bg = fit_frame(background[bi].to(device), h, w, fit)
            cached_idx = bi
        zi = z[i if nz > 1 else 0].float()
        mi = blend_frame(zi, m[i if nm > 1 else 0], cached_bg, erode=erode, feather=feather,
                         out=comp[i])
        if extras:
            rgba[i, ..., :3] = zi
            rgba[i, ..., 3] = mi
            alpha[i] = mi
        if on_frame is not None:
            on_frame(i + 1, total)
    return comp, rgba, alpha
